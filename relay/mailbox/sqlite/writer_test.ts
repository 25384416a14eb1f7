import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SCHEMA_VERSION, SqliteWriter } from "./writer.ts";

const LIMITS = { maxCount: 2, maxBytes: 1000, maxAgeMs: 60_000 };

async function tmpDb(): Promise<{ dir: string; path: string }> {
  const dir = await Deno.makeTempDir({ prefix: "chat-writer-" });
  return { dir, path: join(dir, "mailbox.db") };
}

function ids(path: string): unknown[] {
  const db = new DatabaseSync(path);
  try {
    return db.prepare("SELECT id FROM envelopes ORDER BY seq").all().map((x) => x.id);
  } finally {
    db.close();
  }
}

Deno.test("sqlite writer: one batch applies puts, acks and sweeps in order, one result each", async () => {
  const { dir, path } = await tmpDb();
  const w = new SqliteWriter(path, { limits: LIMITS, reserveBytes: 0 });
  try {
    const now = 1_000_000;
    const r = w.apply([
      { op: "put", mailbox: "bob", id: "a", raw: "{}", now },
      { op: "put", mailbox: "bob", id: "a", raw: "{}", now },
      { op: "put", mailbox: "bob", id: "b", raw: "{}", now: now - 120_000 },
      { op: "put", mailbox: "bob", id: "c", raw: "{}", now },
      { op: "put", mailbox: "bob", id: "a", raw: "{}", now },
      { op: "ack", mailbox: "bob", ids: ["a", "zzz"] },
      { op: "put", mailbox: "bob", id: "c", raw: "{}", now },
      { op: "put", mailbox: "carol", id: "c", raw: "{1}", now },
      { op: "sweep", now },
    ]);
    assert.equal(r[0], "stored");
    assert.equal(r[1], "duplicate");
    assert.equal(r[2], "stored");
    assert.match((r[3] as { full: string }).full, /2 messages \(limit 2\)/);
    assert.equal(r[4], "duplicate", "a resend to a full mailbox is still a duplicate");
    assert.equal(r[5], 1);
    assert.equal(r[6], "stored", "the ack earlier in the batch made room");
    assert.equal(r[7], "stored", "ids are per mailbox");
    assert.equal(r[8], 1, "b is older than maxAgeMs");
    assert.deepEqual(ids(path), ["c", "c"]);
    assert.deepEqual(w.totals(), { count: 2, bytes: 5 });
  } finally {
    w.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite writer: a batch that fails writes nothing of itself and totals follow the file", async () => {
  const { dir, path } = await tmpDb();
  const w = new SqliteWriter(path, { limits: { ...LIMITS, maxCount: 10 }, reserveBytes: 0 });
  try {
    w.apply([{ op: "put", mailbox: "bob", id: "kept", raw: "{}", now: 1 }]);
    // A trigger that aborts deletions fails the batch at its ack, after its put already ran
    // inside the transaction.
    const db = new DatabaseSync(path);
    db.exec(
      "CREATE TRIGGER boom BEFORE DELETE ON envelopes BEGIN SELECT RAISE(ABORT, 'boom'); END",
    );
    assert.throws(
      () =>
        w.apply([
          { op: "put", mailbox: "bob", id: "lost", raw: "{}", now: 1 },
          { op: "ack", mailbox: "bob", ids: ["kept"] },
        ]),
      /boom/,
    );
    assert.deepEqual(ids(path), ["kept"]);
    assert.deepEqual(w.totals(), { count: 1, bytes: 2 });
    db.exec("DROP TRIGGER boom");
    db.close();
    assert.deepEqual(w.apply([{ op: "put", mailbox: "bob", id: "lost", raw: "{}", now: 1 }]), [
      "stored",
    ]);
    assert.deepEqual(w.apply([{ op: "ack", mailbox: "bob", ids: ["kept", "lost"] }]), [2]);
    assert.deepEqual(w.totals(), { count: 0, bytes: 0 });
  } finally {
    w.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite writer: a layout-1 file (trigger-kept totals) is migrated with its envelopes", async () => {
  const { dir, path } = await tmpDb();
  const old = new DatabaseSync(path);
  old.exec(`PRAGMA journal_mode = WAL;
CREATE TABLE envelopes (seq INTEGER PRIMARY KEY AUTOINCREMENT, mailbox TEXT NOT NULL,
  id TEXT NOT NULL, raw TEXT NOT NULL, bytes INTEGER NOT NULL, received_at INTEGER NOT NULL,
  UNIQUE (mailbox, id));
CREATE INDEX envelopes_by_mailbox ON envelopes (mailbox, seq);
CREATE INDEX envelopes_by_age ON envelopes (received_at);
CREATE TABLE mailbox_totals (mailbox TEXT PRIMARY KEY, count INTEGER NOT NULL, bytes INTEGER NOT NULL);
CREATE TRIGGER envelopes_insert AFTER INSERT ON envelopes BEGIN
  INSERT INTO mailbox_totals (mailbox, count, bytes) VALUES (NEW.mailbox, 1, NEW.bytes)
  ON CONFLICT (mailbox) DO UPDATE SET count = count + 1, bytes = bytes + NEW.bytes; END;
INSERT INTO envelopes (mailbox, id, raw, bytes, received_at) VALUES
  ('bob', 'one', '{1}', 3, 5), ('carol', 'two', '{22}', 4, 6), ('bob', 'three', '{333}', 5, 7);`);
  old.close();
  const w = new SqliteWriter(path, { limits: LIMITS, reserveBytes: 0 });
  try {
    assert.deepEqual(w.totals(), { count: 3, bytes: 12 });
    const r = w.apply([
      { op: "put", mailbox: "bob", id: "one", raw: "{1}", now: 8 },
      { op: "put", mailbox: "bob", id: "four", raw: "{4}", now: 8 },
      { op: "put", mailbox: "carol", id: "four", raw: "{4}", now: 8 },
    ]);
    assert.equal(r[0], "duplicate");
    assert.match((r[1] as { full: string }).full, /limit 2/, "counts come from the old rows");
    assert.equal(r[2], "stored");
    const db = new DatabaseSync(path);
    assert.deepEqual(
      db.prepare("SELECT mailbox, seq, id FROM envelopes ORDER BY seq").all().map((x) => ({
        ...x,
      })),
      [
        { mailbox: "bob", seq: 1, id: "one" },
        { mailbox: "carol", seq: 2, id: "two" },
        { mailbox: "bob", seq: 3, id: "three" },
        { mailbox: "carol", seq: 4, id: "four" },
      ],
    );
    assert.equal(
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      SCHEMA_VERSION,
    );
    assert.equal(
      db.prepare("SELECT 1 FROM sqlite_master WHERE name IN ('mailbox_totals', 'envelopes_v1')")
        .get(),
      undefined,
    );
    db.close();
  } finally {
    w.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite writer: a file from a newer relay is refused, not rewritten", async () => {
  const { dir, path } = await tmpDb();
  const db = new DatabaseSync(path);
  db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(
    () => new SqliteWriter(path, { limits: LIMITS, reserveBytes: 0 }),
    /newer than this relay knows/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sqlite writer: rows another process wrote under its next seq fail one batch, not every one after", async () => {
  const { dir, path } = await tmpDb();
  const w = new SqliteWriter(path, { limits: { ...LIMITS, maxCount: 10 }, reserveBytes: 0 });
  try {
    w.apply([{ op: "put", mailbox: "bob", id: "one", raw: "{}", now: 1 }]);
    const db = new DatabaseSync(path);
    db.exec(
      "INSERT INTO envelopes (mailbox, seq, id, raw, bytes, received_at) VALUES ('bob', 2, 'x', '{}', 2, 1)",
    );
    db.close();
    assert.throws(() => w.apply([{ op: "put", mailbox: "bob", id: "two", raw: "{}", now: 1 }]));
    assert.deepEqual(w.apply([{ op: "put", mailbox: "bob", id: "two", raw: "{}", now: 1 }]), [
      "stored",
    ]);
    assert.deepEqual(ids(path), ["one", "x", "two"]);
    assert.deepEqual(w.totals(), { count: 3, bytes: 6 });
  } finally {
    w.close();
    await Deno.remove(dir, { recursive: true });
  }
});
