/** The router without sockets: store and announce, refusals, and who gets each announcement. */
import assert from "node:assert/strict";
import { serializeEnvelopeV2 } from "@chat-p2p/protocol";
import { MemoryBus, MemoryBusHub } from "../bus/memory.ts";
import { waitFor } from "../bus/contract.ts";
import { createLogger } from "../infra/log.ts";
import { MemoryMailbox } from "../mailbox/memory.ts";
import { DEFAULT_MAILBOX_LIMITS } from "../ports/mailbox.ts";
import { BackendUnavailableError, MailboxFullError, UnknownMailboxError } from "../ports/errors.ts";
import { idOfRaw, LEASE, type Recipient, Router } from "./router.ts";
import { envelope as envelopeTo, pairBox } from "../../tests/raw_client.ts";

const BOB = pairBox().id, ALICE = pairBox().id;

const envelope = () => envelopeTo(BOB);

/** A recipient that records every push. */
class Inbox implements Recipient {
  got: Array<[string, string]> = [];
  push(_mailbox: string, id: string, raw: string) {
    this.got.push([id, raw]);
  }
}

/** A router, and the bus of another relay on the same medium (`elsewhere`). */
async function router(mailbox = new MemoryMailbox()) {
  const logs: string[] = [];
  const hub = new MemoryBusHub();
  const r = new Router(mailbox, new MemoryBus(hub), createLogger("debug", (l) => logs.push(l)));
  await r.start();
  await r.open(BOB, "pair");
  return { r, mailbox, logs, elsewhere: new MemoryBus(hub) };
}

const announced = () => new Promise((res) => setTimeout(res, 0));

Deno.test("router: accept stores the canonical envelope and announces it to live recipients", async () => {
  const { r, mailbox } = await router();
  const inbox = new Inbox(), other = new Inbox();
  r.listen(BOB, inbox);
  r.listen(ALICE, other);
  const e = envelope();
  assert.equal(await r.accept(e), "stored");
  await announced();
  assert.deepEqual(inbox.got, [[e.id, serializeEnvelopeV2(e)]]);
  assert.deepEqual(other.got, [], "only the envelope's mailbox is pushed to");
  const [held] = await mailbox.pending(BOB);
  assert.equal(held.raw, serializeEnvelopeV2(e));
});

Deno.test("router: a mailbox nobody opened refuses sends, except a request inbox's", async () => {
  const { r, mailbox } = await router();
  const e = envelopeTo(ALICE);
  await assert.rejects(r.accept(e), UnknownMailboxError);
  assert.equal(await r.accept(e, true), "stored", "a request-inbox send needs no registration");
  await r.open(ALICE, "pair");
  assert.equal(await r.accept(envelopeTo(ALICE)), "stored");
  assert.equal((await mailbox.depth(ALICE)).count, 2);
});

Deno.test("router: a duplicate counts as accepted and is announced again", async () => {
  const { r } = await router();
  const inbox = new Inbox();
  r.listen(BOB, inbox);
  const e = envelope();
  await r.accept(e);
  assert.equal(await r.accept(e), "duplicate");
  await announced();
  assert.deepEqual(inbox.got.map(([id]) => id), [e.id, e.id]);
});

Deno.test("router: a full request inbox refuses and announces nothing", async () => {
  const { r } = await router(
    new MemoryMailbox({
      ...DEFAULT_MAILBOX_LIMITS,
      inbox: { ...DEFAULT_MAILBOX_LIMITS.inbox, maxCount: 1 },
    }),
  );
  const inbox = new Inbox();
  r.listen(ALICE, inbox);
  await r.accept(envelopeTo(ALICE), true);
  await assert.rejects(r.accept(envelopeTo(ALICE), true), MailboxFullError);
  await announced();
  assert.equal(inbox.got.length, 1);
});

