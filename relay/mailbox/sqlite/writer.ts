/**
 * The write side of the SQLite mailbox: one connection that applies batches of puts, acks and
 * sweeps, each batch in one transaction. `SqliteMailbox` runs it in a Worker
 * (`writer_worker.ts`) so that the commit's fsync never blocks the relay's event loop;
 * the class itself is plain and synchronous, so it is tested in-process.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { MailboxLimits } from "../../ports/mailbox.ts";

const utf8 = new TextEncoder();

/** `PRAGMA user_version` of the current layout. */
export const SCHEMA_VERSION = 2;

/**
 * Layout 2: one table clustered by (mailbox, seq), so a mailbox's envelopes sit together and a
 * put or an ack touches two b-trees (the table and the id index) plus the append-only age index.
 * Per-mailbox counts for the limits are kept in the writer's memory, not in a table: layout 1
 * kept them in a trigger-maintained table and had a separate (mailbox, seq) index, and each of
 * those was one more page written and fsynced per mailbox per commit (bench/README.md).
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS envelopes (
  mailbox TEXT NOT NULL,
  seq INTEGER NOT NULL,
  id TEXT NOT NULL,
  raw TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (mailbox, seq),
  UNIQUE (mailbox, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS envelopes_by_age ON envelopes (received_at);
`;

/** Layout 1 (before 2026-11-24) → 2, in one transaction: same rows, same seq values. */
const MIGRATE_1_TO_2 = `
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS envelopes_insert;
DROP TRIGGER IF EXISTS envelopes_delete;
DROP TABLE IF EXISTS mailbox_totals;
ALTER TABLE envelopes RENAME TO envelopes_v1;
DROP INDEX IF EXISTS envelopes_by_mailbox;
DROP INDEX IF EXISTS envelopes_by_age;
${SCHEMA}
INSERT INTO envelopes (mailbox, seq, id, raw, bytes, received_at)
  SELECT mailbox, seq, id, raw, bytes, received_at FROM envelopes_v1;
DROP TABLE envelopes_v1;
PRAGMA user_version = ${SCHEMA_VERSION};
COMMIT;
`;

/** One write, as it crosses to the writer. */
export type WriteOp =
  | { op: "put"; mailbox: string; id: string; raw: string; now: number }
  | { op: "ack"; mailbox: string; ids: readonly string[] }
  | { op: "sweep"; now: number };

/** The outcome of one op: a put's verdict, a count (ack, sweep), or a refusal at a limit. */
export type WriteResult = "stored" | "duplicate" | number | { full: string };

/**
 * Opens the database with the settings every connection shares, creating the layout or
 * migrating an older one. Throws when the file cannot be opened or is not a mailbox database.
 */
