/**
 * Hostile input against a live relay over real WebSockets: every bad frame gets an error frame
 * (or the documented close), the relay never crashes, and other clients keep being served.
 */
import assert from "node:assert/strict";
import {
  authMessage,
  generateKeyPair,
  openMessage,
  sealEnvelope,
  sign,
  toBase64,
} from "@chat-p2p/protocol";
import { canonical, envelope, inboxBox, pairBox, RawClient } from "./raw_client.ts";
import { startTestRelay } from "./relay_harness.ts";

/** Proves the relay still serves: a fresh mailbox gets one message. */
async function stillServes(url: string): Promise<void> {
  const box = pairBox();
  await using reader = await RawClient.reader(url, box);
  await using sender = await RawClient.connect(url);
  const e = envelope(box);
  assert.equal((await sender.sendAndWait(e)).type, "accepted");
  assert.equal((await reader.next("deliver")).envelope.id, e.id);
}

Deno.test("hostile: malformed and mistyped frames each get an error frame, socket stays usable", async () => {
  await using relay = await startTestRelay();
  const box = pairBox(), bob = inboxBox();
  await using c = await RawClient.reader(relay.url, box);
  const good = envelope(box);
  const open = { v: 2, type: "open", kind: "pair", key: toBase64(box.auth.publicKey) };
  const signature = toBase64(new Uint8Array(64));
  const cases: Array<[string, string]> = [
    ["not json", "bad_json"],
    ["{", "bad_json"],
    ["[]", "bad_frame"],
    ["null", "bad_frame"],
    ["42", "bad_frame"],
    ['"open"', "bad_frame"],
    ["{}", "bad_frame"],
    [JSON.stringify({ type: "send" }), "bad_frame"],
    [JSON.stringify({ v: 3, type: "send" }), "unsupported_version"],
    [JSON.stringify({ v: "2", type: "send" }), "unsupported_version"],
    [JSON.stringify({ v: 2, type: "nope" }), "unknown_type"],
    [JSON.stringify({ v: 2, type: "deliver", envelope: good }), "unknown_type"],
    [JSON.stringify({ v: 2, type: 7 }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "send" }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "send", envelope: "x" }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "send", envelope: { ...good, to: "AAAA" } }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "send", envelope: { ...good, body: 5 } }), "bad_frame"],
    [
      JSON.stringify({
        v: 2,
        type: "send",
        envelope: { ...good, body: toBase64(new Uint8Array(600)) },
      }),
      "bad_frame",
    ],
    [JSON.stringify({ v: 2, type: "send", envelope: { ...good, v: 9 } }), "unsupported_version"],
    [JSON.stringify({ v: 2, type: "send", envelope: { ...good, id: "../../etc" } }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "send", envelope: good, key: "not a key" }), "bad_frame"],
    [
      JSON.stringify({ v: 2, type: "send", envelope: good, key: toBase64(bob.auth.publicKey) }),
      "bad_frame",
    ],
    [JSON.stringify({ ...open, kind: "mailbox", signature }), "bad_frame"],
    [JSON.stringify({ ...open, key: toBase64(new Uint8Array(32)), signature }), "bad_frame"],
    [JSON.stringify({ ...open, signature: "AAAA" }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "ack", mailbox: box.id, ids: "x" }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "ack", mailbox: box.id, ids: [] }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "ack", mailbox: box.id, ids: [1, 2] }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "ack", mailbox: "AAAA", ids: ["abcdefgh"] }), "bad_frame"],
    [JSON.stringify({ v: 2, type: "ack", mailbox: bob.id, ids: ["abcdefgh"] }), "not_open"],
    [JSON.stringify({ v: 2, type: "ping", nonce: {} }), "bad_frame"],
  ];
  for (const [text, code] of cases) {
    c.send(text);
    const f = await c.next("error");
    assert.equal(f.code, code, `for ${text}: ${JSON.stringify(f)}`);
    assert.equal(typeof f.message, "string");
    assert.ok(!/\bat .*\.ts:\d+/.test(f.message), "no stack traces on the wire");
  }
  // the same socket still works
  c.send({ v: 2, type: "ping", nonce: "n1" });
  assert.deepEqual(await c.next("pong"), { v: 2, type: "pong", nonce: "n1" });
  assert.equal((await c.sendAndWait(good)).type, "accepted");
  assert.equal((await c.next("deliver")).envelope.id, good.id);
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

