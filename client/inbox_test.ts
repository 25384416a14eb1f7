import assert from "node:assert/strict";
import { type EnvelopeV2, generateKeyPair, newId, toBase64 } from "@chat-p2p/protocol";
import { TestPeer } from "../tests/v2_peer.ts";
import { Inbox, type InboxOutcome } from "./inbox.ts";
import { ReceiptQueue } from "./receipts.ts";
import { profileSealer } from "./sealing.ts";
import { ProfileStore } from "./store/profile_store.ts";
import { RequestStore } from "./store/requests.ts";

const now = new Date("2025-01-01T00:00:00Z");

/** Me, with bob as a contact (his pair mailbox opened), and mallory, who is not one. */
async function setup(opts: { acceptRequests?: boolean } = {}) {
  const home = await Deno.makeTempDir({ prefix: "chat-p2p-test-" });
  const store = new ProfileStore({ home, profile: "default" });
  const me = generateKeyPair();
  store.saveIdentity(me);
  const myKey = toBase64(me.publicKey);
  const bob = await TestPeer.create();
  const mallory = await TestPeer.create();
  store.saveContacts([{ name: "bob", key: bob.key }]);
  const sealer = profileSealer(store, me);
  await sealer.mailboxes.readMailbox(bob.key); // what the reader socket does on connecting
  const requests = new RequestStore(store);
  const inbox = new Inbox({ store, sealer, requests, now: () => now, ...opts });
  const handle = (env: EnvelopeV2): Promise<InboxOutcome> => inbox.receive(env);
  return {
    home,
    store,
    me,
    myKey,
    bob,
    mallory,
    sealer,
    requests,
    inbox,
    handle,
    history: (peer: TestPeer) => store.history(peer.key),
    async [Symbol.asyncDispose]() {
      await bob[Symbol.asyncDispose]();
      await mallory[Symbol.asyncDispose]();
      await Deno.remove(home, { recursive: true });
    },
  };
}

const text = (o: InboxOutcome) =>
  o.kind === "message" ? `${o.message.text}${o.duplicate ? "!" : ""}` : o.kind;

Deno.test("Inbox: a message is stored once; the same envelope again is a duplicate", async () => {
  await using s = await setup();
  const m = await s.bob.message(s.myKey, "hi");
  const o1 = await s.handle(m.envelope);
  assert.ok(o1.kind === "message" && !o1.duplicate && o1.message.contact === "bob");
  assert.equal(o1.message.id, m.id, "the message id, not the envelope id");
  assert.deepEqual(o1.delivery, { mailbox: m.envelope.to, envelope: m.envelope.id });
  // An ack that did not reach the relay: the same envelope comes again (its key is used up).
  const o2 = await s.handle(m.envelope);
  assert.ok(o2.kind === "message" && o2.duplicate && o2.message.id === m.id);
  const lines = Deno.readTextFileSync(s.store.historyPath(s.bob.key)).trim().split("\n");
  assert.equal(lines.length, 1);
});

Deno.test("Inbox: a replay under a fresh envelope id is never shown again (issue 10, defect 3)", async () => {
  await using s = await setup();
  const m = await s.bob.message(s.myKey, "pay 10");
  assert.equal(text(await s.handle(m.envelope)), "pay 10");
  // The relay re-sends the same ratchet message in a new body under a new envelope id.
  for (
    const replay of [{ ...m.envelope, id: newId() }, await s.bob.wrap(s.myKey, m.wire, "pair")]
  ) {
    const o = await s.handle(replay);
    assert.equal(o.kind, "dropped", JSON.stringify(o));
  }
  // Through the request inbox too.
  const asRequest = await s.bob.wrap(s.myKey, m.wire, "request");
  assert.equal((await s.handle(asRequest)).kind, "dropped");
  assert.deepEqual(s.history(s.bob).entries().map((e) => e.text), ["pay 10"]);
});