Deno.test("router: a full pair mailbox refuses; after one refusal its sends are stored first", async () => {
  const { r, mailbox } = await router(
    new MemoryMailbox({ ...DEFAULT_MAILBOX_LIMITS, maxCount: 1 }),
  );
  const inbox = new Inbox();
  r.listen(BOB, inbox);
  await r.accept(envelope());
  const refused = [envelope(), envelope()];
  for (const e of refused) await assert.rejects(r.accept(e), MailboxFullError);
  await announced();
  const pending = (await mailbox.pending(BOB)).map((x) => x.id);
  for (const e of refused) assert.equal(pending.includes(e.id), false);
  // The first refusal was announced while the store refused it; the second was not.
  assert.deepEqual(inbox.got.map(([id]) => id).slice(1), [refused[0].id]);
});

Deno.test("router: sends to a mailbox never seen registered are stored first and never announced when refused", async () => {
  const { r } = await router();
  const inbox = new Inbox();
  r.listen(ALICE, inbox);
  await assert.rejects(r.accept(envelopeTo(ALICE)), UnknownMailboxError);
  await announced();
  assert.deepEqual(inbox.got, []);
});

/** A memory mailbox whose puts wait until `release()`. */
function gatedMailbox(): { memory: MemoryMailbox; release: () => void } {
  const memory = new MemoryMailbox();
  const gate = Promise.withResolvers<void>();
  const put = memory.put.bind(memory);
  memory.put = async (...args) => {
    await gate.promise;
    return await put(...args);
  };
  return { memory, release: gate.resolve };
}

Deno.test("router: a registered pair mailbox's live reader gets the envelope while the store still writes it", async () => {
  const { memory, release } = gatedMailbox();
  const { r } = await router(memory); // opens BOB
  const inbox = new Inbox();
  r.listen(BOB, inbox);
  let settled = false;
  const e = envelope();
  const accepted = r.accept(e).finally(() => settled = true);
  await announced();
  assert.deepEqual(inbox.got.map(([id]) => id), [e.id], "pushed before the store finished");
  assert.equal(settled, false, "accepted waits for the store");
  release();
  assert.equal(await accepted, "stored");
});

Deno.test("router: its own sockets get an envelope at once and once; another relay's through the bus", async () => {
  const hub = new MemoryBusHub();
  const mailbox = new MemoryMailbox(); // one store, as relays share Redis
  const quiet = createLogger("error", () => {});
  const a = new Router(mailbox, new MemoryBus(hub), quiet);
  const b = new Router(mailbox, new MemoryBus(hub), quiet);
  await a.start();
  await b.start();
  await a.open(BOB, "pair");
  const here = new Inbox(), there = new Inbox();
  a.listen(BOB, here);
  b.listen(BOB, there);
  const e = envelope();
  const accepted = a.accept(e);
  assert.deepEqual(here.got.map(([id]) => id), [e.id], "pushed within accept, no bus round trip");
  assert.equal(await accepted, "stored");
  await announced();
  assert.deepEqual(here.got.map(([id]) => id), [e.id], "its own announcement is not pushed again");
  assert.deepEqual(there.got, [[e.id, serializeEnvelopeV2(e)]], "the other relay's via the bus");
});

Deno.test("router: a request inbox's envelope is announced only once it is stored", async () => {
  const { memory, release } = gatedMailbox();
  const { r } = await router(memory);
  const inbox = new Inbox();
  r.listen(ALICE, inbox);
  const accepted = r.accept(envelopeTo(ALICE), true);
  await announced();
  assert.deepEqual(inbox.got, [], "nothing pushed before the store");
  release();
  assert.equal(await accepted, "stored");
  await announced();
  assert.equal(inbox.got.length, 1);
});

Deno.test("router: a failed publish is unavailable, and the envelope stays stored for the next connect", async () => {
  const { r, mailbox } = await router();
  await mailbox.join("another-relay", 60_000); // else a relay alone publishes nothing
  r.bus.publish = () => Promise.reject(new Error("broker gone"));
  const e = envelope();
  await assert.rejects(r.accept(e), (err: unknown) => {
    assert.ok(err instanceof BackendUnavailableError);
    assert.match(err.message, /bus publish failed: broker gone/);
    return true;
  });
  assert.deepEqual((await mailbox.pending(BOB)).map((x) => x.id), [e.id]);
});

