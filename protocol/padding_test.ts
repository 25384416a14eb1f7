import assert from "node:assert/strict";
import { encodePayloadV2, MAX_PAYLOAD_BYTES, pad, PADDED_SIZES, paddedSize, unpad } from "./mod.ts";

const enc = new TextEncoder();
const ID = "0123456789abcdef0123456789abcdef";

Deno.test("padding: buckets are 512 to 65536, powers of two", () => {
  assert.deepEqual(PADDED_SIZES, [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]);
  assert.equal(paddedSize(0), 512);
  assert.equal(paddedSize(508), 512);
  assert.equal(paddedSize(509), 1024);
  assert.equal(paddedSize(MAX_PAYLOAD_BYTES), 65536);
  assert.equal(paddedSize(MAX_PAYLOAD_BYTES + 1), undefined);
});

Deno.test("padding: a 1-character message, a 200-character one and a receipt pad alike", () => {
  const message = (text: string) =>
    encodePayloadV2({ v: 2, kind: "message", id: ID, text, sent_at: "2026-11-30T08:00:00.000Z" });
  const receipt = encodePayloadV2({ v: 2, kind: "receipt", ids: [ID, ID, ID, ID, ID] });
  const sizes = [message("a"), message("b".repeat(200)), receipt].map((p) => pad(p).length);
  assert.deepEqual(sizes, [512, 512, 512]);
});

Deno.test("padding: round trip at every boundary; too long throws with both sizes", () => {
  for (const n of [0, 1, 508, 509, 1020, 1021, MAX_PAYLOAD_BYTES]) {
    const p = new Uint8Array(n).fill(0x61);
    const padded = pad(p);
    assert.equal(padded.length, paddedSize(n));
    assert.deepEqual(unpad(padded), { ok: true, value: p });
  }
  assert.throws(
    () => pad(new Uint8Array(MAX_PAYLOAD_BYTES + 1)),
    new RangeError("Cannot pad: the payload is 65533 bytes; at most 65532 fit"),
  );
});

Deno.test("unpad: strict checks with exact messages", () => {
  const good = pad(enc.encode("hi"));
  assert.deepEqual(unpad(good.subarray(0, 511)), {
    ok: false,
    message: "Cannot unpad: 511 bytes is not a bucket size",
  });
  const tooBig = good.slice();
  tooBig[2] = 2; // 514 + 2 bytes cannot be in a 512-byte bucket
  assert.deepEqual(unpad(tooBig), {
    ok: false,
    message: "Cannot unpad: a 514-byte payload does not pad to 512 bytes",
  });
  const small = new Uint8Array(1024); // 0-byte payload padded to 1024: not its bucket
  assert.deepEqual(unpad(small), {
    ok: false,
    message: "Cannot unpad: a 0-byte payload does not pad to 1024 bytes",
  });
  const dirty = good.slice();
  dirty[511] = 1;
  assert.deepEqual(unpad(dirty), {
    ok: false,
    message: "Cannot unpad: a padding byte is not zero",
  });
});
