import assert from "node:assert/strict";
import {
  acceptSession,
  aeadDecrypt,
  decodeHeader,
  type DecryptResult,
  dh,
  encodeHeader,
  HEADER_BYTES,
  initiateSession,
  kdfCk,
  kdfRk,
  keyPairFromSeed,
  MAX_SKIP,
  MAX_SKIPPED_KEYS,
  messageAd,
  messageKeys,
  pairSecret,
  ratchetDecrypt,
  ratchetEncrypt,
  type RatchetState,
  type Rng,
  sessionKey,
  toX25519PublicKey,
  toX25519SecretKey,
} from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const alice = keyPairFromSeed(new Uint8Array(32).fill(1));
const bob = keyPairFromSeed(new Uint8Array(32).fill(2));
const carol = keyPairFromSeed(new Uint8Array(32).fill(3));

/** A deterministic rng: distinct 32-byte values. */
function counterRng(start = 100): Rng {
  let i = start;
  return (n) => new Uint8Array(n).fill(i++ & 0xff);
}

function ok<S>(r: DecryptResult<S>): { state: S; text: string } {
  if (!r.ok) assert.fail(`expected to open, got ${r.reason}: ${r.message}`);
  return { state: r.state, text: dec.decode(r.plaintext) };
}

function reason<S>(r: DecryptResult<S>): string {
  assert.equal(r.ok, false, "expected a failure");
  return r.ok ? "" : r.reason;
}

/** Alice starts, sends `n` init messages; Bob accepts the first. */
function started(n = 1) {
  let a = initiateSession(alice, bob.publicKey, counterRng(10));
  const messages: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const r = ratchetEncrypt(a, enc.encode(`a${i}`));
    a = r.state;
    messages.push(r.message);
  }
  const first = ok(acceptSession(bob, alice.publicKey, messages[0], counterRng(50)));
  return { a, b: first.state, messages };
}

Deno.test("header: 41 bytes, round trip, unknown type refused", () => {
  const h = { type: "init" as const, dh: new Uint8Array(32).fill(7), pn: 3, n: 0x01020304 };
  const bytes = encodeHeader(h);
  assert.equal(bytes.length, HEADER_BYTES);
  assert.equal(bytes[0], 2);
  assert.deepEqual(decodeHeader(bytes), h);
  assert.equal(decodeHeader(Uint8Array.of(3, ...bytes.subarray(1))), undefined);
  assert.equal(decodeHeader(bytes.subarray(0, 40)), undefined);
});

Deno.test("ratchet: the first message is the contract's construction, computed by hand", () => {
  const a = initiateSession(alice, bob.publicKey, counterRng(10));
  const { message } = ratchetEncrypt(a, enc.encode("hi"));
  const ek = new Uint8Array(32).fill(10);
  const sk = sessionKey(pairSecret(alice, bob.publicKey), alice.publicKey, bob.publicKey);
  const { chainKey } = kdfRk(sk, dh(ek, toX25519PublicKey(bob.publicKey))!);
  const { key, nonce } = messageKeys(kdfCk(chainKey).messageKey);
  const header = message.subarray(0, HEADER_BYTES);
  assert.deepEqual(decodeHeader(header)?.type, "init");
  const ad = messageAd(alice.publicKey, bob.publicKey, header);
  assert.equal(dec.decode(aeadDecrypt(key, nonce, message.subarray(HEADER_BYTES), ad)), "hi");
});

Deno.test("ratchet: init flight, reply, and both ways after", () => {
  let { a, b, messages } = started(3);
  for (const m of messages.slice(1)) b = ok(ratchetDecrypt(b, m)).state;
  const reply = ratchetEncrypt(b, enc.encode("b0"));
  assert.equal(decodeHeader(reply.message)?.type, "normal");
  b = reply.state;
  const got = ok(ratchetDecrypt(a, reply.message, counterRng(70)));
  assert.equal(got.text, "b0");
  a = got.state;
  const next = ratchetEncrypt(a, enc.encode("a3"));
  assert.equal(decodeHeader(next.message)?.type, "normal", "no more init once Alice received");
  assert.equal(ok(ratchetDecrypt(b, next.message)).text, "a3");
});