Deno.test("Inbox: a message turned around by the relay is not shown as the peer's (issue 10, defect 2)", async () => {
  await using s = await setup();
  // My own message to bob, encrypted on my ratchet with bob.
  const mine = s.sealer.encrypt(s.bob.key, {
    v: 2,
    kind: "message",
    id: "00112233445566778899aabbccddeeff",
    text: "my own words",
    sent_at: now.toISOString(),
  });
  // 1. The relay moves my envelope into the mailbox bob writes to me: the outer layer refuses.
  const out = await s.sealer.pairEnvelope(s.bob.key, mine, newId());
  const readId = (await s.sealer.mailboxes.readMailbox(s.bob.key)).idText;
  const moved = await s.handle({ ...out.envelope, to: readId });
  assert.equal(moved.kind, "rejected");
  // 2. Someone holding bob's box keys (bob himself, or a thief of his key) re-wraps my ratchet
  //    message for the bob → me mailbox: the ratchet's associated data binds sender then
  //    recipient, so it does not open as bob's either.
  const rewrapped = await s.bob.wrap(s.myKey, mine, "pair");
  const o = await s.handle(rewrapped);
  assert.ok(o.kind === "rejected", JSON.stringify(o));
  // 3. As a request "from bob" it does not open either.
  const asRequest = await s.bob.wrap(s.myKey, mine, "request");
  assert.equal((await s.handle(asRequest)).kind, "rejected");
  assert.deepEqual(s.history(s.bob).entries(), [], "nothing shown as bob's");
});

Deno.test("Inbox: an envelope whose outer layer does not open is rejected, never stored", async () => {
  await using s = await setup();
  const m = await s.bob.message(s.myKey, "I am bob");
  const body = atob(m.envelope.body);
  const damaged = btoa(
    body.slice(0, 40) + String.fromCharCode(body.charCodeAt(40) ^ 1) + body.slice(41),
  );
  const o = await s.handle({ ...m.envelope, body: damaged });
  assert.ok(
    o.kind === "rejected" && o.from === s.bob.key && /not from this contact/.test(o.reason),
  );
  assert.deepEqual(s.history(s.bob).entries(), []);
});

Deno.test("Inbox: a forged request claiming a contact's key is rejected and names no one", async () => {
  await using s = await setup();
  // Mallory encrypts on her own ratchet and puts bob's key in the sealed request.
  const m = await s.mallory.message(s.myKey, "I am bob", { via: "request" });
  const { requestEnvelope } = await import("@chat-p2p/protocol");
  const forged = requestEnvelope(s.me.publicKey, s.bob.kp.publicKey, m.wire, newId());
  const o = await s.handle(forged);
  assert.ok(o.kind === "rejected" && o.from === undefined && /forged/.test(o.reason));
  assert.deepEqual(s.history(s.bob).entries(), []);
  assert.deepEqual(s.requests.list(), []);
});

Deno.test("Inbox: strangers' messages are kept as requests; a contact's request is a message", async () => {
  await using s = await setup();
  const r = await s.mallory.message(s.myKey, "hello? it is mallory", { via: "request" });
  const o = await s.handle(r.envelope);
  assert.ok(o.kind === "request" && o.from === s.mallory.key && !o.duplicate);
  assert.equal((await s.handle(r.envelope)).kind, "dropped", "a redelivery is a replay");
  assert.deepEqual(
    s.requests.list().map((q) => [q.key, q.messages.map((x) => x.text)]),
    [[s.mallory.key, ["hello? it is mallory"]]],
  );
  assert.deepEqual(s.store.peersWithHistory(), [], "nothing in history");

  // bob wrote before my pair mailbox existed at the relay: his request is accepted at once.
  const b = await s.bob.message(s.myKey, "first contact from bob", { via: "request" });
  assert.equal(text(await s.handle(b.envelope)), "first contact from bob");

  // Blocked: dropped on arrival, the request and its sessions gone.
  s.requests.block(s.mallory.key);
  const again = await s.mallory.message(s.myKey, "let me in", { via: "request" });
  assert.equal((await s.handle(again.envelope)).kind, "dropped");
  assert.deepEqual(s.requests.list(), []);
});

Deno.test("Inbox: with acceptRequests (a bot) a stranger's message is a message", async () => {
  await using s = await setup({ acceptRequests: true });
  const r = await s.mallory.message(s.myKey, "hi bot", { via: "request" });
  const o = await s.handle(r.envelope);
  assert.ok(o.kind === "message" && o.message.contact === null && o.message.text === "hi bot");
  assert.deepEqual(s.history(s.mallory).entries().map((e) => e.text), ["hi bot"]);
});

