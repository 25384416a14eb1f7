/**
 * SQLite `Mailbox` (node:sqlite, WAL, synchronous=FULL): the embedded relay's durable store.
 *
 * Writes go to a Worker that owns the write connection (`writer_worker.ts`), so a commit's
 * fsync waits there while the relay's event loop goes on routing. At most one batch is in the
 * writer at a time, one transaction and one fsync (group commit), and a batch begins no sooner
 * than {@linkcode GROUP_COMMIT_MS} after the last one began, with whatever came meanwhile; a write
 * after a quiet spell goes at once. Each put still resolves only after its transaction is durable,
 * unless an ack withdrew it first ({@linkcode SqliteMailbox.ack}): then at once. Reads (`pending`,
 * `depth`) use a second connection on this thread; WAL lets them run beside the writer, and each
 * first waits for the writes queued before it (sent at once, not after the spacing). The writer
 * keeps per-mailbox totals in memory, so limit checks never scan a mailbox, and sends the totals
 * over all mailboxes with each reply (`totals`, for /metrics).
 *
 * @module
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { mkdirSync, statSync } from "node:fs";
import { clearImmediate, setImmediate } from "node:timers";
import { Batcher, deadline } from "@chat-p2p/protocol/async";
import { dirname } from "node:path";
import {
  DAY_MS,
  DEFAULT_MAILBOX_LIMITS,
  envelopeCutoff,
  type Mailbox,
  type MailboxKind,
  type MailboxLimits,
  type PutOptions,
  roundDown,
  type StoredEnvelope,
  type Swept,
} from "../../ports/mailbox.ts";
import {
  type BackendStatus,
  BackendUnavailableError,
  errorMessage,
  MailboxFullError,
  UnknownMailboxError,
} from "../../ports/errors.ts";
import type { AdapterLogger } from "../../infra/log.ts";
import {
  openDatabase,
  type Totals,
  type WriteOp,
  type WriteResult,
  type WriterReply,
  type WriterRequest,
} from "./writer.ts";

/** Options for {@linkcode SqliteMailbox}. */
export interface SqliteMailboxOptions {
  /**
   * Bytes kept free in `<db>-reserve` so that acks still run when the disk fills up (default 0:
   * none; the relay passes `RELAY_DISK_RESERVE_BYTES`).
   */
  reserveBytes?: number;
  /** Where a full disk and its end are reported (default: nowhere). */
  logger?: AdapterLogger;
  /** The writer's module; tests swap it for one that fails. */
  writer?: URL;
  /**
   * How long after a batch began the next one may begin (default {@linkcode GROUP_COMMIT_MS}; 0:
   * the next event-loop turn, and writes queued while a batch runs go as soon as it ends).
   */
  groupCommitMs?: number;
}

/**
 * A put's mark that an ack withdrew it, and the ack's way to answer it (symbols: JSON, and so the
 * writer, never sees them).
 */
const WITHDRAWN = Symbol("withdrawn");
const ANSWER = Symbol("answer");
type PutOp = Extract<WriteOp, { op: "put" }> & {
  [WITHDRAWN]?: true;
  [ANSWER]?: (r: "stored") => void;
};

/** Default of `groupCommitMs`. */
export const GROUP_COMMIT_MS = 20;

