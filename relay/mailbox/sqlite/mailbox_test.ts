import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SqliteMailbox, type SqliteMailboxOptions } from "./mailbox.ts";
import { mailboxContract } from "../contract.ts";
import { DEFAULT_MAILBOX_LIMITS } from "../../ports/mailbox.ts";
import { BackendUnavailableError } from "../../ports/errors.ts";
import { delay } from "@chat-p2p/protocol/async";

mailboxContract("sqlite", async (limits) => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  return new SqliteMailbox(join(dir, "mailbox.db"), limits);
});

/** A mailbox in a temporary directory, closed and removed at the end of the `await using` scope. */
async function tempMailbox(
  options: SqliteMailboxOptions,
): Promise<{ m: SqliteMailbox } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const m = new SqliteMailbox(join(dir, "mailbox.db"), DEFAULT_MAILBOX_LIMITS, options);
  return {
    m,
    async [Symbol.asyncDispose]() {
      await m.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("sqlite mailbox: envelopes survive close and reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const path = join(dir, "mailbox.db");
  const a = new SqliteMailbox(path, DEFAULT_MAILBOX_LIMITS);
  await a.register("alice", "pair");
  await a.put("alice", { id: "id-000001", raw: '{"id":"id-000001"}' });
  await a.put("alice", { id: "id-000002", raw: '{"id":"id-000002"}' });
  await a.ack("alice", ["id-000001"]);
  await a.close();
  const b = new SqliteMailbox(path, DEFAULT_MAILBOX_LIMITS);
  try {
    assert.deepEqual(await b.totals(), { count: 1, bytes: '{"id":"id-000002"}'.length });
    const got = await b.pending("alice");
    assert.deepEqual(got.map((e) => e.id), ["id-000002"]);
    assert.deepEqual(await b.depth("alice"), { count: 1, bytes: '{"id":"id-000002"}'.length });
  } finally {
    await b.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sqlite mailbox: a write after a quiet spell commits at once; writes within groupCommitMs of the last commit wait and share one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  for (const [wait, commits] of [[300, 2], [0, 3]]) {
    const m = new SqliteMailbox(join(dir, `mailbox-${wait}.db`), DEFAULT_MAILBOX_LIMITS, {
      groupCommitMs: wait,
    });
    try {
      await m.register("alice", "pair");
      await delay(wait + 10); // quiet
      const before = m.stats.commits;
      const t0 = performance.now();
      assert.equal(await m.put("alice", { id: "id-000001", raw: "{}" }), "stored");
      assert.ok(performance.now() - t0 < 250, "the first after a quiet spell waited");
      const second = m.put("alice", { id: "id-000002", raw: "{}" });
      await delay(20);
      const third = m.put("alice", { id: "id-000003", raw: "{}" });
      assert.deepEqual(await Promise.all([second, third]), ["stored", "stored"]);
      assert.equal(m.stats.commits - before, commits, `groupCommitMs ${wait}`);
    } finally {
      await m.close();
    }
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sqlite mailbox: a read sends the writes waiting for company at once and sees them", async () => {
  await using t = await tempMailbox({ groupCommitMs: 60_000 });
  const m = t.m;
  const t0 = performance.now();
  const registered = m.register("alice", "pair");
  const put = m.put("alice", { id: "id-000001", raw: "{}" });
  assert.deepEqual((await m.pending("alice")).map((e) => e.id), ["id-000001"]);
  await Promise.all([registered, put]);
  assert.ok(performance.now() - t0 < 30_000, "the read waited out the commit wait");
});

Deno.test("sqlite mailbox: an ack of a put still waiting for its commit withdraws it: never written, answered stored", async () => {
  await using t = await tempMailbox({ groupCommitMs: 60_000 });
  const m = t.m;
  await m.register("alice", "pair"); // after a quiet spell: commits at once
  // Within the commit wait, so it waits for company; a live reader acks it meanwhile.
  const put = m.put("alice", { id: "id-000001", raw: '{"n":1}' });
  const acked = m.ack("alice", ["id-000001", "id-absent"]);
  assert.deepEqual(await m.pending("alice"), []); // a read sends the waiting writes at once
  assert.equal(await put, "stored");
  assert.equal(await acked, 1, "the withdrawn envelope counts as acked, the absent id not");
  assert.equal(m.stats.withdrawn, 1);
  // It never took a place in the file: the next put gets the mailbox's first sequence number.
  const next = m.put("alice", { id: "id-000002", raw: '{"n":2}' });
  assert.deepEqual((await m.pending("alice")).map((e) => [e.id, e.seq]), [["id-000002", 1]]);
  assert.equal(await next, "stored");
  // A resend of a stored envelope, acked while queued: the queued copy is withdrawn and the
  // stored one deleted, so nothing is delivered again.
  const resend = m.put("alice", { id: "id-000002", raw: '{"n":2}' });
  const ackedAgain = m.ack("alice", ["id-000002"]);
  assert.deepEqual(await m.pending("alice"), []);
  assert.equal(await resend, "stored");
  assert.equal(await ackedAgain, 1);
  assert.deepEqual(await m.depth("alice"), { count: 0, bytes: 0 });
  assert.deepEqual(await m.totals(), { count: 0, bytes: 0 });
  // A put handed to the writer before the ack is written, and the ack deletes it.
  const early = m.put("alice", { id: "id-000003", raw: '{"n":3}' });
  assert.deepEqual((await m.pending("alice")).map((e) => e.id), ["id-000003"]);
  assert.equal(await early, "stored");
  const ackedLate = m.ack("alice", ["id-000003"]);
  assert.deepEqual(await m.pending("alice"), []);
  assert.equal(await ackedLate, 1);
  assert.equal(m.stats.withdrawn, 2, "only the two acked while queued were withdrawn");
  // An ack after close is refused and withdraws nothing: the put is still answered by its batch.
  const last = m.put("alice", { id: "id-000004", raw: '{"n":4}' });
  const closing = m.close();
  await assert.rejects(m.ack("alice", ["id-000004"]), /closed/);
  await closing;
  assert.equal(await last, "stored");
  assert.equal(m.stats.withdrawn, 2);
});

Deno.test("sqlite mailbox: a withdrawn put is answered when its ack comes, not when its batch begins", async () => {
  await using t = await tempMailbox({ groupCommitMs: 60_000 });
  const m = t.m;
  await m.register("alice", "pair"); // after a quiet spell: commits at once
  const put = m.put("alice", { id: "id-000001", raw: '{"n":1}' }); // waits up to 60 s for company
  const kept = m.put("alice", { id: "id-000002", raw: '{"n":2}' });
  const acked = m.ack("alice", ["id-000001"]);
  const late = Symbol("late");
  const answer = await Promise.race([put, delay(2000).then(() => late)]);
  assert.equal(answer, "stored", "the sender's accepted waited for the batch");
  assert.equal(m.stats.commits, 1, "no batch began");
  // The rest of the batch is unchanged: written when it goes, the withdrawn put left out.
  assert.deepEqual((await m.pending("alice")).map((e) => e.id), ["id-000002"]);
  assert.equal(await kept, "stored");
  assert.equal(await acked, 1);
});

Deno.test("sqlite mailbox: a register does not wait out the commit wait (the client's opened waits for it)", async () => {
  const wait = 1500;
  await using t = await tempMailbox({ groupCommitMs: wait });
  const m = t.m;
  await m.register("alice", "pair"); // after a quiet spell: at once
  const t0 = performance.now();
  await m.register("bob", "pair"); // within the wait of the last batch
  const ms = performance.now() - t0;
  assert.ok(ms < wait / 2, `the register waited ${Math.round(ms)} ms`);
  assert.equal(await m.put("bob", { id: "id-000001", raw: "{}" }), "stored");
});

Deno.test("sqlite mailbox: a put after close is refused, not lost silently", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const m = new SqliteMailbox(join(dir, "mailbox.db"));
  await m.close();
  await assert.rejects(m.put("alice", { id: "id-000001", raw: "{}" }), /closed/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sqlite mailbox: a writer that dies before it starts fails every call, not hangs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const m = new SqliteMailbox(
    join(dir, "mailbox.db"),
    DEFAULT_MAILBOX_LIMITS,
    { writer: new URL("./testdata/failing_writer.ts", import.meta.url) },
  );
  const within = <T>(p: Promise<T>) =>
    Promise.race([
      p,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("hung")), 5000)),
    ]);
  try {
    await assert.rejects(within(m.put("alice", { id: "id-000001", raw: "{}" })), /writer failed/);
    await assert.rejects(within(m.ack("alice", ["id-000001"])), /writer failed/);
    // A put its reader acked while it was queued is withdrawn: the failed batch is not its own.
    const withdrawn = m.put("alice", { id: "id-000002", raw: "{}" });
    await assert.rejects(within(m.ack("alice", ["id-000002"])), /writer failed/);
    assert.equal(await within(withdrawn), "stored");
    assert.equal((await within(m.check())).ok, false);
    await within(m.totals());
  } finally {
    await within(m.close());
  }
  await Deno.remove(dir, { recursive: true });
});

