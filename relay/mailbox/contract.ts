/**
 * The contract every `Mailbox` adapter passes. Each adapter's test file calls
 * {@linkcode mailboxContract} with a factory; the same cases then run against memory, SQLite and
 * Redis.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DAY_MS, HOUR_MS, type Mailbox, type MailboxLimits, roundDown } from "../ports/mailbox.ts";
import { MailboxFullError, UnknownMailboxError } from "../ports/errors.ts";
import { delay } from "@chat-p2p/protocol/async";

/** Makes a fresh, empty mailbox store with these limits. */
export type MailboxFactory = (limits: MailboxLimits) => Promise<Mailbox>;

const LIMITS: MailboxLimits = {
  maxCount: 5,
  maxBytes: 1000,
  maxAgeMs: 60_000,
  inbox: { maxCount: 3, maxBytes: 500 },
};

function env(n: number, size = 10): { id: string; raw: string } {
  const id = `id-${String(n).padStart(6, "0")}`;
  return { id, raw: JSON.stringify({ v: 2, id, to: "m", body: "x".repeat(size) }) };
}

/** Options for a contract run. */
export interface ContractOptions {
  /** Passed to every Deno.test (e.g. `ignore` when a service is missing). */
  testOptions?: Partial<Deno.TestDefinition>;
}

