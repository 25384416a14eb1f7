/**
 * Hostile input against a live relay over real WebSockets: every bad frame gets an error frame
 * (or the documented close), the relay never crashes, and other clients keep being served.
 */
import assert from "node:assert/strict";
import {
  authMessage,
  generateKeyPair,
  type KeyPair,
  sealEnvelope,
  sign,
  toBase64,
} from "@chat-p2p/protocol";
import { RawClient } from "./raw_client.ts";
import { startTestRelay } from "./relay_harness.ts";

function message(from: KeyPair, to: KeyPair, text = "hello") {
  return sealEnvelope(
    { v: 1, kind: "message", text, sent_at: new Date().toISOString() },
    from,
    toBase64(to.publicKey),
  );
}

/** Proves the relay still serves: a fresh pair exchanges one message. */
async function stillServes(url: string): Promise<void> {
  const a = generateKeyPair(), b = generateKeyPair();
  await using ca = await RawClient.authed(url, a);
  await using cb = await RawClient.authed(url, b);
  await cb.next("synced");
  const env = message(a, b, "still here");
  ca.send({ v: 1, type: "send", envelope: env });
  assert.equal((await ca.next("accepted")).id, env.id);
  assert.equal((await cb.next("deliver")).envelope.id, env.id);
}

Deno.test("hostile: malformed and mistyped frames each get an error frame, socket stays usable", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair();
  await using c = await RawClient.authed(relay.url, alice);
  const good = message(alice, generateKeyPair());
  const cases: Array<[string, string]> = [
    ["not json", "bad_json"],
    ["{", "bad_json"],
    ["[]", "bad_frame"],
    ["null", "bad_frame"],
    ["42", "bad_frame"],
    ['"auth"', "bad_frame"],
    ["{}", "bad_frame"],
    [JSON.stringify({ type: "send" }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "send" }), "unsupported_version"],
    [JSON.stringify({ v: "1", type: "send" }), "unsupported_version"],
    [JSON.stringify({ v: 1, type: "nope" }), "unknown_type"],
    [JSON.stringify({ v: 1, type: 7 }), "bad_frame"],
    [JSON.stringify({ v: 1, type: "send" }), "bad_frame"],
    [JSON.stringify({ v: 1, type: "send", envelope: "x" }), "bad_frame"],
    [JSON.stringify({ v: 1, type: "send", envelope: { ...good, to: "AAAA" } }), "bad_frame"],
    [JSON.stringify({ v: 1, type: "send", envelope: { ...good, nonce: 5 } }), "bad_frame"],
    [JSON.stringify({ v: 1, type: "send", envelope: { ...good, v: 9 } }), "unsupported_version"],
    [JSON.stringify({ v: 1, type: "send", envelope: { ...good, id: "../../etc" } }), "bad_frame"],
    [JSON.stringify({ v: 1, type: "ack", ids: "x" }), "bad_frame"],
    [JSON.stringify({ v: 1, type: "ack", ids: [] }), "bad_frame"],
    [JSON.stringify({ v: 1, type: "ack", ids: [1, 2] }), "bad_frame"],
    [JSON.stringify({ v: 1, type: "ping", nonce: {} }), "bad_frame"],
  ];
  for (const [text, code] of cases) {
    c.send(text);
    const f = await c.next("error");
    assert.equal(f.code, code, `for ${text}: ${JSON.stringify(f)}`);
    assert.equal(typeof f.message, "string");
    assert.ok(!/\bat .*\.ts:\d+/.test(f.message), "no stack traces on the wire");
  }
  // the same socket still works
  c.send({ v: 1, type: "ping", nonce: "n1" });
  assert.deepEqual(await c.next("pong"), { v: 1, type: "pong", nonce: "n1" });
  c.send({ v: 1, type: "send", envelope: good });
  assert.equal((await c.next("accepted")).id, good.id);
  await stillServes(relay.url);
});