Deno.test("Inbox: a receipt marks only my messages to its sender as delivered", async () => {
  await using s = await setup();
  const at = now.toISOString();
  const id = "0123456789abcdef0123456789abcdef";
  s.history(s.bob).appendMessage({ id, dir: "out", text: "hey", sent_at: at, at });
  s.history(s.bob).appendState(id, "accepted", at);
  // Mallory claims to have received it: nothing in her conversation changes, bob's neither.
  const fake = await s.mallory.receipt(s.myKey, [id], "request");
  const o1 = await s.handle(fake.envelope);
  assert.ok(o1.kind === "receipt" && o1.delivered.length === 0);
  assert.equal(s.history(s.bob).get(id)?.state, "accepted");

  const real = await s.bob.receipt(s.myKey, [id, "ffffffffffffffffffffffffffffffff"]);
  const o2 = await s.handle(real.envelope);
  assert.ok(o2.kind === "receipt");
  assert.deepEqual(o2.delivered, [{ id, text: "hey" }]);
  assert.equal(s.history(s.bob).get(id)?.state, "delivered");
  // Receipts piggybacked on a message work the same way.
  const id2 = "1123456789abcdef0123456789abcdef";
  s.history(s.bob).appendMessage({ id: id2, dir: "out", text: "ho", sent_at: at, at });
  const m = await s.bob.message(s.myKey, "got them", { receipts: [id2] });
  const o3 = await s.handle(m.envelope);
  assert.ok(o3.kind === "message" && o3.delivered.length === 1 && o3.delivered[0].id === id2);
});

Deno.test("Inbox: a batch is stored with one append per conversation, in order, out-of-order keys too", async () => {
  await using s = await setup();
  const fromBob = [];
  for (let i = 0; i < 50; i++) fromBob.push(await s.bob.message(s.myKey, `b${i}`));
  const fromMallory = await s.mallory.message(s.myKey, "m", { via: "request" });
  const sizes: number[] = [];
  const log = s.history(s.bob);
  const appendBatch = log.appendBatch.bind(log);
  log.appendBatch = (records) => {
    sizes.push(records.length);
    return appendBatch(records);
  };
  // Delivered out of order, with one duplicate (the same envelope twice).
  const envs = fromBob.map((m) => m.envelope);
  const all = [...envs.slice(25), fromMallory.envelope, envs[30], ...envs.slice(0, 25)];
  const outcomes = await Promise.all(all.map((e) => s.inbox.receive(e)));
  assert.deepEqual(outcomes.map(text), [
    ...envs.slice(25).map((_, i) => `b${25 + i}`),
    "request",
    "b30!",
    ...envs.slice(0, 25).map((_, i) => `b${i}`),
  ]);
  assert.deepEqual(sizes, [50], "one append for bob's 50 messages");
  const lines = Deno.readTextFileSync(s.store.historyPath(s.bob.key)).trimEnd().split("\n");
  assert.equal(lines.length, 50);
});

Deno.test("Inbox: when history cannot be written nothing is acked and the sessions stay as they were", async () => {
  await using s = await setup();
  s.history(s.bob); // opened (and cached) while the file could still be made
  Deno.mkdirSync(s.store.historyPath(s.bob.key)); // a directory where the file goes
  const m = await s.bob.message(s.myKey, "hi");
  await assert.rejects(() => s.inbox.receive(m.envelope), /cannot write/);
  Deno.removeSync(s.store.historyPath(s.bob.key));
  // The relay delivers it again: the sessions on disk still open it, and it is stored now.
  const again = await s.inbox.receive(m.envelope);
  assert.ok(again.kind === "message" && !again.duplicate, JSON.stringify(again));
});

Deno.test("ReceiptQueue: ids once per peer, oldest first, put back ahead, kept across runs", async () => {
  await using s = await setup();
  const q = new ReceiptQueue(s.store);
  q.add("p", ["a", "b", "a"]);
  q.add("r", ["c"]);
  assert.deepEqual(q.take("p"), ["a", "b"]);
  q.untake("p", ["a"]);
  q.add("p", ["d"]);
  assert.deepEqual(q.take("p"), ["a", "d"]);
  assert.deepEqual(q.take("p"), []);
  q.add("p", Array.from({ length: 1001 }, (_, i) => `x${i}`));
  assert.equal(q.take("p").length, 1000, "at most 1000 ids a receipt");
  q.save();
  const next = new ReceiptQueue(s.store);
  assert.deepEqual(next.peers().sort(), ["p", "r"]);
  assert.deepEqual(next.take("p"), ["x1000"]);
  assert.deepEqual(next.take("r"), ["c"]);
  next.save();
  assert.equal(new ReceiptQueue(s.store).isEmpty, true);
});