Deno.test("ratchet: operations are pure and the state survives JSON", () => {
  const { a, messages } = started(1);
  const before = JSON.stringify(a);
  const once = ratchetEncrypt(a, enc.encode("x"));
  assert.equal(JSON.stringify(a), before, "encrypt did not change its input");
  assert.notEqual(JSON.stringify(once.state), before);
  const b0 = acceptSession(bob, alice.publicKey, messages[0], counterRng(50));
  const b = ok(b0).state;
  const bJson = JSON.parse(JSON.stringify(b)) as RatchetState;
  assert.deepEqual(bJson, b);
  const again = ratchetEncrypt(bJson, enc.encode("y"));
  assert.equal(ok(ratchetDecrypt(once.state, again.message, counterRng(1))).text, "y");
});

Deno.test("ratchet: encrypt never reuses a message key along the returned states", () => {
  let { a } = started(1);
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const r = ratchetEncrypt(a, new Uint8Array(16));
    a = r.state;
    const body = Array.from(r.message.subarray(HEADER_BYTES)).join(",");
    assert.ok(!seen.has(body));
    seen.add(body);
  }
  assert.equal(a.ns, 51);
});

Deno.test("ratchet: the responder's state does not keep its identity's X25519 secret", () => {
  const { b } = started(1);
  const ikx = Array.from(toX25519SecretKey(bob.secretKey)).join(",");
  assert.notEqual(Array.from(atob(b.dhs.secret), (c) => c.charCodeAt(0)).join(","), ikx);
});

Deno.test("ratchet: a replayed message fails as a replay, in every chain position", () => {
  let { a, b, messages } = started(2);
  assert.equal(reason(ratchetDecrypt(b, messages[0])), "replay");
  b = ok(ratchetDecrypt(b, messages[1])).state;
  assert.equal(reason(ratchetDecrypt(b, messages[1])), "replay");
  const reply = ratchetEncrypt(b, enc.encode("b0"));
  b = reply.state;
  a = ok(ratchetDecrypt(a, reply.message)).state;
  assert.equal(reason(ratchetDecrypt(a, reply.message)), "replay");
  const later = ratchetEncrypt(a, enc.encode("a2"));
  b = ok(ratchetDecrypt(b, later.message)).state;
  // The init chain is now an earlier chain for Bob: still a replay, not an unknown key.
  assert.equal(reason(ratchetDecrypt(b, messages[0])), "replay");
});

Deno.test("ratchet: every flipped byte of a message fails and leaves the state usable", () => {
  const { b } = started(1);
  const { a } = started(1);
  const { message } = ratchetEncrypt(a, enc.encode("tamper me"));
  for (let i = 0; i < message.length; i++) {
    const t = message.slice();
    t[i] ^= 0x01;
    const r = ratchetDecrypt(b, t, counterRng(90));
    assert.equal(r.ok, false, `byte ${i}`);
  }
  assert.equal(ok(ratchetDecrypt(b, message)).text, "tamper me");
});

Deno.test("ratchet: a reflected message (sent back to its sender) does not open", () => {
  let { a, b, messages } = started(1);
  assert.equal(ratchetDecrypt(a, messages[0], counterRng(5)).ok, false);
  const reply = ratchetEncrypt(b, enc.encode("b0"));
  b = reply.state;
  assert.equal(ratchetDecrypt(b, reply.message, counterRng(5)).ok, false);
  a = ok(ratchetDecrypt(a, reply.message)).state;
  const m = ratchetEncrypt(a, enc.encode("a1"));
  assert.equal(reason(ratchetDecrypt(m.state, m.message, counterRng(6))), "auth_failed");
});

Deno.test("ratchet: another identity cannot accept or open the session", () => {
  const { messages } = started(1);
  assert.equal(reason(acceptSession(carol, alice.publicKey, messages[0])), "auth_failed");
  // Carol claiming to be Alice to Bob: she lacks Alice's identity secret, so SK differs.
  let c = initiateSession(carol, bob.publicKey);
  const forged = ratchetEncrypt(c, enc.encode("I am alice"));
  c = forged.state;
  assert.equal(reason(acceptSession(bob, alice.publicKey, forged.message)), "auth_failed");
});

Deno.test("ratchet: out of order within MAX_SKIP opens; each skipped key is used once", () => {
  let { a, b } = started(1);
  const ms: Uint8Array[] = [];
  for (let i = 0; i < 20; i++) {
    const r = ratchetEncrypt(a, enc.encode(`m${i}`));
    a = r.state;
    ms.push(r.message);
  }
  b = ok(ratchetDecrypt(b, ms[19])).state;
  assert.equal(b.skipped.length, 19);
  for (const i of [5, 0, 18, 1]) {
    const r = ok(ratchetDecrypt(b, ms[i]));
    assert.equal(r.text, `m${i}`);
    b = r.state;
  }
  assert.equal(b.skipped.length, 15);
  assert.equal(reason(ratchetDecrypt(b, ms[5])), "replay");
});