/** A mailbox in one SQLite file. */
export class SqliteMailbox implements Mailbox {
  readonly kind = "sqlite";
  readonly path: string;
  /**
   * Batches handed to the writer, each one transaction (for the group-commit test), and puts
   * withdrawn by an ack before they were written.
   */
  readonly stats = { commits: 0, withdrawn: 0 };
  #db: DatabaseSync;
  #limits: MailboxLimits;
  #worker: Worker;
  #ready: Promise<void>;
  #notReady: (e: Error) => void;
  /** Why the writer is gone, once it is. */
  #dead: string | undefined;
  #calls = new Map<number, { resolve: (r: WriterReply) => void; reject: (e: Error) => void }>();
  #nextCall = 1;
  /**
   * Group commit: at most one batch in the writer, and each begins `groupCommitMs` after the last
   * one began at the soonest, with whatever was queued meanwhile. Live readers of a pair mailbox
   * the router knows do not wait for a commit (it announces the envelope while it is written),
   * only the sender's `accepted` does, so fewer, larger commits are the better trade, and a put
   * whose reader acks it before its batch begins is never written (bench/README.md, findings 7
   * and 8). A write after a quiet spell (a lone `send`) goes at once.
   */
  #writes: Batcher<WriteOp, WriteResult>;
  /** When the last batch went to the writer (performance.now()). */
  #lastBatch = -Infinity;
  /** The write queued last (reads wait for it). */
  #lastWrite: Promise<unknown> | undefined;
  /**
   * Puts queued and not yet handed to the writer, by mailbox and envelope id: an ack that finds
   * its envelope here withdraws the put (see {@linkcode ack}). An id queued twice is listed once:
   * the second copy is written, and deleted by the ack if that comes in a later batch or after it
   * in the same one, else delivered again at the next open, as a resend can always be. Nested
   * maps, so no key is built per message.
   */
  #queuedPuts = new Map<string, Map<string, PutOp>>();
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Over all mailboxes, as of the writer's last reply. */
  #totals: Totals = { count: 0, bytes: 0 };
  /** Why the writer refuses puts (a full disk), as of its last reply. */
  #refusing: string | undefined;
  #restoring: Promise<unknown> | undefined;
  #log?: AdapterLogger;
  #stmt: {
    depth: StatementSync;
    pending: StatementSync;
    opened: StatementSync;
    ping: StatementSync;
  };

  /**
   * Opens (creating if needed) the database at `path`: the schema and the read connection here,
   * synchronously, so a file that cannot be opened fails now; the writer opens its own.
   */
  constructor(
    path: string,
    limits: MailboxLimits = DEFAULT_MAILBOX_LIMITS,
    options: SqliteMailboxOptions = {},
  ) {
    this.path = path;
    this.#limits = limits;
    this.#log = options.logger;
    const wait = options.groupCommitMs ?? GROUP_COMMIT_MS;
    this.#writes = new Batcher((ops) => this.#commit(ops), {
      // Batcher's default (setImmediate) when there is nothing to wait for: a Deno setTimeout(0)
      // waits 1-2 ms anyway.
      schedule: wait > 0
        ? (run) => {
          const left = this.#lastBatch + wait - performance.now();
          if (left > 0) {
            const t = setTimeout(run, left);
            return () => clearTimeout(t);
          }
          const i = setImmediate(run);
          return () => clearImmediate(i);
        }
        : undefined,
      // Every batch, not only the first after a quiet spell: while a batch commits, more puts
      // queue and their readers ack them, and a put acked before its batch begins is never
      // written (ack).
      scheduleChained: wait > 0,
    });
    const dir = dirname(path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o077) {
      this.#log?.warn("data directory is open to other users", {
        dir,
        mode: mode.toString(8),
        hint: `chmod 700 ${dir}`,
      });
    }
    this.#db = openDatabase(path, (count) => {
      this.#log?.warn("protocol v1 envelopes dropped: v2 clients cannot read them", {
        kind: "sqlite",
        count,
      });
    });
    this.#stmt = {
      depth: this.#db.prepare(
        "SELECT count(*) AS count, coalesce(sum(bytes), 0) AS bytes FROM envelopes WHERE mailbox = ?",
      ),
      pending: this.#db.prepare(
        "SELECT id, raw, seq, received_at FROM envelopes WHERE mailbox = ? AND seq > ? " +
          "AND received_at >= ? ORDER BY seq LIMIT ?",
      ),
      opened: this.#db.prepare("SELECT opened_day FROM mailboxes WHERE id = ?"),
      ping: this.#db.prepare("SELECT 1"),
    };
    this.#worker = new Worker(
      options.writer ?? new URL("./writer_worker.ts", import.meta.url),
      { type: "module" },
    );
    const ready = Promise.withResolvers<void>();
    this.#ready = ready.promise;
    this.#notReady = ready.reject;
    this.#worker.onmessage = (e: MessageEvent<WriterReply>) => {
      const m = e.data;
      if ("t" in m) {
        if (m.t === "ready") {
          this.#totals = m.totals;
          this.#noteRefusing(m.refusing);
          ready.resolve();
        } else this.#die(`sqlite writer could not open ${path}: ${m.message}`);
        return;
      }
      if ("totals" in m) this.#totals = m.totals;
      if (!("closed" in m)) this.#noteRefusing(m.refusing);
      const call = this.#calls.get(m.n);
      this.#calls.delete(m.n);
      call?.resolve(m);
    };
    this.#ready.catch(() => {}); // observed by every call; not an unhandled rejection here
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#die(`sqlite writer failed: ${e.message}`);
    };
    this.#post({
      t: "open",
      path,
      options: { limits, reserveBytes: options.reserveBytes ?? 0 },
    });
  }

  /** Follows the writer's disk-full state, reporting each change once. */
  #noteRefusing(refusing: string | undefined): void {
    if (refusing === this.#refusing) return;
    if (refusing) {
      this.#log?.warn("disk full: refusing new messages; acks still drain mailboxes", {
        kind: "sqlite",
        path: this.path,
      });
    } else this.#log?.warn("disk space back: accepting new messages", { kind: "sqlite" });
    this.#refusing = refusing;
  }

  #post(m: WriterRequest): void {
    this.#worker.postMessage(m);
  }

  /** Marks the writer gone and fails every call waiting on it (or on its start). */
  #die(why: string): BackendUnavailableError {
    this.#dead ??= why;
    const e = new BackendUnavailableError(this.#dead);
    this.#notReady(e); // no-op once it started
    for (const c of this.#calls.values()) c.reject(e);
    this.#calls.clear();
    return e;
  }

  async #call(
    m: { t: "batch"; ops: string } | { t: "close" },
  ): Promise<WriterReply> {
    await this.#ready;
    if (this.#dead) throw new BackendUnavailableError(this.#dead);
    const n = this.#nextCall++;
    return await new Promise((resolve, reject) => {
      this.#calls.set(n, { resolve, reject });
      this.#post({ ...m, n });
    });
  }

  #enqueue(op: WriteOp): Promise<WriteResult> {
    if (this.#closed) return Promise.reject(new BackendUnavailableError("mailbox is closed"));
    const p = this.#writes.add(op);
    this.#lastWrite = p;
    return p;
  }

  /**
   * Waits until every write queued so far has committed (or failed), so a read sees them: an
   * ack sent before a reconnect is not delivered again by this relay. Batches finish in order,
   * so the last one queued is enough.
   */
  async #writesDone(): Promise<void> {
    this.#writes.flush(); // a read does not wait out the group-commit wait
    const last = this.#lastWrite;
    if (last) await last.catch(() => {});
  }

  /**
   * Sends one batch to the writer: one transaction, one result per op. Puts withdrawn by an ack
   * are left out (answered `stored`); a batch of nothing else sends nothing.
   */
  async #commit(ops: WriteOp[]): Promise<WriteResult[]> {
    this.#lastBatch = performance.now(); // spacing counts every batch, written or not
    let withdrawn = 0;
    for (const o of ops as PutOp[]) {
      if (o.op !== "put") continue;
      if (o[WITHDRAWN]) {
        withdrawn++;
        continue;
      }
      // From here on the put is the writer's: an ack no longer withdraws it, it deletes it.
      const byId = this.#queuedPuts.get(o.mailbox);
      if (byId?.get(o.id) !== o) continue;
      byId.delete(o.id);
      if (byId.size === 0) this.#queuedPuts.delete(o.mailbox);
    }
    if (withdrawn === 0) return await this.#write(ops);
    this.stats.withdrawn += withdrawn;
    const sent = ops.filter((o) => !(o as PutOp)[WITHDRAWN]);
    const results = sent.length === 0 ? [] : await this.#write(sent);
    let next = 0;
    return ops.map((o) => (o as PutOp)[WITHDRAWN] ? "stored" : results[next++]);
  }

  async #write(ops: WriteOp[]): Promise<WriteResult[]> {
    this.stats.commits++;
    let r: WriterReply;
    try {
      r = await this.#call({ t: "batch", ops: JSON.stringify(ops) });
    } catch (err) {
      throw err instanceof BackendUnavailableError
        ? err
        : new BackendUnavailableError(`sqlite write failed: ${errorMessage(err)}`);
    }
    if (!("results" in r)) {
      throw new BackendUnavailableError(
        `sqlite write failed: ${"error" in r ? r.error : "unexpected reply"}`,
      );
    }
    return JSON.parse(r.results) as WriteResult[];
  }

  /**
   * Registers, or notes today's open: a write only when the file does not already say the
   * mailbox was opened today (checked on the read connection, before anything is awaited, so a
   * put called after it is queued after it). The write does not wait out the group-commit wait:
   * the client's `opened` waits for it, and a batch without puts commits without an fsync
   * (`SqliteWriter.apply`), so there is little to share; registers that come while a batch runs
   * still go together in the next one.
   */
  async register(mailboxId: string, kind: MailboxKind, now = Date.now()): Promise<void> {
    let row: { opened_day: number } | undefined;
    try {
      row = this.#stmt.opened.get(mailboxId) as { opened_day: number } | undefined;
    } catch (err) {
      throw new BackendUnavailableError(errorMessage(err));
    }
    if (row && row.opened_day >= roundDown(now, DAY_MS)) return;
    const registered = this.#enqueue({ op: "register", mailbox: mailboxId, kind, now });
    this.#writes.flush();
    await registered;
  }

  put(
    mailboxId: string,
    envelope: { id: string; raw: string },
    options: PutOptions = {},
  ): Promise<"stored" | "duplicate"> {
    const op: PutOp = {
      op: "put",
      mailbox: mailboxId,
      id: envelope.id,
      raw: envelope.raw,
      now: options.now ?? Date.now(),
      ...(options.inbox ? { inbox: true } : {}),
    };
    const written = this.#enqueue(op);
    return new Promise((resolve, reject) => {
      if (!this.#closed) {
        let byId = this.#queuedPuts.get(mailboxId);
        if (!byId) this.#queuedPuts.set(mailboxId, byId = new Map());
        if (!byId.has(op.id)) {
          byId.set(op.id, op);
          // An ack that withdraws it answers it then, not when its batch begins (`ack`).
          op[ANSWER] = resolve;
        }
      }
      // A withdrawn put was answered by its ack already: what its batch says (even a failure,
      // which was never its own) changes nothing.
      written.then((r) => {
        if (typeof r === "object") {
          if ("unknown" in r) return reject(new UnknownMailboxError("no such mailbox"));
          if ("full" in r) return reject(new MailboxFullError(r.full));
          if ("refused" in r) return reject(new BackendUnavailableError(r.refused));
        }
        resolve(r as "stored" | "duplicate");
      }, reject);
    });
  }

  /** Waits for the writes queued before it, then reads (on this thread's connection). */
  async pending(
    mailboxId: string,
    opts: { afterSeq?: number; limit?: number; now?: number } = {},
  ): Promise<StoredEnvelope[]> {
    await this.#writesDone();
    try {
      const oldest = envelopeCutoff(opts.now ?? Date.now(), this.#limits.maxAgeMs);
      const rows = this.#stmt.pending.all(
        mailboxId,
        opts.afterSeq ?? 0,
        oldest,
        opts.limit ?? 500,
      ) as Array<{ id: string; raw: string; seq: number; received_at: number }>;
      return rows.map((r) => ({
        id: r.id,
        raw: r.raw,
        seq: Number(r.seq),
        receivedAt: r.received_at,
      }));
    } catch (err) {
      throw new BackendUnavailableError(errorMessage(err));
    }
  }

  /**
   * Deletes the acked envelopes. An envelope whose put is still queued (a live reader got it
   * while the put waited for its commit) is never written: the put is withdrawn and answered
   * `stored`, since the reader acks only what it has durably stored itself. So a message read
   * live costs the file no insert, no deletion and no bytes in the WAL.
   */
  async ack(mailboxId: string, ids: readonly string[]): Promise<number> {
    if (this.#closed) throw new BackendUnavailableError("mailbox is closed"); // withdraws nothing
    const byId = this.#queuedPuts.get(mailboxId);
    let stored: string[] | undefined;
    let unstored: string[] | undefined;
    for (let i = 0; byId && i < ids.length; i++) {
      const put = byId.get(ids[i]);
      if (put) {
        // Answered now: the reader acks only what it has stored durably. Its text is never
        // written, so it is not kept until the batch begins either.
        put[WITHDRAWN] = true;
        put[ANSWER]?.("stored");
        put[ANSWER] = undefined;
        put.raw = "";
        byId.delete(ids[i]);
        (unstored ??= []).push(ids[i]);
        stored ??= ids.slice(0, i);
      } else stored?.push(ids[i]);
    }
    if (byId?.size === 0) this.#queuedPuts.delete(mailboxId);
    const op: WriteOp = unstored
      ? { op: "ack", mailbox: mailboxId, ids: stored!, unstored }
      : { op: "ack", mailbox: mailboxId, ids: [...ids] };
    return await this.#enqueue(op) as number;
  }

  async depth(mailboxId: string): Promise<{ count: number; bytes: number }> {
    await this.#writesDone();
    try {
      const t = this.#stmt.depth.get(mailboxId) as { count: number; bytes: number };
      return { count: t.count, bytes: t.bytes };
    } catch (err) {
      throw new BackendUnavailableError(errorMessage(err));
    }
  }

  /** As of the last committed batch (kept by the writer, so a scrape scans nothing). */
  async totals(): Promise<{ count: number; bytes: number }> {
    await this.#ready.catch(() => {}); // the writer counts the file when it opens it
    await this.#writesDone();
    return { ...this.#totals };
  }

  /** Queued after the writes before it, so it sees them. */
  async sweep(now = Date.now()): Promise<Swept> {
    return await this.#enqueue({ op: "sweep", now }) as Swept;
  }

  /**
   * Down when the writer is gone, and while a full disk makes it refuse puts; then each check
   * also asks the writer to try to leave that state, so an idle relay (a load balancer sends it
   * nothing while it is not ready) notices space that came back.
   */
  check(): Promise<BackendStatus> {
    if (this.#closed) return Promise.resolve({ ok: false, detail: "closed" });
    if (this.#dead) return Promise.resolve({ ok: false, detail: this.#dead });
    if (this.#refusing) {
      this.#restoring ??= this.#enqueue({ op: "restore" }).catch(() => {}).finally(() =>
        this.#restoring = undefined
      );
      return Promise.resolve({ ok: false, detail: this.#refusing });
    }
    try {
      this.#stmt.ping.get();
      return Promise.resolve({ ok: true, detail: this.path });
    } catch (err) {
      return Promise.resolve({ ok: false, detail: errorMessage(err) });
    }
  }

  /** Refuses new writes, lets the queued ones commit, then closes the writer and the reader. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#writes.flush(); // shutdown does not wait out the group-commit wait
      await this.#writes.idle();
      // A writer that does not answer within 10 s is terminated anyway: SQLite's WAL makes an
      // unfinished close safe, and shutdown must not hang on it.
      try {
        if (!this.#dead) await deadline(this.#call({ t: "close" }), 10_000);
      } catch { /* gone already, or hung: nothing more to close there */ }
      this.#die("mailbox is closed");
      this.#worker.terminate();
      this.#db.close();
    })();
    return this.#closing;
  }
}