export function openDatabase(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
    const version = (db.prepare("PRAGMA user_version").get() as { user_version: number })
      .user_version;
    const hasTable = db.prepare(
      "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'envelopes'",
    ).get() !== undefined;
    if (version > SCHEMA_VERSION) {
      throw new Error(
        `mailbox database layout ${version} is newer than this relay knows (${SCHEMA_VERSION})`,
      );
    }
    if (hasTable && version < SCHEMA_VERSION) {
      try {
        db.exec(MIGRATE_1_TO_2);
      } catch (err) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw err;
      }
    } else if (!hasTable) {
      db.exec(`BEGIN IMMEDIATE; ${SCHEMA} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT;`);
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Count and bytes held. */
export interface Totals {
  count: number;
  bytes: number;
}

/** Applies write batches to one SQLite file. */
export class SqliteWriter {
  #db: DatabaseSync;
  #limits: MailboxLimits;
  #sync: "FULL" | "NORMAL" = "FULL";
  #seq: number;
  /** Per-mailbox totals, loaded on first use; only mailboxes holding something stay here. */
  #held = new Map<string, Totals>();
  #all: Totals;
  #stmt: {
    load: StatementSync;
    exists: StatementSync;
    insert: StatementSync;
    ack: StatementSync;
    sweep: StatementSync;
  };

  constructor(path: string, limits: MailboxLimits) {
    this.#limits = limits;
    this.#db = openDatabase(path);
    this.#stmt = {
      load: this.#db.prepare(
        "SELECT count(*) AS count, coalesce(sum(bytes), 0) AS bytes FROM envelopes WHERE mailbox = ?",
      ),
      exists: this.#db.prepare("SELECT 1 FROM envelopes WHERE mailbox = ? AND id = ?"),
      insert: this.#db.prepare(
        "INSERT INTO envelopes (mailbox, seq, id, raw, bytes, received_at) " +
          "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox, id) DO NOTHING",
      ),
      ack: this.#db.prepare("DELETE FROM envelopes WHERE mailbox = ? AND id = ? RETURNING bytes"),
      sweep: this.#db.prepare(
        "DELETE FROM envelopes WHERE received_at < ? RETURNING mailbox, bytes",
      ),
    };
    // seq only has to grow within a mailbox; one counter for all is simplest. The scans below
    // run once per start.
    this.#seq = this.#maxSeq();
    this.#all = this.#scanAll();
  }

  #maxSeq(): number {
    const r = this.#db.prepare("SELECT coalesce(max(seq), 0) AS s FROM envelopes").get();
    return Number((r as { s: number }).s);
  }

  #scanAll(): Totals {
    const r = this.#db.prepare(
      "SELECT count(*) AS count, coalesce(sum(bytes), 0) AS bytes FROM envelopes",
    ).get() as { count: number; bytes: number };
    return { count: r.count, bytes: r.bytes };
  }

  /** Envelopes and bytes held over all mailboxes (after the last batch). */
  totals(): Totals {
    return { ...this.#all };
  }

  #load(mailbox: string): Totals {
    let t = this.#held.get(mailbox);
    if (!t) {
      const r = this.#stmt.load.get(mailbox) as { count: number; bytes: number };
      t = { count: r.count, bytes: r.bytes };
      if (this.#held.size >= 100_000) this.#held.clear(); // a cache: reloaded when needed
      this.#held.set(mailbox, t);
    }
    return t;
  }

  /**
   * Follows a write in the totals. A mailbox not in the cache is left out: loaded later, it is
   * read from the file with this write already in it.
   */
  #add(mailbox: string, count: number, bytes: number): void {
    const t = this.#held.get(mailbox);
    if (t) {
      t.count += count;
      t.bytes += bytes;
      if (t.count <= 0) this.#held.delete(mailbox);
    }
    this.#all.count += count;
    this.#all.bytes += bytes;
  }

  /**
   * Applies `ops` in order in one transaction and returns one result per op. Throws (after
   * rolling back) when the database fails: then nothing of the batch was written.
   *
   * Puts must be on disk before they are acknowledged (synchronous=FULL: the commit fsyncs the
   * WAL). Acks and sweeps need no fsync of their own: if the relay dies before a deletion is
   * durable, the envelope is delivered again and the client drops the id it already has. So a
   * batch without puts commits with synchronous=NORMAL, and becomes durable with the next put's
   * fsync.
   */
  apply(ops: readonly WriteOp[]): WriteResult[] {
    const results: WriteResult[] = [];
    const seq0 = this.#seq;
    this.#setSync(ops.some((o) => o.op === "put") ? "FULL" : "NORMAL");
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const o of ops) {
        if (o.op === "put") results.push(this.#put(o));
        else if (o.op === "ack") {
          let n = 0;
          for (const id of o.ids) {
            const gone = this.#stmt.ack.get(o.mailbox, id) as { bytes: number } | undefined;
            if (gone) {
              n++;
              this.#add(o.mailbox, -1, -gone.bytes);
            }
          }
          results.push(n);
        } else {
          const gone = this.#stmt.sweep.all(o.now - this.#limits.maxAgeMs) as Array<
            { mailbox: string; bytes: number }
          >;
          for (const g of gone) this.#add(g.mailbox, -1, -g.bytes);
          results.push(gone.length);
        }
      }
      this.#db.exec("COMMIT");
    } catch (err) {
      try {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      } catch { /* nothing more to undo */ }
      // The in-memory state followed the rolled-back writes: read it again from the file (which
      // also mends a seq clash with rows some other process wrote).
      this.#seq = Math.max(seq0, this.#maxSeq());
      this.#held.clear();
      this.#all = this.#scanAll();
      throw err;
    }
    return results;
  }

  #setSync(mode: "FULL" | "NORMAL"): void {
    if (this.#sync === mode) return;
    this.#db.exec(`PRAGMA synchronous = ${mode}`);
    this.#sync = mode;
  }

  #put(p: Extract<WriteOp, { op: "put" }>): WriteResult {
    const bytes = utf8.encode(p.raw).length;
    const t = this.#load(p.mailbox);
    const full = t.count + 1 > this.#limits.maxCount
      ? `mailbox holds ${t.count} messages (limit ${this.#limits.maxCount})`
      : t.bytes + bytes > this.#limits.maxBytes
      ? `mailbox holds ${t.bytes} bytes (limit ${this.#limits.maxBytes})`
      : undefined;
    if (full) {
      // A resend of something already held is a duplicate, full or not.
      return this.#stmt.exists.get(p.mailbox, p.id) ? "duplicate" : { full };
    }
    const r = this.#stmt.insert.run(p.mailbox, this.#seq + 1, p.id, p.raw, bytes, p.now);
    if (Number(r.changes) === 0) return "duplicate";
    this.#seq++;
    this.#add(p.mailbox, 1, bytes);
    return "stored";
  }

  close(): void {
    this.#db.close();
  }
}
