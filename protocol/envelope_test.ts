import assert from "node:assert/strict";
import {
  fromBase64,
  generateKeyPair,
  keyPairFromSeed,
  NONCE_BYTES,
  seal,
  toBase64,
} from "./mod.ts";
import { openEnvelope, sealEnvelope } from "./mod.ts";
import {
  type Envelope,
  isValidId,
  type MessagePayload,
  parseEnvelope,
  type ReceiptPayload,
  serializeEnvelope,
} from "./mod.ts";

const alice = keyPairFromSeed(new Uint8Array(32).fill(0xa1));
const bob = keyPairFromSeed(new Uint8Array(32).fill(0xb0));
const carol = keyPairFromSeed(new Uint8Array(32).fill(0xc4));
const A = toBase64(alice.publicKey);
const B = toBase64(bob.publicKey);
const C = toBase64(carol.publicKey);

const msg: MessagePayload = {
  v: 1,
  kind: "message",
  text: "hello — ✓ 👋",
  sent_at: "2025-03-04T05:06:07.000Z",
};
const receipt: ReceiptPayload = {
  v: 1,
  kind: "receipt",
  status: "delivered",
  ids: ["env-00000001"],
  sent_at: "2025-03-04T05:06:08.000Z",
};

function flipBase64Byte(b64: string, index: number): string {
  const bytes = fromBase64(b64)!;
  bytes[index] ^= 0x01;
  return toBase64(bytes);
}

Deno.test("sealEnvelope builds a valid v1 envelope with a fresh id", () => {
  const e = sealEnvelope(msg, alice, B);
  assert.deepEqual(Object.keys(e), ["v", "id", "from", "to", "nonce", "ciphertext"]);
  assert.equal(e.v, 1);
  assert.equal(e.from, A);
  assert.equal(e.to, B);
  assert.equal(isValidId(e.id), true);
  assert.equal(fromBase64(e.nonce)!.length, NONCE_BYTES);
  assert.deepEqual(parseEnvelope(JSON.parse(serializeEnvelope(e))), { ok: true, value: e });
  assert.notEqual(sealEnvelope(msg, alice, B).id, e.id);
  assert.equal(sealEnvelope(msg, alice, B, "my-own-id-1").id, "my-own-id-1");
});

Deno.test("sealEnvelope: the ciphertext does not contain the plaintext", () => {
  const e = sealEnvelope({ ...msg, text: "secret words" }, alice, B);
  assert.ok(!e.ciphertext.includes(btoa("secret words").slice(0, 8)));
  const bytes = new TextDecoder("latin1").decode(fromBase64(e.ciphertext)!);
  assert.ok(!bytes.includes("secret"));
  assert.ok(!bytes.includes("message"));
});

Deno.test("sealEnvelope rejects a recipient that is not a key", () => {
  for (const to of ["", "bob", toBase64(new Uint8Array(31)), B.slice(0, -1)]) {
    assert.throws(() => sealEnvelope(msg, alice, to), TypeError);
  }
});

Deno.test("openEnvelope round-trips messages and receipts in both directions", () => {
  const toBob = sealEnvelope(msg, alice, B);
  assert.deepEqual(openEnvelope(toBob, bob), { ok: true, value: msg });
  const toAlice = sealEnvelope(receipt, bob, A);
  assert.deepEqual(openEnvelope(toAlice, alice), { ok: true, value: receipt });
});

Deno.test("a receipt and a message of similar size look alike to the relay", () => {
  const m = sealEnvelope({ ...msg, text: "x".repeat(30) }, alice, B);
  const r = sealEnvelope(receipt, alice, B);
  assert.deepEqual(Object.keys(m), Object.keys(r));
  assert.equal(m.from, r.from);
  assert.equal(m.to, r.to);
});

Deno.test("two seals of one payload use different nonces and ciphertexts", () => {
  const e1 = sealEnvelope(msg, alice, B, "same-id-0001");
  const e2 = sealEnvelope(msg, alice, B, "same-id-0001");
  assert.notEqual(e1.nonce, e2.nonce);
  assert.notEqual(e1.ciphertext, e2.ciphertext);
});

