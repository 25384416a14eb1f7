import assert from "node:assert/strict";
import { inboxId, toBase64 } from "@chat-p2p/protocol";
import { deadline, delay } from "@chat-p2p/protocol/async";
import { closedPort, startFakeRelay } from "../tests/fake_relay.ts";
import { contactProfiles, type TestProfile } from "../tests/v2_peer.ts";
import { ChatClient, type ChatClientOptions, type ChatEvent } from "./client.ts";
import { ClientError, RelayError } from "./errors.ts";

const FAST = { minTimeout: 10, maxTimeout: 50, jitter: 0.5 };
/** Receipts after 10-20 ms, not the 2-20 s of a long-running client. */
const QUICK_RECEIPTS = [10, 20] as const;

/** Two profiles that know each other, under one temporary HOME. */
async function people() {
  const home = await Deno.makeTempDir({ prefix: "chat-p2p-client-" });
  const { alice, bob } = contactProfiles(home);
  const clients: ChatClient[] = [];
  const client = (who: TestProfile, opts: ChatClientOptions = {}) => {
    const c = new ChatClient(who.store, who.kp, {
      backoff: FAST,
      timeoutMs: 5000,
      receiptDelayMs: QUICK_RECEIPTS,
      ...opts,
    });
    clients.push(c);
    return c;
  };
  return {
    alice,
    bob,
    client,
    async [Symbol.asyncDispose]() {
      for (const c of clients) await c.close({ timeoutMs: 1000 });
      await Deno.remove(home, { recursive: true });
    },
  };
}

/** Records events; `next(type)` waits for the next one of that type not yet taken. */
function recorder(c: ChatClient) {
  const events: ChatEvent[] = [];
  let taken = 0;
  c.on("*", (e) => events.push(e));
  return {
    events,
    async next<T extends ChatEvent["type"]>(
      type: T,
      ms = 10_000,
    ): Promise<Extract<ChatEvent, { type: T }>> {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        const i = events.findIndex((e, k) => k >= taken && e.type === type);
        if (i >= 0) {
          taken = i + 1;
          return events[i] as Extract<ChatEvent, { type: T }>;
        }
        await delay(5);
      }
      throw new Error(`no ${type} event: ${events.map((e) => e.type).join(" ")}`);
    },
  };
}

Deno.test("ChatClient: send offline, receive, auto-ack, receipt back: the whole round", async () => {
  await using relay = startFakeRelay();
  await using p = await people();
  const alice = p.client(p.alice);
  const a = recorder(alice);

  // Not connected yet: the message is in history at once, as "sending".
  const id = alice.send("bob", "hello bob");
  assert.equal(p.alice.store.history(p.bob.key).get(id)?.state, "sending");
  assert.deepEqual(alice.queued("bob").map((m) => m.id), [id]);
  await alice.connect(relay.url);
  assert.deepEqual(await deadline(alice.outcome(id), 5000), { state: "accepted" });
  assert.equal((await a.next("accepted")).message.id, id);
  assert.equal(p.alice.store.history(p.bob.key).get(id)?.state, "accepted");
  // Bob never read from this relay: his pair mailbox is unknown there, so the same ratchet
  // message went to his request inbox instead, under another envelope id.
  assert.deepEqual(relay.keys, [undefined, p.bob.key]);
  assert.notEqual(relay.sends[0].id, relay.sends[1].id);

  const bob = p.client(p.bob);
  const b = recorder(bob);
  await bob.connect(relay.url);
  const m = await b.next("message");
  assert.deepEqual(
    [m.message.id, m.message.text, m.message.contact, m.duplicate],
    [id, "hello bob", "alice", false],
  );
  assert.equal((await b.next("synced")).count, 1);
  assert.equal(p.bob.store.history(p.alice.key).get(id)?.text, "hello bob", "stored before");

  const d = await a.next("delivered");
  assert.deepEqual([d.from, d.contact, d.messages], [p.bob.key, "bob", [{
    id,
    text: "hello bob",
  }]]);
  assert.equal(p.alice.store.history(p.bob.key).get(id)?.state, "delivered");

  // Acked: a new connection of bob's finds nothing waiting.
  await bob.close();
  const bob2 = p.client(p.bob);
  const b2 = recorder(bob2);
  await bob2.connect(relay.url);
  assert.equal((await b2.next("synced")).count, 0);
  assert.equal(b2.events.filter((e) => e.type === "message").length, 0);
});