Deno.test("router: unlisten stops pushes; liveMailboxes counts mailboxes, not sockets", async () => {
  const { r } = await router();
  const a = new Inbox(), b = new Inbox();
  r.listen(BOB, a);
  r.listen(BOB, b);
  assert.equal(r.liveMailboxes, 1);
  r.unlisten(BOB, a);
  await r.accept(envelope());
  await announced();
  assert.deepEqual([a.got.length, b.got.length], [0, 1]);
  r.unlisten(BOB, b);
  r.unlisten(BOB, b); // twice is harmless
  assert.equal(r.liveMailboxes, 0);
});

Deno.test("router: one, two, three recipients of a mailbox, added and removed in any order", async () => {
  const { r } = await router();
  const [a, b, c] = [new Inbox(), new Inbox(), new Inbox()];
  const pushedTo = async (...who: Inbox[]) => {
    for (const x of [a, b, c]) x.got = [];
    await r.accept(envelope());
    assert.deepEqual(
      [a, b, c].map((x) => x.got.length),
      [a, b, c].map((x) => who.includes(x) ? 1 : 0),
    );
  };
  r.listen(BOB, a);
  r.listen(BOB, a); // twice: still pushed once
  await pushedTo(a);
  r.listen(BOB, b);
  r.listen(BOB, c);
  await pushedTo(a, b, c);
  r.unlisten(BOB, a);
  await pushedTo(b, c);
  r.unlisten(BOB, c);
  await pushedTo(b);
  r.unlisten(BOB, a); // not listening: harmless
  r.listen(BOB, a);
  await pushedTo(a, b);
  r.unlisten(BOB, b);
  r.unlisten(BOB, a);
  assert.equal(r.liveMailboxes, 0);
  await pushedTo();
});

Deno.test("router: an announcement without an id is dropped with a warning, not pushed", async () => {
  const { r, logs, elsewhere } = await router();
  const inbox = new Inbox();
  r.listen(BOB, inbox);
  await elsewhere.publish(BOB, '{"v":2,"body":"x"}');
  await announced();
  assert.deepEqual(inbox.got, []);
  assert.ok(logs.some((l) => l.includes("announcement without an id")));
});

Deno.test("idOfRaw reads the id of canonical envelope JSON", () => {
  const e = envelope();
  assert.equal(idOfRaw(serializeEnvelopeV2(e)), e.id);
  assert.equal(idOfRaw("{}"), undefined);
  assert.equal(idOfRaw('{"id":"unterminated'), undefined);
});

/** Counts the router's publishes. */
function countPublishes(r: Router): { n: number } {
  const count = { n: 0 };
  const publish = r.bus.publish.bind(r.bus);
  r.bus.publish = (mailbox, raw) => {
    count.n++;
    return publish(mailbox, raw);
  };
  return count;
}

Deno.test("router: a relay alone in a shared store publishes nothing; with another relay's lease it does", async () => {
  const { r, mailbox, elsewhere } = await router();
  const heard: string[] = [];
  await elsewhere.subscribe((_mailbox, raw) => heard.push(idOfRaw(raw)!));
  const published = countPublishes(r);
  const here = new Inbox();
  r.listen(BOB, here);
  const [e1, e2, e3, e4] = [envelope(), envelope(), envelope(), envelope()];
  // The memory store counts within the put call, so even the first put is counted before
  // `accept` decides (a store that answers later publishes its first; see the next test).
  assert.equal(await r.accept(e1), "stored");
  assert.equal(await r.accept(e2), "stored");
  assert.equal(published.n, 0, "nobody else shares the store");
  await mailbox.join("another-relay", 60_000);
  assert.equal(await r.accept(e3), "stored");
  await mailbox.leave("another-relay");
  assert.equal(await r.accept(e4), "stored");
  await announced();
  assert.equal(published.n, 1);
  assert.deepEqual(heard, [e3.id], "published while another relay held a lease");
  assert.deepEqual(here.got.map(([id]) => id), [e1.id, e2.id, e3.id, e4.id], "pushed here always");
  await r.stop();
});

