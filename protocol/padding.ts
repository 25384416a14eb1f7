/**
 * Padding of v2 payloads to size buckets, so the relay learns nothing from lengths:
 * `pad(p) = u32(len(p)) || p || zeros`, filled up to the bucket
 * `max(512, 2^ceil(log2(len(p) + 4)))`, buckets 512, 1024, … 65536. A 1-character message, a
 * 200-character one and a receipt all pad to 512 bytes.
 *
 * @module
 */

/** The smallest bucket. */
export const MIN_PADDED_BYTES = 512;
/** The largest bucket. */
export const MAX_PADDED_BYTES = 65536;
/** The longest payload that fits (the largest bucket less the 4-byte length prefix). */
export const MAX_PAYLOAD_BYTES: number = MAX_PADDED_BYTES - 4;

/** Every bucket size, smallest first: 512, 1024, …, 65536. */
export const PADDED_SIZES: readonly number[] = Object.freeze(
  Array.from({ length: 8 }, (_, i) => MIN_PADDED_BYTES << i),
);

/**
 * The bucket a payload of `length` bytes pads to, or `undefined` when it is longer than
 * {@linkcode MAX_PAYLOAD_BYTES} (it cannot be sent; say so in bytes before trying).
 */
export function paddedSize(length: number): number | undefined {
  return PADDED_SIZES.find((size) => length + 4 <= size);
}

/**
 * Pads a payload. Throws a `RangeError` naming both sizes when it does not fit.
 *
 * @example Short texts and receipts look the same
 * ```ts
 * import { pad } from "@chat-p2p/protocol";
 *
 * const enc = new TextEncoder();
 * console.log(pad(enc.encode("a")).length, pad(enc.encode("b".repeat(200))).length); // 512 512
 * ```
 */
export function pad(payload: Uint8Array): Uint8Array {
  const size = paddedSize(payload.length);
  if (size === undefined) {
    throw new RangeError(
      `Cannot pad: the payload is ${payload.length} bytes; at most ${MAX_PAYLOAD_BYTES} fit`,
    );
  }
  const out = new Uint8Array(size);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, 4);
  return out;
}

/** The result of {@linkcode unpad}: the payload, or why the bytes are not a padded payload. */
export type Unpadded = { ok: true; value: Uint8Array } | { ok: false; message: string };

/**
 * Removes padding, strictly: the size must be a bucket, the length prefix must fit in it and be
 * the smallest bucket for that length, and every padding byte must be zero.
 */
export function unpad(padded: Uint8Array): Unpadded {
  if (!PADDED_SIZES.includes(padded.length)) {
    return { ok: false, message: `Cannot unpad: ${padded.length} bytes is not a bucket size` };
  }
  const length = new DataView(padded.buffer, padded.byteOffset, 4).getUint32(0);
  if (paddedSize(length) !== padded.length) {
    return {
      ok: false,
      message: `Cannot unpad: a ${length}-byte payload does not pad to ${padded.length} bytes`,
    };
  }
  if (padded.subarray(4 + length).some((b) => b !== 0)) {
    return { ok: false, message: "Cannot unpad: a padding byte is not zero" };
  }
  return { ok: true, value: padded.slice(4, 4 + length) };
}
