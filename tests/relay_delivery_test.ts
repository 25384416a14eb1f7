/**
 * Store-and-notify delivery through a live embedded relay: offline holding, order, survival of a
 * restart, ack-then-forget, duplicate ids, limits and the HTTP endpoints.
 */
import assert from "node:assert/strict";
import { envelope, inboxBox, pairBox, RawClient, type TestMailbox } from "./raw_client.ts";
import { startTestRelay } from "./relay_harness.ts";

async function waitForDepth(
  mailbox: { depth(id: string): Promise<{ count: number }> },
  box: TestMailbox,
  count: number,
) {
  const end = Date.now() + 5000;
  while ((await mailbox.depth(box.id)).count !== count) {
    if (Date.now() > end) throw new Error(`depth never reached ${count}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("delivery: held while offline, survives a relay restart, drained oldest first, forgotten after ack", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-relay-" });
  const box = pairBox();
  const sent = Array.from({ length: 5 }, () => envelope(box));
  {
    await using relay = await startTestRelay({ RELAY_DATA_DIR: dataDir });
    await using reader = await RawClient.reader(relay.url, box); // registers the mailbox
    await reader.close();
    await using a = await RawClient.connect(relay.url);
    for (const e of sent) a.sendEnvelope(e);
    for (const e of sent) assert.equal((await a.next("accepted")).id, e.id);
  }
  {
    await using relay = await startTestRelay({ RELAY_DATA_DIR: dataDir });
    await using b = await RawClient.connect(relay.url);
    const got = await b.openAndSync(box);
    assert.deepEqual(got, sent, "same envelopes, byte for byte, in send order");
    b.ack(box, sent.slice(0, 3).map((e) => e.id));
    await waitForDepth(relay.router.mailbox, box, 2);
  }
  {
    await using relay = await startTestRelay({ RELAY_DATA_DIR: dataDir });
    await using b = await RawClient.connect(relay.url);
    const again = (await b.openAndSync(box)).map((e) => e.id);
    assert.deepEqual(again, [sent[3].id, sent[4].id], "unacked ones come again, acked ones never");
    // The registration survived the restarts too: sends without key are still taken.
    await using a = await RawClient.connect(relay.url);
    assert.equal((await a.sendAndWait(envelope(box))).type, "accepted");
  }
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("delivery: live messages are pushed at once, to every socket that opened the mailbox", async () => {
  await using relay = await startTestRelay();
  const box = pairBox();
  await using b1 = await RawClient.reader(relay.url, box);
  await using b2 = await RawClient.reader(relay.url, box, inboxBox());
  await using a = await RawClient.connect(relay.url);
  const e = envelope(box);
  assert.equal((await a.sendAndWait(e)).type, "accepted");
  assert.deepEqual((await b1.next("deliver")).envelope, e);
  assert.deepEqual((await b2.next("deliver")).envelope, e);
  assert.deepEqual(a.frames, [], "the sender's socket gets nothing but its answers");
});

Deno.test("delivery: a resent id is accepted again but stored once", async () => {
  await using relay = await startTestRelay();
  const box = pairBox();
  await RawClient.register(relay.url, box);
  await using a = await RawClient.connect(relay.url);
  const e = envelope(box);
  a.sendEnvelope(e);
  a.sendEnvelope(e);
  assert.equal((await a.next("accepted")).id, e.id);
  assert.equal((await a.next("accepted")).id, e.id);
  assert.equal((await relay.router.mailbox.depth(box.id)).count, 1);
});

Deno.test("delivery: a full mailbox refuses with mailbox_full naming the envelope, and stores nothing", async () => {
  await using relay = await startTestRelay({ RELAY_MAILBOX_MAX_COUNT: "2" });
  const box = pairBox();
  await RawClient.register(relay.url, box);
  await using a = await RawClient.connect(relay.url);
  const es = [envelope(box), envelope(box), envelope(box)];
  for (const e of es) a.sendEnvelope(e);
  await a.next("accepted");
  await a.next("accepted");
  const err = await a.next("error");
  assert.equal(err.code, "mailbox_full");
  assert.equal(err.id, es[2].id);
  assert.equal((await relay.router.mailbox.depth(box.id)).count, 2);
});

Deno.test("delivery: a socket cannot ack a mailbox it did not open", async () => {
  await using relay = await startTestRelay();
  const box = pairBox();
  await using _b = await RawClient.reader(relay.url, box);
  await using a = await RawClient.connect(relay.url);
  const e = envelope(box);
  await a.sendAndWait(e);
  await using m = await RawClient.reader(relay.url, pairBox());
  m.ack(box, [e.id]);
  const refused = await m.next("error");
  assert.deepEqual([refused.code, refused.mailbox], ["not_open", box.id]);
  assert.equal((await relay.router.mailbox.depth(box.id)).count, 1);
  assert.equal(
    m.frames.filter((f) => f.type === "deliver").length,
    0,
    "the other socket sees nothing of that mailbox",
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
  assert.match(text, /chat_relay_connections\{state="reading"\} 0/);
  const nf = await fetch(`${base}/nope`);
  assert.equal(nf.status, 404);
  assert.equal((await nf.json()).error, "not_found");
  const plain = await fetch(`${base}/ws`);
  assert.equal(plain.status, 426);
  await plain.body?.cancel();
});

Deno.test("delivery: shutdown closes live sockets with 1001 (going away)", async () => {
  const relay = await startTestRelay();
  const reader = await RawClient.reader(relay.url, pairBox());
  const sender = await RawClient.connect(relay.url);
  await relay.shutdown();
  assert.equal(await reader.closed, 1001);
  assert.equal(await sender.closed, 1001);
  await relay[Symbol.asyncDispose]();
});
