/**
 * The malicious-relay harness (issue 10): a relay (tests/fake_relay.ts with lying hooks) that
 * refuses sends it then drops, accepts one and throws it away, stores duplicates and replays
 * under fresh envelope ids, turns envelopes around into the other direction's mailbox, delivers
 * backlogs in reverse, every live envelope twice and late, and plants forged bodies. Through the
 * real CLI:
 *
 * - nothing forged, reflected or replayed is ever shown, and every genuine message is shown
 *   exactly once;
 * - "never loses" means: every message the sender's client reported queued is retried by its
 *   outbox, same envelope id and bytes, until the relay accepts it; once accepted, whatever the
 *   relay does (delay, reorder, duplicate, replay) it is stored once when it arrives; a message
 *   the relay accepted and then dropped for good is never shown, stays "accepted" (✓, never ✓✓)
 *   at the sender, and is offered to the relay again by the sender's outbox once no receipt came
 *   for `redeliverAfterMs` (24 h by default; the last test uses 0) — a relay that drops it every
 *   time keeps it from the recipient, visibly.
 */
import assert from "node:assert/strict";
import {
  type EnvelopeV2,
  fromBase64,
  inboxId,
  newId,
  randomBytes,
  toBase64,
} from "@chat-p2p/protocol";
import { deadline } from "@chat-p2p/protocol/async";
import { ChatClient } from "../client/client.ts";
import { Mailboxes } from "../client/mailboxes.ts";
import { ProfileStore } from "../client/store/profile_store.ts";
import { jsonLines, pairedProfiles, runCliOk } from "./cli_helpers.ts";
import { type FakeAnswer, startFakeRelay } from "./fake_relay.ts";
import { contactProfiles, type TestProfile } from "./v2_peer.ts";

/** A body of a valid size that opens for nobody. */
const junk = (to: string): EnvelopeV2 => ({
  v: 2,
  id: newId(),
  to,
  body: toBase64(randomBytes(609)),
});

