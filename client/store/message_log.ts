/**
 * The append-only history of one conversation: a JSONL file, one record per line.
 *
 * - Records are only ever appended: each append is a single `write` of whole lines on a file
 *   opened with `O_APPEND`, followed by `fsync`. Earlier bytes are never rewritten.
 *   {@linkcode MessageLog.appendBatch} writes many records with one `write` and one `fsync`
 *   (receiving a backlog), {@linkcode MessageLog.appendMessage} and
 *   {@linkcode MessageLog.appendState} one record each.
 * - A torn last line (a crash in the middle of a write) is skipped on read; the next append first
 *   writes the missing `"\n"` so the new record starts on a line of its own.
 * - Message ids are read once when the log is opened, so a message delivered twice is stored
 *   once and appends stay O(1).
 * - Reading folds `state` records into the messages they are about. States only move forward
 *   (sending → failed → accepted → delivered), with one exception: a `sending` state record puts
 *   a failed message back in the queue (`chat-p2p resend`).
 *
 * @module
 */
import { ClientError } from "../errors.ts";

/** Direction of a message relative to the profile owner. */
export type Direction = "in" | "out";

/** Delivery states recorded for outgoing messages. */
export type DeliveryState = "accepted" | "delivered" | "failed";

/** A message record. */
export interface MessageRecord {
  t: "msg";
  /** Envelope id, unique per message. */
  id: string;
  /** "out" for messages I sent, "in" for messages I received. */
  dir: Direction;
  /** The plaintext. */
  text: string;
  /** ISO time the sender composed the message (sender's clock). */
  sent_at: string;
  /** ISO time this record was written (local clock). */
  at: string;
}

/**
 * A state a record can set: a delivery state, or `sending` to queue a failed message again.
 */
export type RecordedState = DeliveryState | "sending";

/** A delivery-state record about a message already in the log. */
export interface StateRecord {
  t: "state";
  id: string;
  state: RecordedState;
  at: string;
}

/** Any line of a history file. */
export type LogRecord = MessageRecord | StateRecord;

/**
 * State of a message after folding: incoming messages are "received"; outgoing ones start as
 * "sending" (written, no answer from the relay yet) and move to "accepted", "delivered" or "failed".
 */
export type FoldedState = "received" | "sending" | DeliveryState;

/** A message with its state folded in, as shown by `history`. */
export interface HistoryEntry {
  id: string;
  dir: Direction;
  text: string;
  sent_at: string;
  at: string;
  state: FoldedState;
}

const RANK: Record<FoldedState, number> = {
  received: 0,
  sending: 0,
  failed: 1,
  accepted: 2,
  delivered: 3,
};

function isString(x: unknown): x is string {
  return typeof x === "string";
}

/** Validates one parsed JSON line; returns `undefined` for anything that is not a record. */
export function parseRecord(line: string): LogRecord | undefined {
  let o: unknown;
  try {
    o = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) return undefined;
  const r = o as Record<string, unknown>;
  if (!isString(r.id) || r.id.length === 0 || !isString(r.at)) return undefined;
  if (r.t === "msg") {
    if ((r.dir !== "in" && r.dir !== "out") || !isString(r.text) || !isString(r.sent_at)) {
      return undefined;
    }
    return { t: "msg", id: r.id, dir: r.dir, text: r.text, sent_at: r.sent_at, at: r.at };
  }
  if (r.t === "state") {
    if (
      r.state !== "accepted" && r.state !== "delivered" && r.state !== "failed" &&
      r.state !== "sending"
    ) {
      return undefined;
    }
    return { t: "state", id: r.id, state: r.state, at: r.at };
  }
  return undefined;
}

/**
 * True when recording `state` changes a message in state `current`: forward only (delivered >
 * accepted > failed > sending), except that `sending` re-queues a failed message.
 */
function moves(current: FoldedState, state: RecordedState): boolean {
  return state === "sending" ? current === "failed" : RANK[state] > RANK[current];
}

/**
 * Folds records into messages, in the order they were first written. A repeated message id keeps
 * its first record; state records about unknown ids or incoming messages are ignored; an
 * outgoing message takes the most advanced state recorded for it
 * (delivered > accepted > failed > sending), and a `sending` record after `failed` queues it again.
 */