Deno.test("openEnvelope: an envelope for someone else is not addressed to me", () => {
  const e = sealEnvelope(msg, alice, B);
  const r = openEnvelope(e, carol);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.code, "bad_frame");
  assert.match(!r.ok ? r.message : "", /not addressed to me/);
});

Deno.test("openEnvelope: `to` rewritten to another recipient does not open", () => {
  const e = sealEnvelope(msg, alice, B);
  const r = openEnvelope({ ...e, to: C }, carol);
  assert.equal(!r.ok && r.code, "auth_failed");
});

Deno.test("openEnvelope: a third party claiming to be the sender fails with auth_failed", () => {
  // Carol seals for Bob with her own key but claims to be Alice.
  const forged = { ...sealEnvelope(msg, carol, B), from: A };
  const r = openEnvelope(forged, bob);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.code, "auth_failed");
  // Alice's real envelope with `from` swapped to Carol does not open either.
  const swapped = { ...sealEnvelope(msg, alice, B), from: C };
  assert.equal(openEnvelope(swapped, bob).ok, false);
  assert.equal((openEnvelope(swapped, bob) as { code: string }).code, "auth_failed");
});

Deno.test("openEnvelope: flipping any byte of nonce or ciphertext gives auth_failed", () => {
  const e = sealEnvelope({ ...msg, text: "tamper" }, alice, B);
  const nonceLen = fromBase64(e.nonce)!.length;
  const ctLen = fromBase64(e.ciphertext)!.length;
  for (let i = 0; i < nonceLen; i++) {
    const r = openEnvelope({ ...e, nonce: flipBase64Byte(e.nonce, i) }, bob);
    assert.equal(!r.ok && r.code, "auth_failed", `nonce byte ${i}`);
  }
  for (let i = 0; i < ctLen; i++) {
    const r = openEnvelope({ ...e, ciphertext: flipBase64Byte(e.ciphertext, i) }, bob);
    assert.equal(!r.ok && r.code, "auth_failed", `ciphertext byte ${i}`);
  }
  assert.equal(openEnvelope(e, bob).ok, true);
});

Deno.test("openEnvelope: bad encodings are bad_frame, never an exception", () => {
  const e = sealEnvelope(msg, alice, B);
  const cases: Partial<Envelope>[] = [
    { from: "alice" },
    { nonce: "not base64" },
    { ciphertext: "AAA" },
  ];
  for (const over of cases) {
    const r = openEnvelope({ ...e, ...over }, bob);
    assert.equal(!r.ok && r.code, "bad_frame", JSON.stringify(over));
    assert.match(!r.ok ? r.message : "", /bad encoding/);
  }
  const shortNonce = openEnvelope({ ...e, nonce: toBase64(new Uint8Array(12)) }, bob);
  assert.equal(!shortNonce.ok && shortNonce.code, "auth_failed");
});

Deno.test("openEnvelope: a box that opens but holds no valid payload is reported", () => {
  const sealAs = (plain: string): Envelope => {
    const s = seal(new TextEncoder().encode(plain), bob.publicKey, alice.secretKey);
    return {
      v: 1,
      id: "raw-0000001",
      from: A,
      to: B,
      nonce: toBase64(s.nonce),
      ciphertext: toBase64(s.ciphertext),
    };
  };
  const a = openEnvelope(sealAs("not json"), bob);
  assert.equal(!a.ok && a.code, "bad_json");
  const b = openEnvelope(sealAs('{"v":2,"kind":"message","text":"x","sent_at":"t"}'), bob);
  assert.equal(!b.ok && b.code, "unsupported_version");
  const c = openEnvelope(sealAs('{"v":1,"kind":"sticker","sent_at":"t"}'), bob);
  assert.equal(!c.ok && c.code, "unknown_type");
});

Deno.test("envelopes between freshly generated identities", () => {
  for (let i = 0; i < 5; i++) {
    const x = generateKeyPair();
    const y = generateKeyPair();
    const e = sealEnvelope({ ...msg, text: `n${i}` }, x, toBase64(y.publicKey));
    const r = openEnvelope(e, y);
    assert.equal(r.ok && r.value.kind === "message" && r.value.text, `n${i}`);
  }
});