/** Registers the mailbox contract tests for one adapter. */
export function mailboxContract(
  name: string,
  make: MailboxFactory,
  options: ContractOptions = {},
): void {
  // Every case starts with "alice" and "bob" registered as pair mailboxes.
  const t = (title: string, fn: (m: Mailbox) => Promise<void>, limits = LIMITS) =>
    Deno.test({
      name: `${name} mailbox contract: ${title}`,
      ...options.testOptions,
      fn: async () => {
        const m = await make(limits);
        try {
          await m.register("alice", "pair");
          await m.register("bob", "pair");
          await fn(m);
        } finally {
          await m.close();
        }
      },
    });

  t("put then pending returns envelopes oldest first with increasing seq", async (m) => {
    for (let i = 1; i <= 3; i++) assert.equal(await m.put("alice", env(i)), "stored");
    const got = await m.pending("alice");
    assert.deepEqual(got.map((e) => e.id), ["id-000001", "id-000002", "id-000003"]);
    assert.equal(got[0].raw, env(1).raw);
    assert.ok(got[0].seq < got[1].seq && got[1].seq < got[2].seq);
    assert.ok(got[0].receivedAt > 0);
  });

  t("mailboxes are separate", async (m) => {
    await m.put("alice", env(1));
    await m.put("bob", env(2));
    assert.deepEqual((await m.pending("alice")).map((e) => e.id), ["id-000001"]);
    assert.deepEqual((await m.pending("bob")).map((e) => e.id), ["id-000002"]);
    assert.deepEqual(await m.pending("carol"), []);
  });

  t("seq counts within one mailbox only: no counter is shared across mailboxes", async (m) => {
    for (let i = 1; i <= 3; i++) {
      await m.put("alice", env(i));
      await m.put("bob", env(10 + i));
    }
    assert.deepEqual((await m.pending("alice")).map((e) => e.seq), [1, 2, 3]);
    assert.deepEqual((await m.pending("bob")).map((e) => e.seq), [1, 2, 3]);
  });

  t("the time stored is the hour, not the moment", async (m) => {
    const now = Date.UTC(2026, 11, 1, 9, 41, 27, 123);
    await m.put("alice", env(1), { now });
    const [e] = await m.pending("alice", { now });
    assert.equal(e.receivedAt, Date.UTC(2026, 11, 1, 9));
  });

  t("a put to a mailbox nobody registered is unknown_mailbox and stores nothing", async (m) => {
    await assert.rejects(m.put("carol", env(1)), UnknownMailboxError);
    assert.deepEqual(await m.depth("carol"), { count: 0, bytes: 0 });
    await m.register("carol", "pair");
    assert.equal(await m.put("carol", env(1)), "stored", "registered by an open");
    await m.register("carol", "pair");
    assert.equal(await m.put("carol", env(2)), "stored", "registering again changes nothing");
    assert.equal((await m.depth("carol")).count, 2);
  });

  t("a request-inbox send needs no registration and has the inbox caps", async (m) => {
    for (let i = 1; i <= 3; i++) {
      assert.equal(await m.put("inbox-dave", env(i), { inbox: true }), "stored");
    }
    await assert.rejects(m.put("inbox-dave", env(4), { inbox: true }), MailboxFullError);
    assert.equal(await m.put("inbox-dave", env(1), { inbox: true }), "duplicate");
    await assert.rejects(
      m.put("inbox-dave", env(5)),
      UnknownMailboxError,
      "without the inbox flag it must be registered",
    );
    await m.register("inbox-dave", "inbox");
    await assert.rejects(
      m.put("inbox-dave", env(6)),
      MailboxFullError,
      "a registered inbox keeps the inbox caps",
    );
    assert.equal((await m.depth("inbox-dave")).count, 3);
  });

  t("a full request inbox never refuses a pair mailbox", async (m) => {
    await m.register("inbox-eve", "inbox");
    let stored = 0;
    for (let i = 1; i <= 10; i++) {
      await m.put("inbox-eve", env(i, 100), { inbox: true }).then(() => stored++, () => {});
    }
    assert.equal(stored, 3, "the inbox's own count cap");
    for (let i = 1; i <= 5; i++) assert.equal(await m.put("alice", env(i, 100)), "stored");
  });

  t("inbox byte cap is its own", async (m) => {
    assert.equal(await m.put("inbox-fay", env(1, 400), { inbox: true }), "stored");
    await assert.rejects(m.put("inbox-fay", env(2, 400), { inbox: true }), MailboxFullError);
    assert.equal(await m.put("alice", env(2, 400)), "stored", "a pair mailbox holds more bytes");
  });

  t("a second put of the same id is a duplicate and stores nothing", async (m) => {
    assert.equal(await m.put("alice", env(1)), "stored");
    assert.equal(await m.put("alice", env(1)), "duplicate");
    assert.equal((await m.pending("alice")).length, 1);
    assert.equal((await m.depth("alice")).count, 1);
    assert.equal(
      await m.put("bob", env(1)),
      "stored",
      "same id in another mailbox is not a duplicate",
    );
  });

  t("concurrent puts all land, in call order", async (m) => {
    const r = await Promise.all([1, 2, 3, 4].map((i) => m.put("alice", env(i))));
    assert.deepEqual(r, ["stored", "stored", "stored", "stored"]);
    assert.deepEqual((await m.pending("alice")).map((e) => e.id), [
      "id-000001",
      "id-000002",
      "id-000003",
      "id-000004",
    ]);
  });

  t("a register and a put started together: the put sees the registration", async (m) => {
    const reg = m.register("gus", "pair");
    const put = m.put("gus", env(1));
    await reg;
    assert.equal(await put, "stored");
  });

  t("pending pages with afterSeq and limit", async (m) => {
    for (let i = 1; i <= 5; i++) await m.put("alice", env(i));
    const first = await m.pending("alice", { limit: 2 });
    assert.deepEqual(first.map((e) => e.id), ["id-000001", "id-000002"]);
    const next = await m.pending("alice", { afterSeq: first[1].seq, limit: 2 });
    assert.deepEqual(next.map((e) => e.id), ["id-000003", "id-000004"]);
    const last = await m.pending("alice", { afterSeq: next[1].seq, limit: 2 });
    assert.deepEqual(last.map((e) => e.id), ["id-000005"]);
  });

  t("ack forgets exactly the named envelopes", async (m) => {
    for (let i = 1; i <= 3; i++) await m.put("alice", env(i));
    assert.equal(await m.ack("alice", ["id-000002", "id-999999"]), 1);
    assert.deepEqual((await m.pending("alice")).map((e) => e.id), ["id-000001", "id-000003"]);
    assert.equal(await m.ack("alice", ["id-000002"]), 0, "acking twice removes nothing");
    assert.equal(await m.ack("bob", ["id-000001"]), 0, "ack only touches its own mailbox");
    assert.equal((await m.pending("alice")).length, 2);
  });

  t("a read started after a put or an ack sees it, even before that call resolved", async (m) => {
    await m.put("alice", env(1));
    const put = m.put("alice", env(2));
    const ack = m.ack("alice", ["id-000001"]);
    const [got, depth] = await Promise.all([m.pending("alice"), m.depth("alice")]);
    assert.deepEqual(got.map((e) => e.id), ["id-000002"]);
    assert.equal(depth.count, 1);
    assert.equal(await put, "stored");
    assert.equal(await ack, 1);
  });

  t(
    "a live put acked before it was answered is stored for nobody: answered stored, acked once",
    async (m) => {
      const put = m.put("alice", env(1), { live: true });
      const acked = m.ack("alice", [env(1).id]);
      assert.equal(await put, "stored");
      assert.equal(await acked, 1);
      assert.deepEqual(await m.pending("alice"), []);
      assert.equal((await m.depth("alice")).count, 0);
    },
  );

  t("an ack that names an id twice removes it once, stored or still on its way", async (m) => {
    await m.put("alice", env(1));
    assert.equal(await m.ack("alice", [env(1).id, env(1).id]), 1);
    // Not awaited: in a store that groups or holds writes, still on its way when acked.
    const put = m.put("alice", env(2));
    const live = m.put("alice", env(3), { live: true });
    const acked = m.ack("alice", [env(2).id, env(3).id, env(2).id, env(3).id]);
    assert.deepEqual(await Promise.all([put, live]), ["stored", "stored"]);
    assert.equal(await acked, 2);
    assert.deepEqual(await m.pending("alice"), []);
    assert.deepEqual(await m.depth("alice"), { count: 0, bytes: 0 });
  });

  t("live puts nobody acks are stored, in the order they came, around other puts", async (m) => {
    const puts = [
      m.put("alice", env(1), { live: true }),
      m.put("alice", env(2), { live: true }),
      m.put("bob", env(3), { live: true }),
    ];
    // A put that is not live, and a read, each see the live puts made before them.
    assert.equal(await m.put("alice", env(4)), "stored");
    assert.deepEqual((await m.pending("bob")).map((e) => e.id), ["id-000003"]);
    assert.deepEqual(await Promise.all(puts), ["stored", "stored", "stored"]);
    const got = await m.pending("alice");
    assert.deepEqual(got.map((e) => e.id), ["id-000001", "id-000002", "id-000004"]);
    assert.ok(got[0].seq < got[1].seq && got[1].seq < got[2].seq);
    assert.equal(await m.put("alice", env(1), { live: true }), "duplicate");
  });

  t("depth counts envelopes and bytes and follows acks", async (m) => {
    await m.put("alice", env(1, 10));
    await m.put("alice", env(2, 20));
    const d = await m.depth("alice");
    assert.equal(d.count, 2);
    assert.equal(d.bytes, env(1, 10).raw.length + env(2, 20).raw.length);
    await m.ack("alice", ["id-000001", "id-000002"]);
    assert.deepEqual(await m.depth("alice"), { count: 0, bytes: 0 });
  });

  t("count limit: the put over it fails with MailboxFullError and stores nothing", async (m) => {
    for (let i = 1; i <= 5; i++) await m.put("alice", env(i));
    await assert.rejects(m.put("alice", env(6)), MailboxFullError);
    assert.equal((await m.depth("alice")).count, 5);
    assert.equal(await m.put("alice", env(1)), "duplicate", "a duplicate is not refused as full");
    await m.ack("alice", ["id-000001"]);
    assert.equal(await m.put("alice", env(6)), "stored", "room again after an ack");
    assert.equal(await m.put("bob", env(7)), "stored", "other mailboxes unaffected");
  });

  t("byte limit: a put that would pass it fails and stores nothing", async (m) => {
    await m.put("alice", env(1, 600));
    await assert.rejects(m.put("alice", env(2, 600)), MailboxFullError);
    assert.equal((await m.depth("alice")).count, 1);
    assert.equal(await m.put("alice", env(3, 100)), "stored");
  });

  t("age limit: expired envelopes are never pending and sweep removes them", async (m) => {
    // Stored to the hour, an envelope is kept at least the maximum age and at most an hour more.
    const t0 = roundDown(Date.now(), HOUR_MS) + 30 * 60_000;
    await m.put("alice", env(1), { now: t0 - 3 * HOUR_MS });
    await m.put("alice", env(2), { now: t0 - 20 * 60_000 });
    await m.put("alice", env(3), { now: t0 + 45 * 60_000 });
    assert.deepEqual((await m.pending("alice", { now: t0 })).map((e) => e.id), [
      "id-000002",
      "id-000003",
    ]);
    assert.deepEqual(await m.sweep(t0), { envelopes: 1, mailboxes: 0 });
    assert.equal((await m.depth("alice")).count, 2);
    assert.deepEqual((await m.pending("alice", { now: t0 + HOUR_MS })).map((e) => e.id), [
      "id-000003",
    ]);
  });

  t("registrations not opened within the maximum age are forgotten by the sweep", async (m) => {
    const t0 = Date.now();
    await m.register("old", "pair", t0 - LIMITS.maxAgeMs - 2 * DAY_MS);
    await m.register("renewed", "pair", t0 - LIMITS.maxAgeMs - 2 * DAY_MS);
    await m.register("renewed", "pair", t0);
    await m.register("recent", "inbox", t0 - 1000);
    assert.equal(await m.put("old", env(1)), "stored", "registered until a sweep forgets it");
    const swept = await m.sweep(t0);
    assert.equal(swept.mailboxes, 1);
    await assert.rejects(m.put("old", env(2)), UnknownMailboxError);
    assert.equal(await m.put("renewed", env(3)), "stored", "an open renews the registration");
    assert.equal(await m.put("recent", env(4)), "stored");
    assert.deepEqual(
      (await m.pending("old")).map((e) => e.id),
      ["id-000001"],
      "what it holds waits for its own expiry or the next open",
    );
  });

  t("envelopes with large and unicode raw text round-trip exactly", async (m) => {
    const raw = JSON.stringify({ id: "id-unicode", body: "é✓😀".repeat(50) });
    await m.put("alice", { id: "id-unicode", raw });
    assert.equal((await m.pending("alice"))[0].raw, raw);
  });

  t("totals (when offered) sum every mailbox and follow acks", async (m) => {
    if (!m.totals) return;
    const before = await m.totals();
    await m.put("alice", env(1, 10));
    await m.put("bob", env(2, 20));
    const after = await m.totals();
    assert.equal(after.count - before.count, 2);
    assert.equal(after.bytes - before.bytes, env(1, 10).raw.length + env(2, 20).raw.length);
    await m.ack("alice", ["id-000001"]);
    assert.equal((await m.totals()).count - before.count, 1);
  });

  t(
    "relays sharing the store: a put counts the other leases running when it is applied",
    async (m) => {
      const counts: number[] = [];
      const as = (member: string) => ({ member, peers: (n: number) => counts.push(n) });
      if (!m.join) {
        // A store one relay owns never counts: every announcement is published.
        assert.equal(await m.put("alice", env(1), as("a")), "stored");
        assert.deepEqual(counts, []);
        return;
      }
      assert.equal(await m.join("a", 60_000), false, "a first join");
      await m.put("alice", env(1), as("a"));
      assert.equal(await m.join("b", 60_000), false);
      await m.put("alice", env(2), as("a"));
      assert.equal(await m.put("alice", env(2), as("a")), "duplicate", "a duplicate counts too");
      await m.put("bob", env(3), as("b"));
      await m.put("bob", env(4), as("c")); // a member that never joined sees both
      assert.equal(await m.join("a", 60_000), true, "a renewal while the lease runs");
      await m.leave!("b");
      await m.put("alice", env(5), as("a"));
      await m.put("alice", env(6)); // no member: nothing counted
      await assert.rejects(m.put("nobody", env(7), as("a")), UnknownMailboxError);
      assert.deepEqual(counts, [0, 1, 1, 1, 2, 0]);
    },
  );

  t("a lapsed lease is not counted, and the next join says it had lapsed", async (m) => {
    if (!m.join) return assert.equal(m.leave, undefined, "join and leave come together");
    const counts: number[] = [];
    const put = (n: number) =>
      m.put("alice", env(n), { member: "a", peers: (c) => counts.push(c) });
    await m.join("a", 60_000);
    await m.join("b", 1000);
    await put(1);
    await delay(1500);
    await put(2);
    assert.equal(await m.join("b", 60_000), false, "lapsed");
    await put(3);
    assert.deepEqual(counts, [1, 0, 1]);
  });

  t("check reports ok", async (m) => {
    const s = await m.check();
    assert.equal(s.ok, true, s.detail);
  });
}
