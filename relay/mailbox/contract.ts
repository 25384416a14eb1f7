/**
 * The contract every `Mailbox` adapter passes. Each adapter's test file calls
 * {@linkcode mailboxContract} with a factory; the same cases then run against memory, SQLite and
 * Redis.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Mailbox, MailboxLimits } from "../ports/mailbox.ts";
import { MailboxFullError } from "../ports/errors.ts";

/** Makes a fresh, empty mailbox store with these limits. */
export type MailboxFactory = (limits: MailboxLimits) => Promise<Mailbox>;

const LIMITS: MailboxLimits = { maxCount: 5, maxBytes: 1000, maxAgeMs: 60_000 };

function env(n: number, size = 10): { id: string; raw: string } {
  const id = `id-${String(n).padStart(6, "0")}`;
  return { id, raw: JSON.stringify({ id, ciphertext: "x".repeat(size) }) };
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
  const t = (title: string, fn: (m: Mailbox) => Promise<void>, limits = LIMITS) =>
    Deno.test({
      name: `${name} mailbox contract: ${title}`,
      ...options.testOptions,
      fn: async () => {
        const m = await make(limits);
        try {
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
    const t0 = Date.now();
    await m.put("alice", env(1), t0 - 120_000);
    await m.put("alice", env(2), t0 - 1_000);
    assert.deepEqual((await m.pending("alice", { now: t0 })).map((e) => e.id), ["id-000002"]);
    assert.equal(await m.sweep(t0), 1);
    assert.equal((await m.depth("alice")).count, 1);
    assert.deepEqual((await m.pending("alice", { now: t0 })).map((e) => e.id), ["id-000002"]);
  });

  t("envelopes with large and unicode raw text round-trip exactly", async (m) => {
    const raw = JSON.stringify({ id: "id-unicode", ciphertext: "é✓😀".repeat(50) });
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

  t("check reports ok", async (m) => {
    const s = await m.check();
    assert.equal(s.ok, true, s.detail);
  });
}
