import assert from "node:assert/strict";
import {
  BODY_SIZES,
  fromBase64,
  inboxId,
  isInboxOf,
  keyPairFromSeed,
  newPeerSessions,
  openPairBody,
  openPairEnvelope,
  openRequestBody,
  openRequestEnvelope,
  padPayloadV2,
  pairBody,
  pairEnvelope,
  pairMailbox,
  parseEnvelopeV2,
  peerDecrypt,
  peerEncrypt,
  requestBody,
  requestEnvelope,
  serializeEnvelopeV2,
  toBase64,
  unpadPayloadV2,
} from "./mod.ts";

const alice = keyPairFromSeed(new Uint8Array(32).fill(1));
const bob = keyPairFromSeed(new Uint8Array(32).fill(2));
const carol = keyPairFromSeed(new Uint8Array(32).fill(3));
const enc = new TextEncoder();
const ID = "00112233445566778899aabbccddeeff";

function ratchetMessage(text: string): Uint8Array {
  const payload = padPayloadV2({
    v: 2,
    kind: "message",
    id: ID,
    text,
    sent_at: "2026-11-30T08:00:00Z",
  });
  return peerEncrypt(newPeerSessions(alice.publicKey, bob.publicKey), payload, alice).message;
}

Deno.test("pair body: opens only in its mailbox, with its key, untampered", () => {
  const out = pairMailbox(alice, bob.publicKey, "send", 0);
  const back = pairMailbox(alice, bob.publicKey, "receive", 0);
  const m = enc.encode("ratchet message");
  const body = pairBody(out.boxKey, out.id, m);
  assert.equal(body.length, 24 + m.length + 16);
  assert.deepEqual(openPairBody(out.boxKey, out.id, body), m);
  assert.equal(openPairBody(out.boxKey, back.id, body), undefined, "another mailbox id");
  assert.equal(openPairBody(back.boxKey, out.id, body), undefined, "another key");
  for (let i = 0; i < body.length; i++) {
    const t = body.slice();
    t[i] ^= 0x80;
    assert.equal(openPairBody(out.boxKey, out.id, t), undefined, `byte ${i}`);
  }
});

Deno.test("pair envelope: Bob reads what Alice sent to their mailbox; a swapped mailbox does not open", () => {
  const m = ratchetMessage("hi");
  const env = pairEnvelope(pairMailbox(alice, bob.publicKey, "send", 0), m);
  assert.deepEqual(parseEnvelopeV2(JSON.parse(serializeEnvelopeV2(env))), { ok: true, value: env });
  assert.deepEqual(openPairEnvelope(pairMailbox(bob, alice.publicKey, "receive", 0), env), m);
  // The relay moves it to Bob → Alice's mailbox (reflection) or to another epoch: nothing opens.
  const reflected = { ...env, to: pairMailbox(bob, alice.publicKey, "send", 0).idText };
  assert.equal(
    openPairEnvelope(pairMailbox(alice, bob.publicKey, "receive", 0), reflected),
    undefined,
  );
  assert.equal(openPairEnvelope(pairMailbox(bob, alice.publicKey, "receive", 1), env), undefined);
});

Deno.test("request body: sealed to the recipient; the sender claim is checked by the ratchet", () => {
  const m = ratchetMessage("first contact");
  const body = requestBody(bob.publicKey, alice.publicKey, m);
  const opened = openRequestBody(bob, body);
  assert.ok(opened.ok);
  assert.deepEqual(opened.sender, alice.publicKey);
  const got = peerDecrypt(newPeerSessions(bob.publicKey, alice.publicKey), opened.message, bob);
  assert.ok(got.ok);
  assert.equal(unpadPayloadV2(got.plaintext).ok, true);
  assert.equal(openRequestBody(carol, body).ok, false, "only Bob opens it");
  // Carol rewraps Alice's ratchet message claiming to be... anyone: it opens as a sealed box,
  // but not as a session with the claimed key.
  const forged = openRequestBody(bob, requestBody(bob.publicKey, carol.publicKey, m));
  assert.ok(forged.ok);
  const asCarol = peerDecrypt(newPeerSessions(bob.publicKey, carol.publicKey), forged.message, bob);
  assert.equal(!asCarol.ok && asCarol.reason, "auth_failed");
});

Deno.test("request body: a weak sender key and a box for someone else are refused", () => {
  const weak = openRequestBody(
    bob,
    requestBody(bob.publicKey, new Uint8Array(32), Uint8Array.of(1)),
  );
  assert.deepEqual(weak, {
    ok: false,
    message: "Cannot open request: the sender key is bad (the key is not a usable Ed25519 " +
      "public key (not a point of the curve, or a weak one))",
  });
  const other = openRequestBody(
    bob,
    requestBody(carol.publicKey, alice.publicKey, Uint8Array.of(1)),
  );
  assert.deepEqual(other, {
    ok: false,
    message: "Cannot open request: the sealed box does not open",
  });
});

Deno.test("request envelope: addressed to the inbox id, opened by its owner only", () => {
  const env = requestEnvelope(bob.publicKey, alice.publicKey, ratchetMessage("x"));
  assert.equal(env.to, toBase64(inboxId(bob.publicKey)));
  assert.ok(isInboxOf(env.to, toBase64(bob.publicKey)));
  assert.equal(isInboxOf(env.to, toBase64(alice.publicKey)), false);
  assert.ok(openRequestEnvelope(bob, env).ok);
  assert.equal(openRequestEnvelope(alice, env).ok, false);
});

Deno.test("envelope sizes: a 1-char and a 200-char message and a receipt look the same", () => {
  const mailbox = pairMailbox(alice, bob.publicKey, "send", 0);
  let sessions = newPeerSessions(alice.publicKey, bob.publicKey);
  const sizes: number[] = [];
  for (
    const p of [
      {
        v: 2 as const,
        kind: "message" as const,
        id: ID,
        text: "a",
        sent_at: "2026-11-30T08:00:00Z",
      },
      {
        v: 2 as const,
        kind: "message" as const,
        id: ID,
        text: "b".repeat(200),
        sent_at: "2026-11-30T08:00:00Z",
      },
      { v: 2 as const, kind: "receipt" as const, ids: [ID, ID, ID] },
    ]
  ) {
    const r = peerEncrypt(sessions, padPayloadV2(p), alice);
    sessions = r.state;
    const env = pairEnvelope(mailbox, r.message, "env-00000001");
    sizes.push(serializeEnvelopeV2(env).length);
    assert.ok(BODY_SIZES.includes(fromBase64(env.body)!.length));
  }
  assert.equal(new Set(sizes).size, 1, `sizes ${sizes}`);
});
