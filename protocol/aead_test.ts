import assert from "node:assert/strict";
import {
  AEAD_TAG_BYTES,
  aeadDecrypt,
  aeadEncrypt,
  SEALED_BOX_OVERHEAD,
  sealedBoxOpen,
  sealedBoxSeal,
  x25519KeyPair,
} from "./mod.ts";

const enc = new TextEncoder();
const key = new Uint8Array(32).fill(1);
const nonce = new Uint8Array(24).fill(2);
const ad = enc.encode("associated");

function flipEach(bytes: Uint8Array, check: (tampered: Uint8Array) => void): void {
  for (let i = 0; i < bytes.length; i++) {
    const t = bytes.slice();
    t[i] ^= 0x01;
    check(t);
  }
}

Deno.test("aead: round trip; output is plaintext length + 16", () => {
  const c = aeadEncrypt(key, nonce, enc.encode("hello"), ad);
  assert.equal(c.length, 5 + AEAD_TAG_BYTES);
  assert.deepEqual(aeadDecrypt(key, nonce, c, ad), enc.encode("hello"));
});

Deno.test("aead: every flipped ciphertext byte, and a wrong key, nonce or AD, fails", () => {
  const c = aeadEncrypt(key, nonce, enc.encode("hello world"), ad);
  flipEach(c, (t) => assert.equal(aeadDecrypt(key, nonce, t, ad), undefined));
  flipEach(ad, (t) => assert.equal(aeadDecrypt(key, nonce, c, t), undefined));
  flipEach(nonce, (t) => assert.equal(aeadDecrypt(key, t, c, ad), undefined));
  flipEach(key, (t) => assert.equal(aeadDecrypt(t, nonce, c, ad), undefined));
  assert.equal(aeadDecrypt(key, nonce, c.subarray(0, 15), ad), undefined);
});

Deno.test("aead: wrong key or nonce lengths throw (a programming error, not input)", () => {
  assert.throws(() => aeadEncrypt(new Uint8Array(31), nonce, new Uint8Array(1), ad), RangeError);
  assert.throws(() => aeadEncrypt(key, new Uint8Array(12), new Uint8Array(1), ad), RangeError);
});

Deno.test("sealed box: round trip, fresh ephemeral key each time", () => {
  const r = x25519KeyPair(new Uint8Array(32).fill(5));
  const a = sealedBoxSeal(enc.encode("hi"), r.publicKey);
  const b = sealedBoxSeal(enc.encode("hi"), r.publicKey);
  assert.equal(a.length, 2 + SEALED_BOX_OVERHEAD);
  assert.notDeepEqual(a, b);
  assert.deepEqual(sealedBoxOpen(a, r), enc.encode("hi"));
  assert.deepEqual(sealedBoxOpen(b, r), enc.encode("hi"));
});

Deno.test("sealed box: tampering, another recipient and a small-order ephemeral key fail", () => {
  const r = x25519KeyPair(new Uint8Array(32).fill(5));
  const other = x25519KeyPair(new Uint8Array(32).fill(6));
  const box = sealedBoxSeal(enc.encode("secret"), r.publicKey);
  flipEach(box, (t) => assert.equal(sealedBoxOpen(t, r), undefined));
  assert.equal(sealedBoxOpen(box, other), undefined);
  const zeroEpk = box.slice();
  zeroEpk.fill(0, 0, 32);
  assert.equal(sealedBoxOpen(zeroEpk, r), undefined);
  assert.equal(sealedBoxOpen(box.subarray(0, 47), r), undefined);
});