export function foldRecords(records: Iterable<LogRecord>): HistoryEntry[] {
  const byId = new Map<string, HistoryEntry>();
  const order: HistoryEntry[] = [];
  for (const r of records) {
    if (r.t === "msg") {
      if (byId.has(r.id)) continue;
      const e: HistoryEntry = {
        id: r.id,
        dir: r.dir,
        text: r.text,
        sent_at: r.sent_at,
        at: r.at,
        state: r.dir === "in" ? "received" : "sending",
      };
      byId.set(r.id, e);
      order.push(e);
    } else {
      const e = byId.get(r.id);
      if (!e || e.dir !== "out") continue;
      if (moves(e.state, r.state)) e.state = r.state;
    }
  }
  return order;
}

/** What {@linkcode readLog} found in a file. */
export interface LogContents {
  /** Valid records in file order. */
  records: LogRecord[];
  /** Lines that were not valid records (a torn last line included). */
  skipped: number;
  /** True when the last line had no terminating newline and was not a valid record. */
  tornTail: boolean;
}

/** Reads and validates every line of a history file; a missing file is an empty log. */
export function readLog(path: string): LogContents {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { records: [], skipped: 0, tornTail: false };
    throw ioError("read", path, e);
  }
  const lines = text.split("\n");
  const last = lines.pop() ?? ""; // "" when the file ends with "\n"
  const records: LogRecord[] = [];
  let skipped = 0;
  for (const line of lines) {
    if (line.trim() === "") continue;
    const r = parseRecord(line);
    if (r) records.push(r);
    else skipped++;
  }
  let tornTail = false;
  if (last.trim() !== "") {
    // No newline after it: either a torn write, or a complete record whose "\n" never made it.
    const r = parseRecord(last);
    if (r) records.push(r);
    else {
      skipped++;
      tornTail = true;
    }
  }
  return { records, skipped, tornTail };
}

/** The store's domain error for a failed read or write of `path`. */
export function ioError(what: "read" | "write", path: string, e: unknown): ClientError {
  const why = e instanceof Error ? e.message : String(e);
  return new ClientError("io", `cannot ${what} ${path}: ${why}`, { cause: e });
}

/** "\n" when the file's last byte is not one (a torn or unterminated line), else "". */
function separator(last: Uint8Array | undefined): string {
  return last !== undefined && last[0] !== 0x0a ? "\n" : "";
}

const APPEND_MODE = { read: true, append: true, create: true, mode: 0o600 } as const;

/** Appends `text` (whole lines) with one O_APPEND write, then fsyncs. */
function appendLines(path: string, text: string): void {
  try {
    const file = Deno.openSync(path, APPEND_MODE);
    try {
      const size = file.statSync().size;
      let last: Uint8Array | undefined;
      if (size > 0) {
        // O(1) look at the last byte: a torn or unterminated line must not swallow this record.
        last = new Uint8Array(1);
        file.seekSync(size - 1, Deno.SeekMode.Start);
        file.readSync(last);
      }
      const bytes = new TextEncoder().encode(separator(last) + text);
      let off = file.writeSync(bytes);
      // Regular files take the whole buffer in one write; loop only as a safety net.
      while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
      file.syncSync();
    } finally {
      file.close();
    }
  } catch (e) {
    throw ioError("write", path, e);
  }
}

/** {@linkcode appendLines} without blocking the event loop while the disk works. */
async function appendLinesAsync(path: string, text: string): Promise<void> {
  try {
    const file = await Deno.open(path, APPEND_MODE);
    try {
      const size = (await file.stat()).size;
      let last: Uint8Array | undefined;
      if (size > 0) {
        last = new Uint8Array(1);
        await file.seek(size - 1, Deno.SeekMode.Start);
        await file.read(last);
      }
      const bytes = new TextEncoder().encode(separator(last) + text);
      let off = 0;
      while (off < bytes.length) off += await file.write(bytes.subarray(off));
      await file.sync();
    } finally {
      file.close();
    }
  } catch (e) {
    throw ioError("write", path, e);
  }
}

/** A record to append: a message (without `t`) or a state change. */
export type NewRecord =
  | ({ t: "msg" } & Omit<MessageRecord, "t">)
  | StateRecord;

/**
 * One conversation's history file, opened once: it knows which ids it holds and their current
 * state, so repeated deliveries are dropped and states only move forward.
 */