Deno.test("ratchet: skipping more than MAX_SKIP fails cleanly; exactly MAX_SKIP works", () => {
  let { a, b } = started(1);
  let far: Uint8Array | undefined;
  for (let i = 0; i <= MAX_SKIP + 1; i++) {
    const r = ratchetEncrypt(a, enc.encode(`m${i}`));
    a = r.state;
    if (i === MAX_SKIP) far = r.message; // n = MAX_SKIP + 1: skips 1..MAX_SKIP = MAX_SKIP keys
    if (i === MAX_SKIP + 1) {
      assert.equal(reason(ratchetDecrypt(b, r.message)), "too_many_skipped");
    }
  }
  b = ok(ratchetDecrypt(b, far!)).state;
  assert.equal(b.skipped.length, MAX_SKIP);
});

Deno.test("ratchet: the skipped-key store keeps at most MAX_SKIPPED_KEYS, dropping the oldest", () => {
  let { a, b } = started(1);
  const reply = ratchetEncrypt(b, enc.encode("r"));
  b = reply.state;
  a = ok(ratchetDecrypt(a, reply.message)).state;
  // Three chains of Alice's, each with MAX_SKIP - 1 messages Bob never gets but the last.
  const lost: Uint8Array[] = [];
  for (let chain = 0; chain < 3; chain++) {
    let last: Uint8Array | undefined;
    for (let i = 0; i < MAX_SKIP; i++) {
      const r = ratchetEncrypt(a, enc.encode(`c${chain}m${i}`));
      a = r.state;
      if (i === 0) lost.push(r.message);
      last = r.message;
    }
    b = ok(ratchetDecrypt(b, last!)).state;
    const back = ratchetEncrypt(b, enc.encode("ack"));
    b = back.state;
    a = ok(ratchetDecrypt(a, back.message)).state;
  }
  assert.equal(b.skipped.length, MAX_SKIPPED_KEYS);
  // The first chain's first message was evicted: its key is gone (reported as a replay).
  assert.equal(reason(ratchetDecrypt(b, lost[0])), "replay");
  assert.equal(ok(ratchetDecrypt(b, lost[2])).text, "c2m0");
});

Deno.test("ratchet: a stolen state cannot open messages it already opened", () => {
  let { a, b } = started(1);
  const m = ratchetEncrypt(a, enc.encode("secret"));
  a = m.state;
  b = ok(ratchetDecrypt(b, m.message)).state;
  // An attacker copies Bob's whole state now: the message key is gone from it.
  const stolen = structuredClone(b);
  assert.equal(reason(ratchetDecrypt(stolen, m.message)), "replay");
});

Deno.test("ratchet: stolen identity keys open the first flight only, not what follows", () => {
  let { a, b, messages } = started(1);
  // The thief knows both identity secrets, so it can play Bob accepting the session...
  assert.equal(ok(acceptSession(bob, alice.publicKey, messages[0], counterRng(200))).text, "a0");
  // ...but after one round trip new DH keys protect everything.
  const reply = ratchetEncrypt(b, enc.encode("b0"));
  b = reply.state;
  a = ok(ratchetDecrypt(a, reply.message)).state;
  const later = ratchetEncrypt(a, enc.encode("after the ratchet"));
  const thief = ok(acceptSession(bob, alice.publicKey, messages[0], counterRng(201))).state;
  assert.equal(ratchetDecrypt(thief, later.message).ok, false);
  assert.equal(ok(ratchetDecrypt(b, later.message)).text, "after the ratchet");
});

Deno.test("ratchet: malformed input is reported as such", () => {
  const { b } = started(1);
  assert.equal(reason(ratchetDecrypt(b, new Uint8Array(10))), "malformed");
  assert.equal(reason(ratchetDecrypt(b, new Uint8Array(HEADER_BYTES + 16))), "malformed");
  const smallOrder = encodeHeader({ type: "normal", dh: new Uint8Array(32), pn: 0, n: 0 });
  const m = new Uint8Array(HEADER_BYTES + 16);
  m.set(smallOrder);
  assert.equal(reason(ratchetDecrypt(b, m)), "malformed");
  assert.equal(reason(acceptSession(bob, alice.publicKey, m)), "malformed");
});
