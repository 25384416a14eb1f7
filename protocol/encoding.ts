/**
 * Encodings and sizes: strict canonical base64, hex, and the syntax of a public key's text.
 * No crypto library is imported here, so parsing a frame loads none.
 *
 * @module
 */

/** Length in bytes of an Ed25519 public key. */
export const PUBLIC_KEY_BYTES = 32;
/** Length in bytes of a `nacl.box` nonce. */
export const NONCE_BYTES = 24;
/** Length in bytes of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;

/** The runtime's own base64 of byte arrays (ES2026 `Uint8Array.fromBase64`, `toBase64`). */
interface NativeBase64 {
  fromBase64(text: string, opts: { lastChunkHandling: "strict" }): Uint8Array;
}
const native = Uint8Array as unknown as Partial<NativeBase64>;
const nativeTo = (Uint8Array.prototype as unknown as { toBase64?: () => string }).toBase64;

/** Standard base64 (RFC 4648 §4, with padding) of bytes. */
export function toBase64(bytes: Uint8Array): string {
  if (nativeTo) return nativeTo.call(bytes);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/**
 * The 6-bit value of each character of the alphabet; -1 for every other UTF-16 code unit (64 KiB,
 * so the hot loop below needs no range check).
 */
const SEXTET = new Int8Array(65536).fill(-1);
for (let i = 0; i < 64; i++) SEXTET[ALPHABET.charCodeAt(i)] = i;
const EQUALS = 61; // "="
const WHITESPACE_RE = /[\t\n\f\r ]/;

/**
 * Decodes strict standard base64 (padding required, no whitespace, canonical: unused trailing bits
 * must be zero, so `toBase64(fromBase64(t)) === t`). Returns `undefined` for anything else, so
 * callers turn it into their own error message.
 */
export function fromBase64(text: string): Uint8Array | undefined {
  if (typeof text !== "string") return undefined;
  if (native.fromBase64) {
    // Strict: padding required, unused bits zero, the standard alphabet; it skips ASCII white
    // space, which the format does not allow.
    if (WHITESPACE_RE.test(text)) return undefined;
    try {
      return native.fromBase64(text, { lastChunkHandling: "strict" });
    } catch {
      return undefined;
    }
  }
  if (base64ByteLength(text) === undefined) return undefined;
  try {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

/**
 * Byte length of strict base64 text (the same rules as {@linkcode fromBase64}) without decoding
 * it, or `undefined` when it is not strict base64. The relay checks sizes of fields it never
 * opens (nonce, ciphertext) with this.
 */
export function base64ByteLength(text: string): number | undefined {
  // A loop over a lookup table, not a regular expression: the relay checks every envelope body
  // with this, and the loop takes a quarter of the time (profiled: the expression was 14% of the
  // relay's main thread at 12,000 msg/s; `deno bench bench/base64_bench.ts`, 812-character
  // bodies: 4.8-5.3 µs the expression, 1.0-1.1 µs this; a loop over an ASCII table took 1.6 µs).
  if (typeof text !== "string") return undefined;
  const n = text.length;
  if ((n & 3) !== 0) return undefined;
  let pad = 0;
  if (n > 0 && text.charCodeAt(n - 1) === EQUALS) {
    pad = text.charCodeAt(n - 2) === EQUALS ? 2 : 1;
  }
  const end = n - pad;
  // Four characters a step, OR-ed: any -1 makes the whole negative.
  let bad = 0;
  let i = 0;
  for (; i + 4 <= end; i += 4) {
    bad |= SEXTET[text.charCodeAt(i)] | SEXTET[text.charCodeAt(i + 1)] |
      SEXTET[text.charCodeAt(i + 2)] | SEXTET[text.charCodeAt(i + 3)];
  }
  for (; i < end; i++) bad |= SEXTET[text.charCodeAt(i)];
  if (bad < 0) return undefined;
  const last = end > 0 ? SEXTET[text.charCodeAt(end - 1)] : 0;
  // Canonical: the last character before padding leaves the unused low bits zero (4 bits before
  // "==", 2 before "="), so every byte string has exactly one accepted text; otherwise "...ik="
  // and "...il=" would be two different mailbox ids for the same key.
  if (pad !== 0 && (last & (pad === 2 ? 0b1111 : 0b11)) !== 0) return undefined;
  return (n >> 2) * 3 - pad;
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Decodes a base64 public key, or `undefined` if it is not base64 of exactly 32 bytes. */
export function decodePublicKey(text: string): Uint8Array | undefined {
  const bytes = fromBase64(text);
  return bytes && bytes.length === PUBLIC_KEY_BYTES && !isWeakKeyEncoding(bytes)
    ? bytes
    : undefined;
}

const validKeys = new Map<string, boolean>();

/**
 * Whether `text` is a usable public key ({@linkcode decodePublicKey} would return it). Remembers
 * its answers for a bounded set of texts: a v1 envelope names `from` and `to`, and a conversation
 * repeats the same two keys. (The v2 relay refuses v1 frames; v2 frames name a key once per open
 * or first contact and are checked without this cache.)
 */
export function isPublicKeyText(text: string): boolean {
  // Only the one length a key can have is looked up or remembered: anything else is refused
  // at once, so hostile frames cannot fill the cache with large strings.
  if (typeof text !== "string" || text.length !== 44) return false;
  let ok = validKeys.get(text);
  if (ok === undefined) {
    ok = decodePublicKey(text) !== undefined;
    if (validKeys.size >= 10_000) validKeys.clear();
    validKeys.set(text, ok);
  }
  return ok;
}

/**
 * libsodium's blacklist of small-order Ed25519 points (ge25519_has_small_order), compared with the
 * sign bit cleared: with such a "key" the box's shared secret is a public constant and any
 * signature verifies. No real key pair produces one. Checked against libsodium via PyNaCl.
 */
const SMALL_ORDER: readonly Uint8Array[] = [
  new Uint8Array(32),
  Uint8Array.from([1, ...new Array(31).fill(0)]),
  Uint8Array.from([
    0x26,
    0xe8,
    0x95,
    0x8f,
    0xc2,
    0xb2,
    0x27,
    0xb0,
    0x45,
    0xc3,
    0xf4,
    0x89,
    0xf2,
    0xef,
    0x98,
    0xf0,
    0xd5,
    0xdf,
    0xac,
    0x05,
    0xd3,
    0xc6,
    0x33,
    0x39,
    0xb1,
    0x38,
    0x02,
    0x88,
    0x6d,
    0x53,
    0xfc,
    0x05,
  ]),
  Uint8Array.from([
    0xc7,
    0x17,
    0x6a,
    0x70,
    0x3d,
    0x4d,
    0xd8,
    0x4f,
    0xba,
    0x3c,
    0x0b,
    0x76,
    0x0d,
    0x10,
    0x67,
    0x0f,
    0x2a,
    0x20,
    0x53,
    0xfa,
    0x2c,
    0x39,
    0xcc,
    0xc6,
    0x4e,
    0xc7,
    0xfd,
    0x77,
    0x92,
    0xac,
    0x03,
    0x7a,
  ]),
  Uint8Array.from([0xec, ...new Array(30).fill(0xff), 0x7f]),
  Uint8Array.from([0xed, ...new Array(30).fill(0xff), 0x7f]),
  Uint8Array.from([0xee, ...new Array(30).fill(0xff), 0x7f]),
];

/**
 * True for encodings libsodium refuses as public keys without any curve arithmetic: small-order
 * points and non-canonical y (y >= 2^255 - 19). Cheap enough for every envelope on the relay.
 */
export function isWeakKeyEncoding(key: Uint8Array): boolean {
  const top = key[31] & 0x7f;
  if (top === 0x7f && key[0] >= 0xed && key.subarray(1, 31).every((b) => b === 0xff)) return true;
  return SMALL_ORDER.some((bad) => {
    for (let i = 0; i < 31; i++) if (key[i] !== bad[i]) return false;
    return top === bad[31];
  });
}

/** Decodes lower-case or upper-case hex; `undefined` for odd lengths or other characters. */
export function fromHex(text: string): Uint8Array | undefined {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    return undefined;
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