/** Every byte of the database and its WAL, as Latin-1 text (to search for stored text). */
async function fileBytes(path: string): Promise<string> {
  let text = "";
  for (const f of [path, path + "-wal"]) {
    const bytes = await Deno.readFile(f).catch(() => new Uint8Array());
    text += new TextDecoder("latin1").decode(bytes);
  }
  return text;
}

Deno.test("sqlite mailbox: an acked envelope is gone from mailbox.db and its WAL after the sweep's checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const path = join(dir, "mailbox.db");
  const m = new SqliteMailbox(path);
  const secret = "Q2lwaGVydGV4dCB0aGF0IG11c3Qgbm90IGxpbmdlcg" + "x".repeat(200);
  const raw = (id: string, c: string) => JSON.stringify({ v: 2, id, to: "bob", body: c });
  try {
    await m.register("bob", "pair");
    await m.put("bob", { id: "id-keep-01", raw: raw("id-keep-01", "kept".repeat(50)) });
    await m.put("bob", { id: "id-gone-01", raw: raw("id-gone-01", secret) });
    assert.ok((await fileBytes(path)).includes(secret), "the check below can see stored text");
    await m.ack("bob", ["id-gone-01"]);
    await m.sweep(); // the relay sweeps every minute; a sweep ends with a WAL checkpoint
    const bytes = await fileBytes(path);
    assert.ok(!bytes.includes(secret), "the acked ciphertext is still on disk");
    assert.ok(!bytes.includes(secret.slice(0, 40)), "not even in part");
    assert.deepEqual((await m.pending("bob")).map((e) => e.id), ["id-keep-01"]);
  } finally {
    await m.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite mailbox: a new data directory is 0700, its files 0600; an older 0644 file is tightened", async () => {
  const parent = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const dir = join(parent, "relay-data");
  const path = join(dir, "mailbox.db");
  const modes = async () => {
    const out: Record<string, string> = {};
    for await (const e of Deno.readDir(dir)) {
      out[e.name] = ((await Deno.stat(join(dir, e.name))).mode! & 0o777).toString(8);
    }
    return out;
  };
  const m = new SqliteMailbox(path, DEFAULT_MAILBOX_LIMITS, { reserveBytes: 1 << 16 });
  await m.register("bob", "pair");
  await m.put("bob", { id: "id-000001", raw: "{}" });
  assert.equal(((await Deno.stat(dir)).mode! & 0o777).toString(8), "700");
  assert.deepEqual(await modes(), {
    "mailbox.db": "600",
    "mailbox.db-wal": "600",
    "mailbox.db-shm": "600",
    "mailbox.db-reserve": "600",
  });
  await m.close();
  await Deno.chmod(path, 0o644);
  const again = new SqliteMailbox(path);
  try {
    assert.equal((await modes())["mailbox.db"], "600");
  } finally {
    await again.close();
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("sqlite mailbox: on a full disk puts are refused, acks still drain, and puts return with the space", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const path = join(dir, "mailbox.db");
  const logs: string[] = [];
  const m = new SqliteMailbox(path, DEFAULT_MAILBOX_LIMITS, {
    reserveBytes: 1 << 20,
    writer: new URL("./testdata/full_disk_writer.ts", import.meta.url),
    logger: { warn: (msg) => logs.push(msg), error: (msg) => logs.push(msg) },
  });
  const env = (n: number) => ({ id: `id-${n}-full`, raw: JSON.stringify({ n }) });
  try {
    await m.register("bob", "pair");
    for (let n = 1; n <= 3; n++) await m.put("bob", env(n));
    assert.ok((await Deno.stat(path + "-reserve")).size >= 1 << 20, "the reserve is held");
    assert.deepEqual(await m.check(), { ok: true, detail: path });

    await Deno.writeTextFile(path + "-disk-full", ""); // the disk fills up
    await assert.rejects(m.put("bob", env(4)), (e: unknown) => {
      assert.ok(e instanceof BackendUnavailableError, String(e));
      assert.match(e.message, /disk full/);
      return true;
    });
    assert.equal((await m.check()).ok, false, "not ready while puts are refused");
    assert.match((await m.check()).detail, /disk full/);
    assert.equal(await m.ack("bob", ["id-1-full", "id-2-full"]), 2, "acks run on a full disk");
    await assert.rejects(m.put("bob", env(5)), /disk full/, "still refused: space not back");
    assert.deepEqual((await m.pending("bob")).map((e) => e.id), ["id-3-full"]);

    await Deno.remove(path + "-disk-full"); // space is back
    await m.check(); // a readiness probe asks the writer to try again
    for (let i = 0; (await m.check()).ok === false; i++) {
      assert.ok(i < 100, "the mailbox never became ready again");
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(await m.put("bob", env(6)), "stored");
    assert.ok((await Deno.stat(path + "-reserve")).size >= 1 << 20, "the reserve is back");
    assert.deepEqual(logs, [
      "disk full: refusing new messages; acks still drain mailboxes",
      "disk space back: accepting new messages",
    ], "each change is logged once");
  } finally {
    await m.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite mailbox: a protocol-v1 file is migrated: its envelopes are dropped with one log line, and leave no trace in the files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const path = join(dir, "mailbox.db");
  // What a v1 relay left (layout 2): envelopes naming both identity keys.
  const key = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";
  const old = new DatabaseSync(path);
  old.exec(`PRAGMA journal_mode = WAL;
CREATE TABLE envelopes (mailbox TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
  raw TEXT NOT NULL, bytes INTEGER NOT NULL, received_at INTEGER NOT NULL,
  PRIMARY KEY (mailbox, seq), UNIQUE (mailbox, id)) WITHOUT ROWID;
CREATE INDEX envelopes_by_age ON envelopes (received_at);
PRAGMA user_version = 2;`);
  const insert = old.prepare("INSERT INTO envelopes VALUES (?, ?, ?, ?, ?, ?)");
  for (let i = 1; i <= 40; i++) {
    const raw = JSON.stringify({ v: 1, id: `v1-env-${i}`, from: key, to: key, ciphertext: "x" });
    insert.run(key, i, `v1-env-${i}`, raw, raw.length, Date.now());
  }
  old.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  old.close();
  assert.ok((await fileBytes(path)).includes(key), "the check below can see the old rows");

  const logs: Array<[string, Record<string, unknown> | undefined]> = [];
  const m = new SqliteMailbox(path, DEFAULT_MAILBOX_LIMITS, {
    logger: { warn: (msg, f) => logs.push([msg, f]), error: (msg, f) => logs.push([msg, f]) },
  });
  try {
    assert.deepEqual(logs, [[
      "protocol v1 envelopes dropped: v2 clients cannot read them",
      { kind: "sqlite", count: 40 },
    ]]);
    assert.deepEqual(await m.totals(), { count: 0, bytes: 0 });
    assert.deepEqual(await m.pending(key), []);
    await m.register("m2", "pair");
    assert.equal(await m.put("m2", { id: "id-v2-0001", raw: "{}" }), "stored");
    for (const encoding of [key, key.slice(0, 20)]) {
      assert.ok(!(await fileBytes(path)).includes(encoding), "a v1 key is still in the files");
    }
  } finally {
    await m.close();
  }
  const again = new SqliteMailbox(path, DEFAULT_MAILBOX_LIMITS, {
    logger: { warn: (msg, f) => logs.push([msg, f]), error: (msg, f) => logs.push([msg, f]) },
  });
  try {
    assert.equal(logs.length, 1, "migrated once");
    assert.deepEqual((await again.pending("m2")).map((e) => e.id), ["id-v2-0001"]);
  } finally {
    await again.close();
    await Deno.remove(dir, { recursive: true });
  }
});