export class MessageLog {
  /** Path of the JSONL file. */
  readonly path: string;
  readonly #entries = new Map<string, HistoryEntry>();
  readonly #order: HistoryEntry[] = [];
  /** Invalid lines found when the log was opened. */
  readonly skipped: number;

  private constructor(path: string, contents: LogContents) {
    this.path = path;
    this.skipped = contents.skipped;
    for (const e of foldRecords(contents.records)) {
      this.#entries.set(e.id, e);
      this.#order.push(e);
    }
  }

  /** Opens (reads) the log at `path`; the file is created on the first append. */
  static open(path: string): MessageLog {
    return new MessageLog(path, readLog(path));
  }

  /** True when a message with this id is already stored. */
  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** The stored message with this id, with its current state. */
  get(id: string): HistoryEntry | undefined {
    const e = this.#entries.get(id);
    return e ? { ...e } : undefined;
  }

  /** Every message, oldest first, with states folded in. */
  entries(): HistoryEntry[] {
    return this.#order.map((e) => ({ ...e }));
  }

  /**
   * Durably appends a message unless its id is already stored. Returns true when it was written,
   * false for a duplicate.
   */
  appendMessage(msg: Omit<MessageRecord, "t">): boolean {
    const [written] = this.#write([{ t: "msg", ...msg }], (text) => appendLines(this.path, text));
    return written;
  }

  /**
   * Durably records a delivery state for an outgoing message, if that moves it forward (or,
   * for `sending`, puts a failed message back in the queue). Returns true when a record was
   * written (ids that are unknown, incoming, or already in that state or a later one write
   * nothing).
   */
  appendState(id: string, state: RecordedState, at: string): boolean {
    const [written] = this.#write(
      [{ t: "state", id, state, at }],
      (text) => appendLines(this.path, text),
    );
    return written;
  }

  /**
   * Appends many records with one write and one fsync; resolves once they are durable, with one
   * flag per record: true when it was written, false when it changed nothing (a duplicate
   * message, a state that does not move its message). The log shows the records at once; if the
   * write fails they are taken back out, and the promise rejects.
   */
  async appendBatch(records: NewRecord[]): Promise<boolean[]> {
    let undo: () => void = () => {};
    let pending: Promise<void> = Promise.resolve();
    const written = this.#write(records, (text, rollback) => {
      undo = rollback;
      pending = appendLinesAsync(this.path, text);
    });
    try {
      await pending;
    } catch (e) {
      undo();
      throw e;
    }
    return written;
  }

  /**
   * Applies `records` to the in-memory view, hands the lines of those that change something to
   * `write` (with a function that reverts the view), and says which ones did.
   */
  #write(
    records: NewRecord[],
    write: (text: string, rollback: () => void) => void,
  ): boolean[] {
    const lines: string[] = [];
    const undo: Array<() => void> = [];
    const flags = records.map((r) => {
      if (r.t === "msg") {
        if (this.#entries.has(r.id)) return false;
        const rec: MessageRecord = {
          t: "msg",
          id: r.id,
          dir: r.dir,
          text: r.text,
          sent_at: r.sent_at,
          at: r.at,
        };
        const e: HistoryEntry = {
          id: rec.id,
          dir: rec.dir,
          text: rec.text,
          sent_at: rec.sent_at,
          at: rec.at,
          state: rec.dir === "in" ? "received" : "sending",
        };
        this.#entries.set(e.id, e);
        this.#order.push(e);
        undo.push(() => {
          this.#entries.delete(e.id);
          this.#order.splice(this.#order.lastIndexOf(e), 1);
        });
        lines.push(JSON.stringify(rec));
        return true;
      }
      const e = this.#entries.get(r.id);
      if (!e || e.dir !== "out" || !moves(e.state, r.state)) return false;
      const before = e.state;
      e.state = r.state;
      undo.push(() => void (e.state = before));
      lines.push(JSON.stringify({ t: "state", id: r.id, state: r.state, at: r.at }));
      return true;
    });
    if (lines.length === 0) return flags;
    const rollback = () => {
      for (const u of undo.reverse()) u();
    };
    try {
      write(lines.join("\n") + "\n", rollback);
    } catch (e) {
      rollback();
      throw e;
    }
    return flags;
  }
}
