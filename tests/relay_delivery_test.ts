/**
 * Store-then-notify delivery through a live embedded relay: offline holding, order, survival of a
 * restart, ack-then-forget, duplicate ids, limits and the HTTP endpoints.
 */
import assert from "node:assert/strict";
import { generateKeyPair, type KeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { RawClient } from "./raw_client.ts";
import { startTestRelay } from "./relay_harness.ts";

function message(from: KeyPair, to: KeyPair, text = "hello") {
  return sealEnvelope(
    { v: 1, kind: "message", text, sent_at: new Date().toISOString() },
    from,
    toBase64(to.publicKey),
  );
}

Deno.test("delivery: held while offline, survives a relay restart, drained oldest first, forgotten after ack", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-relay-" });
  const alice = generateKeyPair(), bob = generateKeyPair();
  const sent = Array.from({ length: 5 }, (_, i) => message(alice, bob, `m${i}`));
  {
    await using relay = await startTestRelay({ RELAY_DATA_DIR: dataDir });
    await using a = await RawClient.authed(relay.url, alice);
    for (const e of sent) a.send({ v: 1, type: "send", envelope: e });
    for (const e of sent) assert.equal((await a.next("accepted")).id, e.id);
  }
  {
    await using relay = await startTestRelay({ RELAY_DATA_DIR: dataDir });
    await using b = await RawClient.authed(relay.url, bob);
    const got = [];
    for (let i = 0; i < sent.length; i++) got.push((await b.next("deliver")).envelope);
    assert.deepEqual(got, sent, "same envelopes, byte for byte, in send order");
    assert.equal((await b.next("synced")).count, 5);
    b.send({ v: 1, type: "ack", ids: sent.slice(0, 3).map((e) => e.id) });
    await waitForDepth(relay.router.mailbox, bob, 2);
  }
  {
    await using relay = await startTestRelay({ RELAY_DATA_DIR: dataDir });
    await using b = await RawClient.authed(relay.url, bob);
    const again = [(await b.next("deliver")).envelope.id, (await b.next("deliver")).envelope.id];
    assert.deepEqual(again, [sent[3].id, sent[4].id], "unacked ones come again, acked ones never");
    assert.equal((await b.next("synced")).count, 2);
  }
  await Deno.remove(dataDir, { recursive: true });
});

async function waitForDepth(
  mailbox: { depth(id: string): Promise<{ count: number }> },
  who: KeyPair,
  count: number,
) {
  const end = Date.now() + 5000;
  while ((await mailbox.depth(toBase64(who.publicKey))).count !== count) {
    if (Date.now() > end) throw new Error(`depth never reached ${count}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("delivery: live messages are pushed at once, to every socket of the recipient", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair(), bob = generateKeyPair();
  await using b1 = await RawClient.authed(relay.url, bob);
  await using b2 = await RawClient.authed(relay.url, bob);
  await b1.next("synced");
  await b2.next("synced");
  await using a = await RawClient.authed(relay.url, alice);
  const e = message(alice, bob);
  a.send({ v: 1, type: "send", envelope: e });
  await a.next("accepted");
  assert.deepEqual((await b1.next("deliver")).envelope, e);
  assert.deepEqual((await b2.next("deliver")).envelope, e);
});

Deno.test("delivery: a resent id is accepted again but stored once", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair(), bob = generateKeyPair();
  await using a = await RawClient.authed(relay.url, alice);
  const e = message(alice, bob);
  a.send({ v: 1, type: "send", envelope: e });
  a.send({ v: 1, type: "send", envelope: e });
  assert.equal((await a.next("accepted")).id, e.id);
  assert.equal((await a.next("accepted")).id, e.id);
  assert.equal((await relay.router.mailbox.depth(toBase64(bob.publicKey))).count, 1);
});

Deno.test("delivery: a full mailbox refuses with mailbox_full naming the envelope, and stores nothing", async () => {
  await using relay = await startTestRelay({ RELAY_MAILBOX_MAX_COUNT: "2" });
  const alice = generateKeyPair(), bob = generateKeyPair();
  await using a = await RawClient.authed(relay.url, alice);
  const es = [message(alice, bob), message(alice, bob), message(alice, bob)];
  for (const e of es) a.send({ v: 1, type: "send", envelope: e });
  await a.next("accepted");
  await a.next("accepted");
  const err = await a.next("error");
  assert.equal(err.code, "mailbox_full");
  assert.equal(err.id, es[2].id);
  assert.equal((await relay.router.mailbox.depth(toBase64(bob.publicKey))).count, 2);
});

Deno.test("delivery: a recipient cannot ack someone else's mailbox", async () => {
  await using relay = await startTestRelay();
  const alice = generateKeyPair(), bob = generateKeyPair(), mallory = generateKeyPair();
  await using a = await RawClient.authed(relay.url, alice);
  const e = message(alice, bob);
  a.send({ v: 1, type: "send", envelope: e });
  await a.next("accepted");
  await using m = await RawClient.authed(relay.url, mallory);
  await m.next("synced");
  m.send({ v: 1, type: "ack", ids: [e.id] });
  m.send({ v: 1, type: "ping" });
  await m.next("pong");
  assert.equal((await relay.router.mailbox.depth(toBase64(bob.publicKey))).count, 1);
  assert.equal(
    m.frames.filter((f) => f.type === "deliver").length,
    0,
    "mallory sees nothing of bob's",
  );
});

Deno.test("delivery: /healthz, /readyz and /metrics answer; unknown paths get JSON 404", async () => {
  await using relay = await startTestRelay();
  const base = `http://127.0.0.1:${relay.port}`;
  const h = await fetch(`${base}/healthz`);
  assert.equal(h.status, 200);
  assert.deepEqual(await h.json(), {
    status: "ok",
    mailbox: "sqlite",
    bus: "memory",
    connections: 0,
  });
  const r = await fetch(`${base}/readyz`);
  assert.equal(r.status, 200);
  const ready = await r.json();
  assert.equal(ready.ready, true);
  assert.deepEqual([ready.mailbox.kind, ready.mailbox.ok], ["sqlite", true]);
  assert.deepEqual([ready.bus.kind, ready.bus.ok], ["memory", true]);
  const m = await fetch(`${base}/metrics`);
  const text = await m.text();
  assert.match(text, /chat_relay_connections\{state="authenticated"\} 0/);
  const nf = await fetch(`${base}/nope`);
  assert.equal(nf.status, 404);
  assert.equal((await nf.json()).error, "not_found");
  const plain = await fetch(`${base}/ws`);
  assert.equal(plain.status, 426);
  await plain.body?.cancel();
});

Deno.test("delivery: shutdown closes live sockets with 1001 (going away)", async () => {
  const relay = await startTestRelay();
  const c = await RawClient.authed(relay.url, generateKeyPair());
  await relay.shutdown();
  assert.equal(await c.closed, 1001);
  await relay[Symbol.asyncDispose]();
});