Deno.test("hostile: binary frames get an error; oversized frames get an error and close 1009", async () => {
  await using relay = await startTestRelay({ RELAY_MAX_FRAME_BYTES: "4096" });
  await using c = await RawClient.connect(relay.url);
  c.send(new Uint8Array([1, 2, 3]));
  assert.equal((await c.next("error")).code, "binary_frame");
  c.send("x".repeat(5000));
  assert.equal((await c.next("error")).code, "frame_too_large");
  assert.equal(await c.closed, 1009);
  // multi-byte text is measured in UTF-8 bytes, not characters
  await using d = await RawClient.connect(relay.url);
  d.send("é".repeat(2100)); // 2100 chars, 4200 bytes
  assert.equal((await d.next("error")).code, "frame_too_large");
  assert.equal(await d.closed, 1009);
  await stillServes(relay.url);
});

Deno.test("hostile: frames before auth are refused and nothing is stored", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair(), bob = generateKeyPair();
  await using c = await RawClient.connect(relay.url);
  const env = message(alice, bob);
  c.send({ v: 1, type: "send", envelope: env });
  const e = await c.next("error");
  assert.equal(e.code, "not_authenticated");
  assert.equal(e.id, env.id);
  c.send({ v: 1, type: "ack", ids: ["abcdefgh"] });
  assert.equal((await c.next("error")).code, "not_authenticated");
  assert.deepEqual(await relay.router.mailbox.depth(toBase64(bob.publicKey)), {
    count: 0,
    bytes: 0,
  });
});

Deno.test("hostile: a bad signature, a wrong key or another relay's URL fails auth and closes 1008", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair(), mallory = generateKeyPair();
  // signature by mallory for alice's key
  await using a = await RawClient.connect(relay.url);
  a.send({
    v: 1,
    type: "auth",
    key: toBase64(alice.publicKey),
    relay: relay.url,
    signature: toBase64(
      sign(authMessage(relay.url, a.challenge, toBase64(alice.publicKey)), mallory.secretKey),
    ),
  });
  assert.equal((await a.next("error")).code, "auth_failed");
  assert.equal(await a.closed, 1008);
  // a correct signature over another relay's URL
  await using b = await RawClient.connect(relay.url);
  b.auth(alice, "ws://evil.example:8080/ws");
  const e = await b.next("error");
  assert.equal(e.code, "auth_failed");
  assert.match(e.message, /relay URL/);
  assert.equal(await b.closed, 1008);
  // garbage signature bytes of the right shape
  await using d = await RawClient.connect(relay.url);
  d.send({
    v: 1,
    type: "auth",
    key: toBase64(alice.publicKey),
    relay: relay.url,
    signature: toBase64(new Uint8Array(64)),
  });
  assert.equal((await d.next("error")).code, "auth_failed");
  await stillServes(relay.url);
});

Deno.test("hostile: a captured auth frame replayed on a new socket fails (fresh challenge)", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair();
  await using first = await RawClient.connect(relay.url);
  const sent: string[] = [];
  const orig = first.ws.send.bind(first.ws);
  first.ws.send = (d: string) => {
    sent.push(d);
    orig(d);
  };
  first.auth(alice);
  await first.next("ready");
  await using second = await RawClient.connect(relay.url);
  second.send(sent[0]);
  assert.equal((await second.next("error")).code, "auth_failed");
  assert.equal(await second.closed, 1008);
});

Deno.test("hostile: an envelope whose from is not the authenticated key is refused (spoofing)", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair(), bob = generateKeyPair(), mallory = generateKeyPair();
  await using m = await RawClient.authed(relay.url, mallory);
  const forged = message(alice, bob); // really sealed by alice, sent by mallory
  m.send({ v: 1, type: "send", envelope: forged });
  const e = await m.next("error");
  assert.equal(e.code, "spoofed_sender");
  assert.equal(e.id, forged.id);
  assert.equal((await relay.router.mailbox.depth(toBase64(bob.publicKey))).count, 0);
});

Deno.test("hostile: an unauthenticated socket is closed after the auth timeout", async () => {
  await using relay = await startTestRelay({ RELAY_AUTH_TIMEOUT_MS: "200" });
  await using c = await RawClient.connect(relay.url);
  assert.equal((await c.next("error", 3000)).code, "auth_timeout");
  assert.equal(await c.closed, 1008);
});

Deno.test("hostile: a second auth on an authenticated socket is refused", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair();
  await using c = await RawClient.authed(relay.url, alice);
  c.auth(alice);
  assert.equal((await c.next("error")).code, "already_authenticated");
});
