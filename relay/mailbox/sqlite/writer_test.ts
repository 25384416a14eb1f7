import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { openDatabase, SCHEMA_VERSION, SqliteWriter } from "./writer.ts";

const LIMITS = {
  maxCount: 2,
  maxBytes: 1000,
  maxAgeMs: 60_000,
  inbox: { maxCount: 1, maxBytes: 1000 },
};
const HOUR = 3_600_000;

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

Deno.test("sqlite writer: one batch applies registrations, puts, acks and sweeps in order, one result each", async () => {
  const { dir, path } = await tmpDb();
  const w = new SqliteWriter(path, { limits: LIMITS, reserveBytes: 0 });
  try {
    const now = 100 * HOUR + 1234;
    const r = w.apply([
      { op: "put", mailbox: "bob", id: "a", raw: "{}", now },
      { op: "register", mailbox: "bob", kind: "pair", now },
      { op: "put", mailbox: "bob", id: "a", raw: "{}", now },
      { op: "put", mailbox: "bob", id: "a", raw: "{}", now },
      { op: "put", mailbox: "bob", id: "b", raw: "{}", now: now - 3 * HOUR },
      { op: "put", mailbox: "bob", id: "c", raw: "{}", now },
      { op: "put", mailbox: "bob", id: "a", raw: "{}", now },
      { op: "ack", mailbox: "bob", ids: ["a", "zzz"] },
      { op: "put", mailbox: "bob", id: "c", raw: "{}", now },
      { op: "put", mailbox: "carol", id: "c", raw: "{1}", now, inbox: true },
      { op: "put", mailbox: "carol", id: "d", raw: "{1}", now, inbox: true },
      { op: "sweep", now },
    ]);
    assert.deepEqual(r[0], { unknown: true }, "nobody registered bob yet");
    assert.equal(r[1], 0);
    assert.equal(r[2], "stored");
    assert.equal(r[3], "duplicate");
    assert.equal(r[4], "stored");
    assert.match((r[5] as { full: string }).full, /2 messages \(limit 2\)/);
    assert.equal(r[6], "duplicate", "a resend to a full mailbox is still a duplicate");
    assert.equal(r[7], 1);
    assert.equal(r[8], "stored", "the ack earlier in the batch made room");
    assert.equal(r[9], "stored", "ids are per mailbox; a request inbox needs no registration");
    assert.match((r[10] as { full: string }).full, /1 messages \(limit 1\)/, "inbox caps");
    assert.deepEqual(r[11], { envelopes: 1, mailboxes: 0 }, "b is older than maxAgeMs");
    assert.deepEqual(ids(path), ["c", "c"]);
    assert.deepEqual(w.totals(), { count: 2, bytes: 5 });
    const db = new DatabaseSync(path);
    assert.deepEqual(
      db.prepare("SELECT mailbox, seq, received_at FROM envelopes ORDER BY mailbox").all()
        .map((x) => ({ ...x })),
      [
        { mailbox: "bob", seq: 3, received_at: 100 * HOUR },
        { mailbox: "carol", seq: 1, received_at: 100 * HOUR },
      ],
      "seq per mailbox, the time to the hour",
    );
    assert.deepEqual(
      db.prepare("SELECT id, kind, opened_day FROM mailboxes").all().map((x) => ({ ...x })),
      [{ id: "bob", kind: "pair", opened_day: 96 * HOUR }],
      "the registry holds the day of the last open",
    );
    db.close();
    // Ids whose put was withdrawn count as acked, and a stored copy of one is deleted too.
    const after = w.apply([
      { op: "put", mailbox: "carol", id: "e", raw: "{2}", now, inbox: true },
      { op: "ack", mailbox: "carol", ids: ["zzz"], unstored: ["c", "never-put"] },
    ]);
    assert.deepEqual(after, [{ full: "mailbox holds 1 messages (limit 1)" }, 2]);
    assert.deepEqual(ids(path), ["c"]);
    assert.deepEqual(w.totals(), { count: 1, bytes: 2 });
  } finally {
    w.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sqlite writer: a batch that fails writes nothing of itself and totals follow the file", async () => {
  const { dir, path } = await tmpDb();
  const w = new SqliteWriter(path, { limits: { ...LIMITS, maxCount: 10 }, reserveBytes: 0 });
  try {
    w.apply([
      { op: "register", mailbox: "bob", kind: "pair", now: 1 },
      { op: "put", mailbox: "bob", id: "kept", raw: "{}", now: 1 },
    ]);
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

Deno.test("sqlite writer: a layout-1 file (a v1 relay's, trigger-kept totals) loses its envelopes", async () => {
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
  const dropped: number[] = [];
  openDatabase(path, (n) => dropped.push(n)).close();
  assert.deepEqual(dropped, [3]);
  const w = new SqliteWriter(path, { limits: LIMITS, reserveBytes: 0 });
  try {
    assert.deepEqual(w.totals(), { count: 0, bytes: 0 });
    const r = w.apply([
      { op: "register", mailbox: "bob", kind: "pair", now: 8 },
      { op: "put", mailbox: "bob", id: "one", raw: "{1}", now: 8 },
    ]);
    assert.equal(r[1], "stored", "the old id is gone with its envelope");
    const db = new DatabaseSync(path);
    assert.equal(
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
      SCHEMA_VERSION,
    );
    assert.equal(
      db.prepare("SELECT 1 FROM sqlite_master WHERE name IN ('mailbox_totals', 'envelopes_insert')")
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
    w.apply([
      { op: "register", mailbox: "bob", kind: "pair", now: 1 },
      { op: "put", mailbox: "bob", id: "one", raw: "{}", now: 1 },
    ]);
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