Deno.test("hostile: the default frame limit takes the largest padded message, and nothing larger", async () => {
  await using relay = await startTestRelay();
  const box = pairBox();
  await using reader = await RawClient.reader(relay.url, box);
  await using c = await RawClient.connect(relay.url);
  const largest = envelope(box, undefined, 65536 + 97);
  assert.equal((await c.sendAndWait(largest)).type, "accepted");
  assert.equal((await reader.next("deliver")).envelope.id, largest.id);
  c.send("x".repeat(131073));
  assert.equal((await c.next("error")).code, "frame_too_large");
  assert.equal(await c.closed, 1009);
});

Deno.test("attack: protocol-v1 frames get unsupported_version with a message to upgrade chat-p2p", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair(), bob = generateKeyPair();
  const key = toBase64(alice.publicKey);
  const url = canonical(relay.url);
  await using c = await RawClient.connect(relay.url);
  const v1 = sealEnvelope(
    { v: 1, kind: "message", text: "hi", sent_at: "" },
    alice,
    toBase64(bob.publicKey),
  );
  for (
    const f of [
      {
        v: 1,
        type: "auth",
        key,
        relay: url,
        signature: toBase64(sign(authMessage(url, c.challenge, key), alice.secretKey)),
      },
      { v: 1, type: "send", envelope: v1 },
      { v: 1, type: "ack", ids: [v1.id] },
      { v: 1, type: "ping" },
    ]
  ) {
    c.send(f);
    const e = await c.next("error");
    assert.equal(e.code, "unsupported_version", JSON.stringify(f));
    assert.match(e.message, /upgrade chat-p2p/);
  }
  c.sendEnvelope(v1 as never);
  const e = await c.next("error");
  assert.deepEqual([e.code, e.id], ["unsupported_version", v1.id]);
  assert.match(e.message, /v1 envelopes cannot be delivered to v2 clients/);
  assert.equal(c.closeCode, undefined);
  await stillServes(relay.url);
});

Deno.test("hostile: a bad signature, another key's signature or another relay's URL fails the open; the socket stays", async () => {
  await using relay = await startTestRelay();
  const box = pairBox(), mallory = generateKeyPair();
  await using c = await RawClient.connect(relay.url);
  const key = toBase64(box.auth.publicKey);
  const signed = openMessage(canonical(relay.url), c.challenge, "pair", key);
  for (
    const signature of [
      sign(signed, mallory.secretKey), // by mallory, for the mailbox's key
      new Uint8Array(64), // garbage of the right shape
    ]
  ) {
    c.send({ v: 2, type: "open", kind: "pair", key, signature: toBase64(signature) });
    const e = await c.next("error");
    assert.deepEqual([e.code, e.mailbox], ["auth_failed", box.id]);
  }
  await c.open(box, "ws://evil.example:8080/ws");
  const e = await c.next("error");
  assert.equal(e.code, "auth_failed");
  assert.match(e.message, /RELAY_PUBLIC_URL/);
  assert.equal(c.closeCode, undefined);
  assert.deepEqual(await c.openAndSync(box), [], "a correct open still works");
  assert.equal(relay.metrics.get("auth_failures_total"), 3);
  await stillServes(relay.url);
});

Deno.test("attack: a send to a pair mailbox nobody opened is unknown_mailbox and stores nothing", async () => {
  await using relay = await startTestRelay();
  const box = pairBox();
  await using c = await RawClient.connect(relay.url);
  const e = envelope(box);
  const answer = await c.sendAndWait(e);
  assert.deepEqual([answer.code, answer.id], ["unknown_mailbox", e.id]);
  assert.deepEqual(await relay.router.mailbox.depth(box.id), { count: 0, bytes: 0 });
});

Deno.test("hostile: opening the same mailbox twice drains it again and changes nothing else", async () => {
  await using relay = await startTestRelay();
  const box = pairBox();
  await using c = await RawClient.reader(relay.url, box);
  await using s = await RawClient.connect(relay.url);
  const e = envelope(box);
  await s.sendAndWait(e);
  assert.equal((await c.next("deliver")).envelope.id, e.id);
  assert.deepEqual((await c.openAndSync(box)).map((x) => x.id), [e.id]);
});
