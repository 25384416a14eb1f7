/**
 * The write side of the SQLite mailbox: one connection that applies batches of puts, acks and
 * sweeps, each batch in one transaction. `SqliteMailbox` runs it in a Worker
 * (`writer_worker.ts`) so that the commit's fsync never blocks the relay's event loop;
 * the class itself is plain and synchronous, so it is tested in-process.
 *
 * Files are the relay's alone: the database is created 0600 before SQLite opens it (SQLite gives
 * `-wal` and `-shm` the database's mode), and an existing one is set to 0600.
 *
 * A full disk: acks are writes too, so without room a recipient could never drain its mailbox
 * and the space would never come back. The writer keeps a reserve file (`<db>-reserve`) of
 * `reserveBytes`; when a transaction fails for lack of space it deletes the reserve, refuses puts
 * from then on, and applies the rest of the batch (acks, sweeps) in the space freed, in small
 * transactions with the WAL truncated after each. Once the reserve fits on the disk again with
 * room for messages besides, puts are accepted again.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import {
  chmodSync,
  closeSync,
  existsSync,
  openSync,
  statfsSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import {
  DAY_MS,
  envelopeCutoff,
  HOUR_MS,
  type MailboxKind,
  type MailboxLimits,
  overCaps,
  registrationCutoff,
  roundDown,
  type Swept,
} from "../../ports/mailbox.ts";
import { errorMessage } from "../../ports/errors.ts";

const utf8 = new TextEncoder();

/** `PRAGMA user_version` of the current layout. */
export const SCHEMA_VERSION = 3;

/**
 * Layout 3 (protocol v2): envelopes in one table clustered by (mailbox, seq), so a mailbox's
 * envelopes sit together and a put or an ack touches two b-trees (the table and the id index)
 * plus the append-only age index; `seq` counts per mailbox. Per-mailbox counts for the limits
 * are kept in the writer's memory, not in a table: each table written per put is one more page
 * written and fsynced per mailbox per commit (bench/README.md). `received_at` is the hour
 * (ms, rounded down) and `opened_day` the day: no finer time is stored.
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
CREATE TABLE IF NOT EXISTS mailboxes (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  opened_day INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mailboxes_by_day ON mailboxes (opened_day);
`;

/**
 * Layouts 1 and 2 were written by protocol-v1 relays: their envelopes name both identities and
 * no v2 client can read them, so they are dropped (the count is reported), in one transaction.
 */
const MIGRATE_V1 = `
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS envelopes_insert;
DROP TRIGGER IF EXISTS envelopes_delete;
DROP TABLE IF EXISTS mailbox_totals;
DROP TABLE IF EXISTS envelopes;
${SCHEMA}
PRAGMA user_version = ${SCHEMA_VERSION};
COMMIT;
`;

/**
 * One write, as it crosses to the writer. A sweep also truncates the WAL afterwards; `restore`
 * only tries to leave the disk-full state (readiness checks send it while no write comes).
 */
export type WriteOp =
  | { op: "put"; mailbox: string; id: string; raw: string; now: number; inbox?: boolean }
  | {
    op: "ack";
    mailbox: string;
    ids: readonly string[];
    /**
     * Acked ids whose queued put was withdrawn before it reached the writer: each counts as
     * acked; a copy stored by an earlier put of the same id (a resend) is deleted all the same.
     */
    unstored?: readonly string[];
  }
  | { op: "register"; mailbox: string; kind: MailboxKind; now: number }
  | { op: "sweep"; now: number }
  | { op: "restore" };

/**
 * The outcome of one op: a put's verdict, a count (ack), what a sweep removed, a put refused
 * because the mailbox is not registered (`unknown`), at a limit (`full`), or because the disk is
 * full (`refused`, the reason).
 */
export type WriteResult =
  | "stored"
  | "duplicate"
  | number
  | Swept
  | { unknown: true }
  | { full: string }
  | { refused: string };

/** The message SQLite gives for SQLITE_FULL (no space for the file to grow). */
const DISK_FULL = /database or disk is full/;

/** Why puts are refused after a disk-full failure (the sender gets `unavailable`). */
export const DISK_FULL_REFUSAL =
  "disk full: new messages are refused until space is freed; acks still drain mailboxes";

/** Most ids deleted per transaction while the disk is full. */
const FULL_DISK_ACK_CHUNK = 32;

