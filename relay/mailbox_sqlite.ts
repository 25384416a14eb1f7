/**
 * SQLite `Mailbox` (node:sqlite, WAL, synchronous=FULL): the embedded relay's durable store.
 *
 * Puts that arrive in the same event-loop turn are committed together in one transaction (group
 * commit), so a burst of sends costs one fsync, not one per envelope; each put still resolves
 * only after its transaction is durable. Per-mailbox totals are kept by triggers, so limit checks
 * never scan a mailbox.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { setImmediate } from "node:timers";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import {
  type BackendStatus,
  BackendUnavailableError,
  DEFAULT_MAILBOX_LIMITS,
  type Mailbox,
  MailboxFullError,
  type MailboxLimits,
  type StoredEnvelope,
} from "./mailbox.ts";

const utf8 = new TextEncoder();

const SCHEMA = `
CREATE TABLE IF NOT EXISTS envelopes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  mailbox TEXT NOT NULL,
  id TEXT NOT NULL,
  raw TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  received_at INTEGER NOT NULL,
  UNIQUE (mailbox, id)
);
CREATE INDEX IF NOT EXISTS envelopes_by_mailbox ON envelopes (mailbox, seq);
CREATE INDEX IF NOT EXISTS envelopes_by_age ON envelopes (received_at);
CREATE TABLE IF NOT EXISTS mailbox_totals (
  mailbox TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  bytes INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS envelopes_insert AFTER INSERT ON envelopes BEGIN
  INSERT INTO mailbox_totals (mailbox, count, bytes) VALUES (NEW.mailbox, 1, NEW.bytes)
  ON CONFLICT (mailbox) DO UPDATE SET count = count + 1, bytes = bytes + NEW.bytes;
END;
CREATE TRIGGER IF NOT EXISTS envelopes_delete AFTER DELETE ON envelopes BEGIN
  UPDATE mailbox_totals SET count = count - 1, bytes = bytes - OLD.bytes
  WHERE mailbox = OLD.mailbox;
END;
`;

interface QueuedPut {
  op: "put";
  mailboxId: string;
  id: string;
  raw: string;
  now: number;
  resolve: (r: "stored" | "duplicate") => void;
  reject: (e: Error) => void;
}

interface QueuedAck {
  op: "ack";
  mailboxId: string;
  ids: readonly string[];
  resolve: (n: number) => void;
  reject: (e: Error) => void;
}

type QueuedWrite = QueuedPut | QueuedAck;

/** A mailbox in one SQLite file. */
export class SqliteMailbox implements Mailbox {
  readonly kind = "sqlite";
  readonly path: string;
  #db: DatabaseSync;
  #limits: MailboxLimits;
  #queue: QueuedWrite[] = [];
  #sync: "FULL" | "NORMAL" = "FULL";
  #flushScheduled = false;
  #closed = false;
  #stmt: {
    exists: StatementSync;
    totals: StatementSync;
    insert: StatementSync;
    pending: StatementSync;
    ack: StatementSync;
    dropEmpty: StatementSync;
    sweep: StatementSync;
  };

  /** Opens (creating if needed) the database at `path`. */
  constructor(path: string, limits: MailboxLimits = DEFAULT_MAILBOX_LIMITS) {
    this.path = path;
    this.#limits = limits;
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#db = new DatabaseSync(path);
    this.#db.exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
    );
    this.#db.exec(SCHEMA);
    this.#stmt = {
      exists: this.#db.prepare("SELECT 1 FROM envelopes WHERE mailbox = ? AND id = ?"),
      totals: this.#db.prepare("SELECT count, bytes FROM mailbox_totals WHERE mailbox = ?"),
      insert: this.#db.prepare(
        "INSERT INTO envelopes (mailbox, id, raw, bytes, received_at) VALUES (?, ?, ?, ?, ?)",
      ),
      pending: this.#db.prepare(
        "SELECT id, raw, seq, received_at FROM envelopes WHERE mailbox = ? AND seq > ? " +
          "AND received_at >= ? ORDER BY seq LIMIT ?",
      ),
      ack: this.#db.prepare("DELETE FROM envelopes WHERE mailbox = ? AND id = ?"),
      dropEmpty: this.#db.prepare("DELETE FROM mailbox_totals WHERE mailbox = ? AND count <= 0"),
      sweep: this.#db.prepare("DELETE FROM envelopes WHERE received_at < ?"),
    };
  }

  put(
    mailboxId: string,
    envelope: { id: string; raw: string },
    now = Date.now(),
  ): Promise<"stored" | "duplicate"> {
    if (this.#closed) return Promise.reject(new BackendUnavailableError("mailbox is closed"));
    return new Promise((resolve, reject) => {
      this.#enqueue({
        op: "put",
        mailboxId,
        id: envelope.id,
        raw: envelope.raw,
        now,
        resolve,
        reject,
      });
    });
  }

  #enqueue(w: QueuedWrite): void {
    this.#queue.push(w);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // setImmediate, not setTimeout(0): a Deno timer fires after ~1-2 ms, which every send
      // would wait before its transaction starts (bench/README.md, finding 1). Immediates still
      // run after this turn's I/O, so concurrent writes keep sharing one commit.
      setImmediate(() => this.#flush());
    }
  }

  /**
   * Puts must be on disk before they are acknowledged (synchronous=FULL: the commit fsyncs the
   * WAL). Acks need no fsync of their own: if the relay dies before a deletion is durable, the
   * envelope is delivered again and the client drops the id it already has. So a batch with only
   * acks commits with synchronous=NORMAL, and becomes durable with the next put's fsync.
   */
  #setSync(mode: "FULL" | "NORMAL"): void {
    if (this.#sync === mode) return;
    this.#db.exec(`PRAGMA synchronous = ${mode}`);
    this.#sync = mode;
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    if (this.#closed) {
      for (const w of batch) w.reject(new BackendUnavailableError("mailbox is closed"));
      return;
    }
    const results: Array<"stored" | "duplicate" | number | Error> = [];
    const touched = new Set<string>();
    try {
      this.#setSync(batch.some((w) => w.op === "put") ? "FULL" : "NORMAL");
      this.#db.exec("BEGIN IMMEDIATE");
      for (const w of batch) {
        if (w.op === "put") {
          results.push(this.#putOne(w));
        } else {
          let n = 0;
          for (const id of w.ids) n += Number(this.#stmt.ack.run(w.mailboxId, id).changes);
          touched.add(w.mailboxId);
          results.push(n);
        }
      }
      for (const m of touched) this.#stmt.dropEmpty.run(m);
      this.#db.exec("COMMIT");
    } catch (err) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* no transaction open */ }
      const e = new BackendUnavailableError(`sqlite write failed: ${(err as Error).message}`);
      for (const w of batch) w.reject(e);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i];
      if (r instanceof Error) w.reject(r);
      else (w.resolve as (v: typeof r) => void)(r);
    });
  }

  #putOne(p: QueuedPut): "stored" | "duplicate" | Error {
    if (this.#stmt.exists.get(p.mailboxId, p.id)) return "duplicate";
    const bytes = utf8.encode(p.raw).length;
    const t = this.#stmt.totals.get(p.mailboxId) as { count: number; bytes: number } | undefined;
    const count = t?.count ?? 0;
    const held = t?.bytes ?? 0;
    if (count + 1 > this.#limits.maxCount) {
      return new MailboxFullError(
        `mailbox holds ${count} messages (limit ${this.#limits.maxCount})`,
      );
    }
    if (held + bytes > this.#limits.maxBytes) {
      return new MailboxFullError(`mailbox holds ${held} bytes (limit ${this.#limits.maxBytes})`);
    }
    this.#stmt.insert.run(p.mailboxId, p.id, p.raw, bytes, p.now);
    return "stored";
  }

  pending(
    mailboxId: string,
    opts: { afterSeq?: number; limit?: number; now?: number } = {},
  ): Promise<StoredEnvelope[]> {
    try {
      const oldest = (opts.now ?? Date.now()) - this.#limits.maxAgeMs;
      const rows = this.#stmt.pending.all(
        mailboxId,
        opts.afterSeq ?? 0,
        oldest,
        opts.limit ?? 500,
      ) as Array<{ id: string; raw: string; seq: number; received_at: number }>;
      return Promise.resolve(
        rows.map((r) => ({ id: r.id, raw: r.raw, seq: Number(r.seq), receivedAt: r.received_at })),
      );
    } catch (err) {
      return Promise.reject(new BackendUnavailableError((err as Error).message));
    }
  }

  ack(mailboxId: string, ids: readonly string[]): Promise<number> {
    if (this.#closed) return Promise.reject(new BackendUnavailableError("mailbox is closed"));
    return new Promise((resolve, reject) => {
      this.#enqueue({ op: "ack", mailboxId, ids, resolve, reject });
    });
  }

  depth(mailboxId: string): Promise<{ count: number; bytes: number }> {
    const t = this.#stmt.totals.get(mailboxId) as { count: number; bytes: number } | undefined;
    return Promise.resolve({ count: t?.count ?? 0, bytes: t?.bytes ?? 0 });
  }

  totals(): Promise<{ count: number; bytes: number }> {
    const r = this.#db.prepare(
      "SELECT coalesce(sum(count), 0) AS c, coalesce(sum(bytes), 0) AS b FROM mailbox_totals",
    ).get() as { c: number; b: number };
    return Promise.resolve({ count: r.c, bytes: r.b });
  }

  sweep(now = Date.now()): Promise<number> {
    this.#flush(); // queued writes first, so the sweep sees them
    const n = Number(this.#stmt.sweep.run(now - this.#limits.maxAgeMs).changes);
    if (n > 0) this.#db.exec("DELETE FROM mailbox_totals WHERE count <= 0");
    return Promise.resolve(n);
  }

  check(): Promise<BackendStatus> {
    if (this.#closed) return Promise.resolve({ ok: false, detail: "closed" });
    try {
      this.#db.prepare("SELECT 1").get();
      return Promise.resolve({ ok: true, detail: this.path });
    } catch (err) {
      return Promise.resolve({ ok: false, detail: (err as Error).message });
    }
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#flush();
    this.#closed = true;
    this.#db.close();
    return Promise.resolve();
  }
}