Deno.test("ChatClient manual acks: an unacked message comes again as a duplicate; an acked one never", async () => {
  await using relay = startFakeRelay();
  await using p = await people();
  const alice = p.client(p.alice);
  await alice.connect(relay.url);
  const first = alice.send("bob", "one");
  const second = alice.send("bob", "two");
  await deadline(Promise.all([alice.outcome(first), alice.outcome(second)]), 5000);

  const bob = p.client(p.bob, { ackMode: "manual" });
  const b = recorder(bob);
  await bob.connect(relay.url);
  const m1 = await b.next("message");
  const m2 = await b.next("message");
  assert.deepEqual([m1.message.text, m2.message.text], ["one", "two"]);
  bob.ack(m1.message.id); // "two" is not handled: no ack
  await bob.close();

  const again = p.client(p.bob, { ackMode: "manual" });
  const g = recorder(again);
  await again.connect(relay.url);
  const m = await g.next("message");
  assert.deepEqual([m.message.id, m.duplicate], [second, true]);
  assert.equal((await g.next("synced")).count, 1);
  again.ack(second);
  assert.equal(p.bob.store.history(p.alice.key).entries().length, 2, "stored once each");

  // Receipts go out as messages are acked: alice sees both delivered.
  const a = recorder(alice);
  await a.next("delivered");
  await deadline(
    (async () => {
      while (p.alice.store.history(p.bob.key).get(second)?.state !== "delivered") {
        await delay(10);
      }
    })(),
    5000,
  );
  assert.equal(p.alice.store.history(p.bob.key).get(first)?.state, "delivered");
});

Deno.test("ChatClient: a message refused as unavailable stays queued and is sent again with its id", async () => {
  await using p = await people();
  // The backend is down for the first two attempts.
  await using fake = startFakeRelay((_, n) => n < 2 ? { code: "unavailable" } : "accepted");
  const alice = p.client(p.alice);
  const a = recorder(alice);
  await alice.connect(fake.url);
  const id = alice.send("bob", "are you there?");
  const retry = await a.next("retry");
  assert.equal(retry.error.code, "unavailable");
  assert.equal(p.alice.store.history(p.bob.key).get(id)?.state, "sending", "never failed");
  assert.deepEqual(await deadline(alice.outcome(id), 5000), { state: "accepted" });
  // Three attempts under one envelope id (the last one, with bob unknown there, to his inbox).
  const env = p.alice.store.history(p.bob.key).get(id)?.env;
  assert.deepEqual(fake.sends.slice(0, 3).map((e) => e.id), [env, env, env]);
  assert.equal(a.events.filter((e) => e.type === "failed").length, 0);
});

Deno.test("ChatClient: bad_frame is final: failed in history, and resend queues it again", async () => {
  await using p = await people();
  let refuse = true;
  await using fake = startFakeRelay(() => refuse ? { code: "bad_frame" } : "accepted");
  const alice = p.client(p.alice);
  const a = recorder(alice);
  await alice.connect(fake.url);
  const id = alice.send("bob", "x");
  const failed = await a.next("failed");
  assert.deepEqual([failed.message.id, failed.error.code], [id, "bad_frame"]);
  assert.equal(p.alice.store.history(p.bob.key).get(id)?.state, "failed");
  refuse = false;
  assert.deepEqual(alice.resend("bob").map((m) => m.id), [id]);
  assert.deepEqual(await deadline(alice.outcome(id), 5000), { state: "accepted" });
  assert.equal(p.alice.store.history(p.bob.key).get(id)?.state, "accepted");
});

Deno.test("ChatClient: what a closed client left queued is sent by the next one, first", async () => {
  await using relay = startFakeRelay();
  await using p = await people();
  const first = p.client(p.alice);
  const left = first.send("bob", "left behind"); // never connected
  await first.close();
  assert.equal(p.alice.store.history(p.bob.key).get(left)?.state, "sending");

  const next = p.client(p.alice);
  await next.connect(relay.url);
  const id = next.send("bob", "new");
  assert.deepEqual(next.queued().map((m) => m.text), ["left behind", "new"]);
  await deadline(Promise.all([next.outcome(left), next.outcome(id)]), 5000);
  assert.deepEqual(
    p.alice.store.history(p.bob.key).entries().map((e) => [e.text, e.state]),
    [["left behind", "accepted"], ["new", "accepted"]],
  );
});

Deno.test("ChatClient: errors are ClientErrors with codes from one union", async () => {
  await using p = await people();
  const alice = p.client(p.alice, { giveUpAfterMs: 0 });
  assert.throws(
    () => alice.send("nobody", "x"),
    (e: unknown) => e instanceof ClientError && e.code === "unknown_contact",
  );
  assert.throws(
    () => alice.send("bob", "x".repeat(20_000)),
    (e: unknown) => e instanceof ClientError && e.code === "message_too_long",
  );
  assert.throws(
    () => alice.send("bob", "😀".repeat(16_384)),
    (e: unknown) => e instanceof ClientError && e.code === "message_too_large",
  );
  const small = p.client(p.alice, { maxFrameBytes: 16_384 });
  assert.throws(
    () => small.send("bob", "x".repeat(16_000)),
    (e: unknown) => e instanceof ClientError && e.code === "frame_too_large",
  );
  assert.deepEqual(p.alice.store.history(p.bob.key).entries(), [], "nothing written");
  const port = closedPort();
  await assert.rejects(() => alice.connect(`ws://127.0.0.1:${port}/ws`), (e: unknown) => {
    assert.ok(e instanceof RelayError);
    assert.equal(e.code, "unreachable");
    assert.equal(e.message, `cannot reach relay ws://127.0.0.1:${port}/ws: connection refused`);
    return true;
  });
  await alice.close();
  assert.throws(
    () => alice.send("bob", "x"),
    (e: unknown) => e instanceof ClientError && e.code === "closed",
  );
});