Deno.test("router: alone, a known mailbox's envelope is published only after its put counted another relay", async () => {
  const memory = new MemoryMailbox();
  const held: { gate?: PromiseWithResolvers<void> } = {};
  const put = memory.put.bind(memory);
  memory.put = async (...args) => {
    await held.gate?.promise;
    return await put(...args);
  };
  const { r } = await router(memory); // opens BOB: known, so announced while it is written
  const published = countPublishes(r);
  const here = new Inbox();
  r.listen(BOB, here);
  await r.accept(envelope());
  assert.equal(published.n, 1, "before any put has counted, it publishes while writing");
  await r.accept(envelope()); // the last put counted no other relay: this one waits for its own
  assert.equal(published.n, 1);
  const gate = held.gate = Promise.withResolvers();
  const e = envelope();
  const accepted = r.accept(e);
  await announced();
  assert.equal(here.got.at(-1)?.[0], e.id, "pushed here while the store writes it");
  assert.equal(published.n, 1, "not published while its put is under way");
  await memory.join("another-relay", 60_000); // joins before the put is applied
  gate.resolve();
  assert.equal(await accepted, "stored");
  assert.equal(published.n, 2, "its put counted another relay: published after it");
  await r.stop();
});

Deno.test("router: alone, the put of an envelope pushed to a reader here is live; withdrawn by its ack, it is not published", async () => {
  const memory = new MemoryMailbox();
  const live: boolean[] = [];
  type Held = { withdraw: () => void; write: () => void };
  const held: Held[] = [];
  const put = memory.put.bind(memory);
  memory.put = (mailboxId, e, options = {}) => {
    live.push(options.live === true);
    if (!options.live) return put(mailboxId, e, options);
    // A store holding the put back: withdrawn by the reader's ack (answered stored, never
    // written, nothing counted), or written once the hold is over.
    return new Promise((resolve, reject) =>
      held.push({
        withdraw: () => resolve("stored"),
        write: () => put(mailboxId, e, options).then(resolve, reject),
      })
    );
  };
  const { r } = await router(memory);
  const published = countPublishes(r);
  const [e1, e2, e3, e4, e5] = [envelope(), envelope(), envelope(), envelope(), envelope()];
  // The memory store counts within the put call: alone from the first put on.
  await r.accept(e1);
  await r.accept(e2); // alone, but no reader here
  const here = new Inbox();
  r.listen(BOB, here);
  const accepted = r.accept(e3);
  await announced();
  assert.deepEqual(live, [false, false, true]);
  assert.deepEqual(here.got.map(([id]) => id), [e3.id], "pushed while the put is held");
  held.shift()!.withdraw();
  assert.equal(await accepted, "stored");
  assert.equal(published.n, 0, "withdrawn: published no more than the others");
  assert.deepEqual((await memory.pending(BOB)).map((x) => x.id), [e1.id, e2.id]);
  // Another relay joins: the next put is still live (the last count said alone), and, not
  // acked, it is written, counts that relay, and is published after it.
  await memory.join("another-relay", 60_000);
  const fourth = r.accept(e4);
  await announced();
  assert.equal(live.at(-1), true);
  held.shift()!.write();
  assert.equal(await fourth, "stored");
  assert.equal(published.n, 1);
  await r.accept(e5);
  assert.equal(live.at(-1), false, "no longer alone: written at once, published while written");
  assert.equal(published.n, 2);
  await r.stop();
});

/** A router on `mailbox` with its own lease timing, and the lines it logs. */
async function leased(mailbox: MemoryMailbox, lease: Partial<typeof LEASE>) {
  const logs: string[] = [];
  const r = new Router(
    mailbox,
    new MemoryBus(new MemoryBusHub()),
    createLogger("debug", (l) => logs.push(l)),
    undefined,
    { ...LEASE, ...lease },
  );
  await r.start();
  return { r, logs };
}