/** Files next to the database that hold its content. */
const SIDE_FILES = ["-wal", "-shm", "-journal", "-reserve"];

/**
 * Creates `path` with mode 0600 unless it exists, and sets an existing database and its side
 * files to 0600: they hold every waiting envelope.
 */
function ownFiles(path: string): void {
  closeSync(openSync(path, "a", 0o600));
  for (const f of [path, ...SIDE_FILES.map((s) => path + s)]) {
    try {
      if ((statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
    } catch { /* absent */ }
  }
}

/**
 * Opens the database with the settings every connection shares, creating the layout or
 * migrating an older one. Throws when the file cannot be opened or is not a mailbox database.
 * A file written by a protocol-v1 relay (layout 1 or 2) loses its envelopes, which no v2 client
 * can read: `onV1Dropped` gets their count, once, from whichever connection migrates it.
 *
 * `secure_delete`: a deleted envelope's bytes are overwritten with zeros in its page (and freed
 * pages are zeroed), so an acked envelope does not linger in the file's free space; what remains
 * until the next checkpoint is in the WAL, which each sweep truncates (docs/ARCHITECTURE.md).
 */
export function openDatabase(
  path: string,
  onV1Dropped?: (count: number) => void,
): DatabaseSync {
  ownFiles(path);
  const db = new DatabaseSync(path);
  try {
    db.exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; " +
        "PRAGMA secure_delete = ON;",
    );
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
      const { n } = db.prepare("SELECT count(*) AS n FROM envelopes").get() as { n: number };
      try {
        db.exec(MIGRATE_V1);
      } catch (err) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw err;
      }
      // The dropped pages were zeroed (secure_delete) in the WAL; move them over the old ones.
      db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      onV1Dropped?.(n);
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

/** How a writer is set up. */
export interface WriterOptions {
  limits: MailboxLimits;
  /** Bytes kept in `<db>-reserve` so acks can run on a full disk; 0 = no reserve. */
  reserveBytes: number;
}

/** What the writer knows of one mailbox (a cache of what the file says). */
interface Box extends Totals {
  /** The last seq handed out in this mailbox. */
  seq: number;
  /** Its registered kind, or undefined while nobody registered it. */
  kind: MailboxKind | undefined;
}

/** Applies write batches to one SQLite file. */
export class SqliteWriter {
  #db: DatabaseSync;
  #path: string;
  #limits: MailboxLimits;
  #reserveBytes: number;
  /** Why puts are refused (the disk filled up), until the reserve is back. */
  #refusing: string | undefined;
  #sync: "FULL" | "NORMAL" = "FULL";
  /** Per-mailbox totals, last seq and kind, loaded on first use. */
  #boxes = new Map<string, Box>();
  #all: Totals;
  #stmt: {
    load: StatementSync;
    exists: StatementSync;
    insert: StatementSync;
    ack: StatementSync;
    register: StatementSync;
    sweep: StatementSync;
    forget: StatementSync;
  };

  constructor(path: string, options: WriterOptions) {
    this.#path = path;
    this.#limits = options.limits;
    this.#reserveBytes = options.reserveBytes;
    this.#db = openDatabase(path);
    this.#stmt = {
      load: this.#db.prepare(
        "SELECT count(*) AS count, coalesce(sum(bytes), 0) AS bytes, coalesce(max(seq), 0) AS seq, " +
          "(SELECT kind FROM mailboxes WHERE id = ?1) AS kind FROM envelopes WHERE mailbox = ?1",
      ),
      exists: this.#db.prepare("SELECT 1 FROM envelopes WHERE mailbox = ? AND id = ?"),
      insert: this.#db.prepare(
        "INSERT INTO envelopes (mailbox, seq, id, raw, bytes, received_at) " +
          "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox, id) DO NOTHING",
      ),
      ack: this.#db.prepare("DELETE FROM envelopes WHERE mailbox = ? AND id = ? RETURNING bytes"),
      register: this.#db.prepare(
        "INSERT INTO mailboxes (id, kind, opened_day) VALUES (?, ?, ?) ON CONFLICT (id) " +
          "DO UPDATE SET opened_day = excluded.opened_day WHERE excluded.opened_day > opened_day",
      ),
      sweep: this.#db.prepare(
        "DELETE FROM envelopes WHERE received_at < ? RETURNING mailbox, bytes",
      ),
      forget: this.#db.prepare("DELETE FROM mailboxes WHERE opened_day < ? RETURNING id"),
    };
    this.#all = this.#scanAll(); // once per start
    // A disk already too full for the reserve is treated like one that filled up while running.
    if (!this.#fillReserve()) this.#refusing = DISK_FULL_REFUSAL;
  }

  /** Why puts are refused right now (the disk is full), or undefined when they are not. */
  get refusing(): string | undefined {
    return this.#refusing;
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

  #load(mailbox: string): Box {
    let b = this.#boxes.get(mailbox);
    if (!b) {
      const r = this.#stmt.load.get(mailbox) as {
        count: number;
        bytes: number;
        seq: number;
        kind: MailboxKind | null;
      };
      b = { count: r.count, bytes: r.bytes, seq: Number(r.seq), kind: r.kind ?? undefined };
      if (this.#boxes.size >= 100_000) this.#boxes.clear(); // a cache: reloaded when needed
      this.#boxes.set(mailbox, b);
    }
    return b;
  }

  /**
   * Follows a write in the totals. A mailbox not in the cache is left out: loaded later, it is
   * read from the file with this write already in it.
   */
  #add(mailbox: string, count: number, bytes: number): void {
    const b = this.#boxes.get(mailbox);
    if (b) {
      b.count += count;
      b.bytes += bytes;
    }
    this.#all.count += count;
    this.#all.bytes += bytes;
  }

  /**
   * Applies `ops` in order in one transaction and returns one result per op. Throws (after
   * rolling back) when the database fails: then nothing of the batch was written. A disk that
   * fills up is not a failure of the batch: its puts are refused and its deletions still run
   * ({@linkcode #applyWhileFull}); a sweep ends with a WAL truncation.
   *
   * Puts must be on disk before they are acknowledged (synchronous=FULL: the commit fsyncs the
   * WAL). Acks and sweeps need no fsync of their own: if the relay dies before a deletion is
   * durable, the envelope is delivered again and the client drops the id it already has. So a
   * batch without puts commits with synchronous=NORMAL, and becomes durable with the next put's
   * fsync.
   */
  apply(ops: readonly WriteOp[]): WriteResult[] {
    if (this.#refusing) return this.#applyWhileFull(ops);
    let results: WriteResult[];
    try {
      results = this.#transaction(ops);
    } catch (err) {
      if (!DISK_FULL.test(errorMessage(err))) throw err;
      // Out of space: stop taking puts and give the reserve back to the disk, so the acks and
      // sweeps of this batch can delete in the space it held.
      this.#refusing = DISK_FULL_REFUSAL;
      this.#releaseReserve();
      return this.#applyWhileFull(ops);
    }
    if (ops.some((o) => o.op === "sweep")) this.#truncateWal();
    return results;
  }

  /**
   * A batch while the disk is full: puts are refused without touching the file; deletions run
   * in transactions of at most {@linkcode FULL_DISK_ACK_CHUNK} ids, each followed by a WAL
   * truncation, so the WAL never needs more than a few pages' room (secure_delete writes every
   * page a deletion frees; 1,000 large envelopes in one transaction would need tens of MiB).
   * Then tries to leave the state ({@linkcode #recover}).
   */
  #applyWhileFull(ops: readonly WriteOp[]): WriteResult[] {
    const results = ops.map((o): WriteResult => {
      if (o.op === "put") return { refused: this.#refusing ?? DISK_FULL_REFUSAL };
      if (o.op === "restore") return 0;
      if (o.op === "sweep") {
        const n = this.#transaction([o])[0];
        this.#truncateWal();
        return n;
      }
      if (o.op === "register") {
        // A few bytes, often no room: then the mailbox stays unregistered (sends to it are
        // refused while the disk is full anyway) until an open after the space is back.
        try {
          return this.#transaction([o])[0];
        } catch (err) {
          if (DISK_FULL.test(errorMessage(err))) return 0;
          throw err;
        }
      }
      let n = 0;
      const ids = [...o.ids], unstored = [...(o.unstored ?? [])];
      while (ids.length + unstored.length > 0) {
        const chunk = ids.splice(0, FULL_DISK_ACK_CHUNK);
        const rest = unstored.splice(0, FULL_DISK_ACK_CHUNK - chunk.length);
        const op: WriteOp = { op: "ack", mailbox: o.mailbox, ids: chunk, unstored: rest };
        n += this.#transaction([op])[0] as number;
        this.#truncateWal();
      }
      return n;
    });
    this.#recover();
    return results;
  }

  /** One transaction over `ops` (see {@linkcode apply}); throws after rolling back. */
  #transaction(ops: readonly WriteOp[]): WriteResult[] {
    const results: WriteResult[] = [];
    this.#setSync(ops.some((o) => o.op === "put") ? "FULL" : "NORMAL");
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const o of ops) results.push(this.#one(o));
      this.commit();
    } catch (err) {
      try {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      } catch { /* nothing more to undo */ }
      // The in-memory state followed the rolled-back writes: read it again from the file (which
      // also mends a seq clash with rows some other process wrote).
      this.#boxes.clear();
      this.#all = this.#scanAll();
      throw err;
    }
    return results;
  }

  /** One op inside the open transaction. */
  #one(o: WriteOp): WriteResult {
    switch (o.op) {
      case "put":
        return this.#put(o);
      case "ack": {
        let n = 0;
        for (const id of o.ids) if (this.#delete(o.mailbox, id)) n++;
        for (const id of o.unstored ?? []) this.#delete(o.mailbox, id);
        return n + (o.unstored?.length ?? 0);
      }
      case "register": {
        this.#stmt.register.run(o.mailbox, o.kind, roundDown(o.now, DAY_MS));
        const b = this.#boxes.get(o.mailbox);
        if (b) b.kind ??= o.kind;
        return 0;
      }
      case "restore":
        return 0;
      case "sweep": {
        const gone = this.#stmt.sweep.all(envelopeCutoff(o.now, this.#limits.maxAgeMs)) as Array<
          { mailbox: string; bytes: number }
        >;
        for (const g of gone) this.#add(g.mailbox, -1, -g.bytes);
        const forgotten = this.#stmt.forget.all(
          registrationCutoff(o.now, this.#limits.maxAgeMs),
        ) as Array<{ id: string }>;
        for (const f of forgotten) {
          const b = this.#boxes.get(f.id);
          if (b) b.kind = undefined;
        }
        return { envelopes: gone.length, mailboxes: forgotten.length };
      }
    }
  }

  /** Deletes one envelope; whether it was there. */
  #delete(mailbox: string, id: string): boolean {
    const gone = this.#stmt.ack.get(mailbox, id) as { bytes: number } | undefined;
    if (gone) this.#add(mailbox, -1, -gone.bytes);
    return gone !== undefined;
  }

  /** Commits the open transaction (a seam: tests make it fail as a full disk would). */
  protected commit(): void {
    this.#db.exec("COMMIT");
  }

  /** Bytes free for this database's files (a seam, like {@linkcode commit}). */
  protected freeBytes(): number {
    const fs = statfsSync(dirname(this.#path));
    return fs.bavail * fs.bsize;
  }

  /**
   * Makes sure the reserve file holds `reserveBytes` (written, so the blocks are really taken)
   * with a MiB to spare; false when the disk has no room for that.
   */
  #fillReserve(): boolean {
    const room = 1 << 20;
    if (this.#reserveBytes <= 0) return this.freeBytes() >= room;
    const file = this.#path + "-reserve";
    try {
      if (statSync(file).size >= this.#reserveBytes) return true;
    } catch { /* absent */ }
    if (this.freeBytes() < this.#reserveBytes + room) return false;
    let fd: number | undefined;
    try {
      fd = openSync(file, "w", 0o600);
      const chunk = new Uint8Array(Math.min(1 << 20, this.#reserveBytes));
      for (let left = this.#reserveBytes; left > 0; left -= chunk.length) {
        writeSync(fd, chunk, 0, Math.min(chunk.length, left));
      }
      return true;
    } catch {
      this.#releaseReserve();
      return false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** Deletes the reserve file; false when there was none to give back. */
  #releaseReserve(): boolean {
    const file = this.#path + "-reserve";
    if (!existsSync(file)) return false;
    unlinkSync(file);
    return true;
  }

  /** Hands the WAL's space back to the disk (and, with it, the page images of acked envelopes). */
  #truncateWal(): void {
    try {
      this.#db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    } catch { /* a reader holds it, or no room: the next sweep tries again */ }
  }

  /**
   * While refusing puts: accept them again once the reserve is back on the disk and there is as
   * much room again for messages, counting the pages acked envelopes left free in the file
   * (later puts reuse them before the file grows; the file itself does not shrink, as node:sqlite
   * forbids the ATTACH that VACUUM needs). Not at the first byte freed, or the disk would fill
   * up again at once.
   */
  #recover(): void {
    const pages = this.#db.prepare("PRAGMA freelist_count").get() as { freelist_count: number };
    const size = this.#db.prepare("PRAGMA page_size").get() as { page_size: number };
    const room = this.freeBytes() + pages.freelist_count * size.page_size - this.#reserveBytes;
    if (room >= Math.max(this.#reserveBytes, 1 << 20) && this.#fillReserve()) {
      this.#refusing = undefined;
    }
  }

  #setSync(mode: "FULL" | "NORMAL"): void {
    if (this.#sync === mode) return;
    this.#db.exec(`PRAGMA synchronous = ${mode}`);
    this.#sync = mode;
  }

  #put(p: Extract<WriteOp, { op: "put" }>): WriteResult {
    if (this.#refusing) return { refused: this.#refusing };
    const b = this.#load(p.mailbox);
    const kind = p.inbox ? "inbox" : b.kind;
    if (!kind) return { unknown: true };
    const bytes = utf8.encode(p.raw).length;
    const full = overCaps(this.#limits, kind, b.count, b.bytes, bytes);
    if (full) {
      // A resend of something already held is a duplicate, full or not.
      return this.#stmt.exists.get(p.mailbox, p.id) ? "duplicate" : { full };
    }
    const at = roundDown(p.now, HOUR_MS);
    const r = this.#stmt.insert.run(p.mailbox, b.seq + 1, p.id, p.raw, bytes, at);
    if (Number(r.changes) === 0) return "duplicate";
    b.seq++;
    this.#add(p.mailbox, 1, bytes);
    return "stored";
  }

  close(): void {
    this.#db.close();
  }
}

/** What the mailbox sends to the writer. */
export type WriterRequest =
  | { t: "open"; path: string; options: WriterOptions }
  | { t: "batch"; n: number; ops: string }
  | { t: "close"; n: number };

/**
 * What the writer answers: `ready` or `failed` for the open; per batch its results or an error,
 * with `totals` (over all mailboxes, for metrics) and `refusing` (why puts are refused, if they
 * are); `closed` for the close.
 */
export type WriterReply =
  | { t: "ready"; totals: Totals; refusing?: string }
  | { t: "failed"; message: string }
  | { n: number; results: string; totals: Totals; refusing?: string }
  | { n: number; error: string; refusing?: string }
  | { n: number; closed: true };

/** The side of a worker the writer talks through. */
export interface WriterPort {
  onmessage: ((e: MessageEvent<WriterRequest>) => void) | null;
  postMessage(m: WriterReply): void;
}

/**
 * Serves {@linkcode WriterRequest}s on `port` (a worker's global scope) with the writer `make`
 * builds. `ops` and `results` cross as JSON text: one string crosses the thread boundary faster
 * than the structured clone of an array of objects (profiled: the clone was the relay thread's
 * largest single cost after the move to a worker).
 */
export function serveWriter(
  port: WriterPort,
  make: (path: string, options: WriterOptions) => SqliteWriter = (path, options) =>
    new SqliteWriter(path, options),
): void {
  let writer: SqliteWriter | undefined;
  port.onmessage = (e) => {
    const m = e.data;
    if (m.t === "open") {
      try {
        writer = make(m.path, m.options);
        port.postMessage({ t: "ready", totals: writer.totals(), refusing: writer.refusing });
      } catch (err) {
        port.postMessage({ t: "failed", message: errorMessage(err) });
      }
    } else if (m.t === "batch") {
      if (!writer) return port.postMessage({ n: m.n, error: "sqlite writer is not open" });
      try {
        const results = JSON.stringify(writer.apply(JSON.parse(m.ops)));
        port.postMessage({ n: m.n, results, totals: writer.totals(), refusing: writer.refusing });
      } catch (err) {
        port.postMessage({ n: m.n, error: errorMessage(err), refusing: writer.refusing });
      }
    } else if (m.t === "close") {
      try {
        writer?.close();
      } finally {
        writer = undefined;
        port.postMessage({ n: m.n, closed: true });
      }
    }
  };
}