Deno.test("ChatClient.events(): every event in order, ending when the client closes", async () => {
  await using relay = startFakeRelay();
  await using p = await people();
  const alice = p.client(p.alice);
  const seen: string[] = [];
  const reading = (async () => {
    for await (const e of alice.events()) {
      seen.push(e.type === "connection" ? e.state : e.type);
    }
  })();
  await alice.connect(relay.url);
  await deadline(alice.outcome(alice.send("bob", "hi")), 5000);
  await alice.close();
  await deadline(reading, 5000);
  assert.deepEqual(seen.filter((s) => s !== "synced"), [
    "connecting",
    "connected",
    "accepted",
    "closed",
  ]);
});

Deno.test("ChatClient: the request inbox is opened on a socket of its own, never with a pair mailbox (PROTOCOL §15)", async () => {
  await using relay = startFakeRelay();
  await using p = await people();
  const bob = p.client(p.bob);
  const b = recorder(bob);
  await bob.connect(relay.url);
  await b.next("synced");
  const inbox = toBase64(inboxId(p.bob.kp.publicKey));
  const inboxSockets = new Set(relay.opens.filter((o) => o.mailbox === inbox).map((o) => o.socket));
  const pairOpens = relay.opens.filter((o) => o.mailbox !== inbox);
  assert.equal(inboxSockets.size, 1, "the request inbox is opened once");
  assert.equal(pairOpens.length, 1, "alice's pair mailbox is opened");
  assert.ok(
    pairOpens.every((o) => !inboxSockets.has(o.socket)),
    `no socket opens both the request inbox and a pair mailbox: ${JSON.stringify(relay.opens)}`,
  );

  // Both are still read and acked, each on the socket that opened it.
  const alice = p.client(p.alice);
  await alice.connect(relay.url);
  const id = alice.send("bob", "over the pair mailbox");
  assert.equal((await b.next("message")).message.id, id);
  await deadline(
    (async () => {
      while ([...relay.mailboxes.values()].some((box) => box.length > 0)) {
        await delay(10);
      }
    })(),
    5000,
  );
});

Deno.test("ChatClient: at a relay bob never read at, alice registers their pair mailbox herself; his request inbox is not used", async () => {
  await using first = startFakeRelay();
  await using p = await people();
  // alice and bob talked through another relay: alice has heard from bob.
  const alice = p.client(p.alice);
  const a = recorder(alice);
  const bob = p.client(p.bob);
  await Promise.all([alice.connect(first.url), bob.connect(first.url)]);
  bob.send("alice", "hi from bob");
  await a.next("message");
  await Promise.all([alice.close(), bob.close()]);

  // At this relay bob's request inbox is full (cap 0: as if strangers had filled it).
  await using relay = startFakeRelay(undefined, { inboxMaxCount: 0 });
  const alice2 = p.client(p.alice, { receive: false });
  await alice2.connect(relay.url);
  const id = alice2.send("bob", "new relay");
  assert.deepEqual(await deadline(alice2.outcome(id), 5000), { state: "accepted" });
  assert.ok(relay.keys.every((k) => k === undefined), "nothing sent to the request inbox");
  assert.equal(relay.opens.length, 1, "one registration");
  const mailbox = relay.opens[0].mailbox;
  assert.deepEqual(relay.mailboxes.get(mailbox)?.map((e) => e.id), [relay.sends.at(-1)!.id]);

  const bob2 = p.client(p.bob);
  const b2 = recorder(bob2);
  await bob2.connect(relay.url);
  const m = await b2.next("message");
  assert.deepEqual([m.message.id, m.message.text], [id, "new relay"]);
  assert.equal(b2.events.filter((e) => e.type === "request").length, 0);
});

Deno.test("ChatClient: a peer I wrote to by key, not a contact, answers through our pair mailbox, and I read it", async () => {
  await using relay = startFakeRelay();
  await using p = await people();
  p.alice.store.saveContacts([]); // alice writes to bob's bare key; bob has her as a contact
  const alice = p.client(p.alice, { receive: false });
  await alice.connect(relay.url);
  const id = alice.send(p.bob.key, "hi, by key");
  assert.deepEqual(await deadline(alice.outcome(id), 5000), { state: "accepted" });
  await alice.close();

  const bob = p.client(p.bob);
  const b = recorder(bob);
  await bob.connect(relay.url);
  assert.equal((await b.next("message")).message.id, id);
  // bob has heard from alice: his answer goes to their pair mailbox (he registers it if need be).
  const answer = bob.send("alice", "answer");
  assert.deepEqual(await deadline(bob.outcome(answer), 5000), { state: "accepted" });
  assert.equal(relay.keys.at(-1), undefined, "not to alice's request inbox");

  const alice2 = p.client(p.alice);
  const a = recorder(alice2);
  await alice2.connect(relay.url);
  const m = await a.next("message");
  assert.deepEqual([m.message.id, m.message.contact], [answer, null]);
});