Deno.test("malicious relay: drops, delays, duplicates, reorders, swaps, replays and forgeries; the CLI shows each genuine message once and nothing else", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-malice-" });
  /** Mailbox id → the other direction's (filled once the pair is known). */
  const swap = new Map<string, string>();
  const delivered: EnvelopeV2[] = [];
  const firstTry = new Set<string>();
  let dropForever: string | undefined;
  let sendsSeen = 0;
  const answer = (e: EnvelopeV2): FakeAnswer => {
    // Every third new envelope: no store, "unavailable" (a loss before accepting).
    if (!firstTry.has(e.id) && ++sendsSeen % 3 === 0) {
      firstTry.add(e.id);
      return { code: "unavailable" };
    }
    firstTry.add(e.id);
    return "accepted";
  };
  /** Ids stored into alice → bob, in order: the fifth is accepted, then thrown away. */
  const toBob: string[] = [];
  await using relay = startFakeRelay(answer, {
    store(e) {
      if (swap.size > 0 && e.to === [...swap.keys()][0] && !toBob.includes(e.id)) {
        toBob.push(e.id);
        if (toBob.length === 5) dropForever = e.id;
      }
      if (e.id === dropForever) return [];
      const copies = [e, { ...e, id: newId() }]; // a replay under a fresh id
      const other = swap.get(e.to);
      if (other) copies.push({ ...e, id: newId(), to: other }); // turned around
      return copies;
    },
    deliver(list, live) {
      const out = live ? [...list, ...list] : [...list].reverse();
      // Now and then an envelope delivered before, again, under a fresh id.
      if (delivered.length > 0 && live) {
        const old = delivered[delivered.length % Math.max(1, delivered.length - 1)];
        if (list.some((e) => e.to === old.to)) out.push({ ...old, id: newId() });
      }
      delivered.push(...list);
      return out;
    },
    delayMs: () => Math.floor(Math.random() * 150),
  });
  try {
    const { alice, bob, aKey, bKey } = await pairedProfiles(home);
    await runCliOk(["sync", relay.url], bob);
    await runCliOk(["sync", relay.url], alice);
    const aStore = new ProfileStore({ home, profile: "alice" });
    const mb = new Mailboxes(aStore, await aStore.loadIdentity());
    const ab = (await mb.sendMailbox(bKey)).idText;
    const ba = (await mb.readMailbox(bKey)).idText;
    swap.set(ab, ba).set(ba, ab); // alice → bob first: the mailbox whose 5th envelope is lost

    // Alice writes 8, one at a time (the relay drops the 5th for good after accepting it).
    const texts = Array.from({ length: 8 }, (_, i) => `from alice ${i}`);
    for (const t of texts) {
      const r = await runCliOk(["send", relay.url, "bob", t], alice);
      assert.doesNotMatch(r.stderr, /failed/);
    }

    // Forgeries in bob's mailboxes.
    relay.inject(junk(ab));
    relay.inject(junk(toBase64(inboxId(fromBase64(bKey)!))));

    // Bob reads until his mailboxes are empty: the relay says `synced` before its late
    // deliveries, so each run gets some, and the rest stays for the next.
    const pending = (...ids: string[]) => ids.flatMap((id) => relay.mailboxes.get(id) ?? []).length;
    const bobInbox = toBase64(inboxId(fromBase64(bKey)!));
    const shown: string[] = [];
    let rejected = 0;
    for (let i = 0; i < 20 && (i === 0 || pending(ab, bobInbox) > 0); i++) {
      const r = await runCliOk(["sync", relay.url, "--json"], bob);
      for (const m of jsonLines(r.stdout)) {
        assert.equal(m.from, aKey, "only alice's messages are shown as hers");
        shown.push(m.text);
      }
      rejected += (r.stderr.match(/rejected message/g) ?? []).length;
    }
    assert.equal(pending(ab, bobInbox), 0, "bob's mailboxes end up empty");
    const genuine = texts.filter((t) => t !== texts[4]);
    assert.deepEqual(
      [...shown].sort(),
      [...genuine].sort(),
      "each genuine message once, nothing else",
    );
    assert.ok(rejected >= 2, `forged and turned-around envelopes are reported (${rejected})`);

    // Bob answers; alice reads: her own words turned around are never shown as bob's.
    await runCliOk(["chat", relay.url, "alice"], { ...bob, stdin: "reply 1\nreply 2\n" });
    const aliceInbox = toBase64(inboxId(fromBase64(aKey)!));
    const aliceShown: string[] = [];
    for (let i = 0; i < 20 && (i === 0 || pending(ba, aliceInbox) > 0); i++) {
      const r = await runCliOk(["sync", relay.url, "--json"], alice);
      for (const m of jsonLines(r.stdout)) {
        assert.equal(m.from, bKey);
        aliceShown.push(m.text);
      }
    }
    assert.equal(pending(ba, aliceInbox), 0);
    assert.deepEqual(aliceShown.sort(), ["reply 1", "reply 2"]);
    assert.ok(!aliceShown.some((t) => t.startsWith("from alice")));

    // The lost one is visible at alice: accepted, never delivered; the others delivered.
    const states = jsonLines((await runCliOk(["history", "bob", "--json"], alice)).stdout)
      .filter((m) => m.dir === "out").map((m) => [m.text, m.state]);
    assert.deepEqual(
      states,
      texts.map((t) => [t, t === texts[4] ? "accepted" : "delivered"]),
    );
    assert.ok(dropForever !== undefined);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("malicious relay: a message the relay accepted and dropped is offered again by the outbox, and shown once", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-malice-" });
  let drop = true;
  await using relay = startFakeRelay(undefined, { store: (e) => drop ? (drop = false, []) : [e] });
  const { alice: a, bob: b } = contactProfiles(home);
  const opts = { timeoutMs: 5000, receiptDelayMs: [5, 10] as const, redeliverAfterMs: 0 };
  const clients: ChatClient[] = [];
  const client = (who: TestProfile) => {
    const c = new ChatClient(who.store, who.kp, opts);
    clients.push(c);
    return c;
  };
  try {
    const bob = client(b);
    const shown: string[] = [];
    bob.on("message", (e) => {
      if (!e.duplicate) shown.push(e.message.text);
    });
    await bob.connect(relay.url);
    const first = client(a);
    await first.connect(relay.url);
    const id = first.send("bob", "lost by the relay");
    assert.deepEqual(await deadline(first.outcome(id), 5000), { state: "accepted" });
    await first.close();
    assert.deepEqual(shown, [], "the relay dropped it");

    // The next run offers it again (no receipt came), same envelope id and bytes.
    const next = client(a);
    const delivered = Promise.withResolvers<void>();
    next.on("delivered", () => delivered.resolve());
    await next.connect(relay.url);
    assert.deepEqual(next.resume("bob").map((m) => m.id), [id]);
    await deadline(delivered.promise, 5000);
    assert.deepEqual(shown, ["lost by the relay"]);
    assert.equal(a.store.history(b.key).get(id)?.state, "delivered");
    const env = a.store.history(b.key).get(id)?.env;
    const offers = relay.sends.filter((e) => e.id === env);
    assert.equal(offers.length, 2, "both offers under one envelope id");
    assert.notEqual(offers[0].body, offers[1].body, "wrapped anew (a fresh outer nonce)");

    // Offered once more (a third run): bob has it already; he drops the copy and says so again.
    await next.close();
    const third = client(a);
    await third.connect(relay.url);
    assert.deepEqual(third.resume("bob"), [], "delivered now: nothing to offer");
    assert.deepEqual(shown, ["lost by the relay"]);
  } finally {
    for (const c of clients) await c.close({ timeoutMs: 1000 });
    await Deno.remove(home, { recursive: true });
  }
});