Deno.test("router: a lapsed lease closes the live recipients; stop ends the lease", async () => {
  const mailbox = new MemoryMailbox();
  const joins: boolean[] = [];
  const join = mailbox.join.bind(mailbox);
  mailbox.join = async (member, leaseMs) => {
    // The second renewal reports a lapse, as after Redis lost the lease or a long stall.
    const running = joins.length === 2 ? false : await join(member, leaseMs);
    joins.push(running);
    return running;
  };
  const { r, logs } = await leased(mailbox, { leaseMs: 1_000, renewMs: 10 });
  await r.open(BOB, "pair");
  const lost: string[] = [];
  const one = Object.assign(new Inbox(), { lost: () => lost.push("one") });
  const two = Object.assign(new Inbox(), { lost: () => lost.push("two") });
  r.listen(BOB, one);
  r.listen(ALICE, two);
  await waitFor(() => joins.length >= 4, 5_000, "four joins");
  await r.stop();
  assert.deepEqual(joins.slice(0, 4), [false, true, false, true], "first join, renewal, lapse");
  assert.deepEqual(lost.sort(), ["one", "two"], "every live recipient told once");
  assert.ok(logs.some((l) => l.includes("relay lease had lapsed")));
  assert.ok(!logs.some((l) => l.includes("not renewed in time")), "answered in time");
  const counted: number[] = [];
  await mailbox.register(ALICE, "pair");
  await mailbox.put(ALICE, { id: "x", raw: "{}" }, { member: "m", peers: (n) => counted.push(n) });
  assert.deepEqual(counted, [0], "stop ended the lease");
});

Deno.test("router: a renewal answered after the lease would have ended counts as a lapse, and so does none", async () => {
  const mailbox = new MemoryMailbox();
  const join = mailbox.join.bind(mailbox);
  let calls = 0;
  const stuck = Promise.withResolvers<void>();
  mailbox.join = async (member, leaseMs) => {
    // The first renewal is stuck (Redis stalled with it queued), then answers "still running".
    if (calls++ === 1) await stuck.promise;
    return await join(member, leaseMs);
  };
  const { r, logs } = await leased(mailbox, { leaseMs: 300, renewMs: 20 });
  const lost: string[] = [];
  r.listen(BOB, Object.assign(new Inbox(), { lost: () => lost.push("bob") }));
  await waitFor(() => logs.some((l) => l.includes("not renewed in time")), 5_000, "the cut-off");
  assert.deepEqual(lost, ["bob"], "closed while the renewal is stuck, once");
  stuck.resolve();
  await waitFor(() => calls >= 5, 5_000, "five joins");
  // The late answer counts as a lapse; until a renewal is answered in time the relay may close
  // once more (its lease's end is known only to the send time of a renewal), then never again.
  const settled = lost.length;
  await waitFor(() => calls >= 9, 5_000, "nine joins");
  await r.stop();
  assert.ok(logs.some((l) => l.includes("relay lease had lapsed")), "the late answer");
  assert.ok(settled >= 2, `closed ${settled} times`);
  assert.equal(lost.length, settled, "answered in time again: no more closing");
});

Deno.test("router: with skipAlone off (a rolling upgrade), a relay alone still publishes", async () => {
  const mailbox = new MemoryMailbox();
  const { r } = await leased(mailbox, { skipAlone: false });
  await r.open(BOB, "pair");
  const published = countPublishes(r);
  await r.accept(envelope());
  await r.accept(envelope());
  assert.equal(published.n, 2);
  assert.equal(r.alone, false);
  const counted: number[] = [];
  await mailbox.put(BOB, { id: "x", raw: "{}" }, {
    member: "other",
    peers: (n) => counted.push(n),
  });
  assert.deepEqual(counted, [1], "it still holds a lease, so upgraded relays count it");
  await r.stop();
});
