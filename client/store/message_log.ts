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
 * - An outgoing message carries the ratchet message it was encrypted to (`wire`, base64) and its
 *   envelope id (`env`): a retry re-wraps those bytes and never encrypts again. A `wire` record
 *   attaches them to a message written without them (queued by chat-p2p 1, sent through v2).
 * - Every line passes through a {@linkcode TextCodec} (store/at_rest.ts): with a passphrase the
 *   file holds one encrypted line per record.
 *
 * @module
 */
import { ClientError } from "../errors.ts";
import type { TextCodec } from "./at_rest.ts";

/** Direction of a message relative to the profile owner. */
export type Direction = "in" | "out";

/** Delivery states recorded for outgoing messages. */
export type DeliveryState = "accepted" | "delivered" | "failed";

/** A message record. */
export interface MessageRecord {
  t: "msg";
  /** Message id, unique per message (protocol 1: the envelope id). */
  id: string;
  /** "out" for messages I sent, "in" for messages I received. */
  dir: Direction;
  /** The plaintext. */
  text: string;
  /** ISO time the sender composed the message (sender's clock). */
  sent_at: string;
  /** ISO time this record was written (local clock). */
  at: string;
  /** Outgoing: the ratchet message (base64) a retry re-wraps. */
  wire?: string;
  /** The envelope id it travels (or travelled) under. */
  env?: string;
}

/** Attaches the ratchet message and envelope id to an outgoing message written without them. */
export interface WireRecord {
  t: "wire";
  id: string;
  wire: string;
  env: string;
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
export type LogRecord = MessageRecord | StateRecord | WireRecord;

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
  /** When the current state was recorded (for an outgoing message; `at` until a state record). */
  state_at?: string;
  /** Outgoing: the ratchet message to re-wrap (absent for messages of chat-p2p 1 not yet sent). */
  wire?: string;
  /** The envelope id. */
  env?: string;
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
    return messageRecord({
      ...r,
      id: r.id,
      dir: r.dir,
      text: r.text,
      sent_at: r.sent_at,
      at: r.at,
    });
  }
  if (r.t === "wire") {
    if (!isString(r.wire) || !isString(r.env)) return undefined;
    return { t: "wire", id: r.id, wire: r.wire, env: r.env, at: r.at };
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

function setState(e: HistoryEntry, state: RecordedState, at: string): void {
  e.state = state;
  e.state_at = at;
}

/** A message record with exactly its fields (`wire` and `env` only when they are strings). */
function messageRecord(
  r: Omit<MessageRecord, "t" | "wire" | "env"> & { wire?: unknown; env?: unknown },
): MessageRecord {
  const rec: MessageRecord = {
    t: "msg",
    id: r.id,
    dir: r.dir,
    text: r.text,
    sent_at: r.sent_at,
    at: r.at,
  };
  return withWire(rec, r);
}

/** `target` with the `wire` and `env` of `from`, when they are strings. */
function withWire<T extends object>(target: T, from: { wire?: unknown; env?: unknown }): T {
  const out: T & { wire?: string; env?: string } = target;
  if (isString(from.wire)) out.wire = from.wire;
  if (isString(from.env)) out.env = from.env;
  return out;
}

/**
 * True when recording `state` changes a message in state `current`: forward only (delivered >
 * accepted > failed > sending), except that `sending` re-queues a failed message.
 */
function moves(current: FoldedState, state: RecordedState): boolean {
  return state === "sending" ? current === "failed" : RANK[state] > RANK[current];
}

function entryOf(r: MessageRecord): HistoryEntry {
  return withWire({
    id: r.id,
    dir: r.dir,
    text: r.text,
    sent_at: r.sent_at,
    at: r.at,
    state: r.dir === "in" ? "received" : "sending",
  }, r);
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
      const e = entryOf(r);
      byId.set(r.id, e);
      order.push(e);
    } else {
      const e = byId.get(r.id);
      if (!e || e.dir !== "out") continue;
      if (r.t === "wire") {
        if (e.wire === undefined) withWire(e, r);
      } else if (moves(e.state, r.state)) setState(e, r.state, r.at);
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

/** The codec of a history file in clear. */
export const PLAIN: TextCodec = { encode: (t) => t, decode: (t) => t };

/**
 * Reads and validates every line of a history file (each decoded by `codec`: a line that does
 * not decode is skipped like any unreadable line); a missing file is an empty log.
 */
export function readLog(path: string, codec: TextCodec = PLAIN): LogContents {
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
  const parse = (line: string) => {
    const plain = codec.decode(line);
    return plain === undefined ? undefined : parseRecord(plain);
  };
  for (const line of lines) {
    if (line.trim() === "") continue;
    const r = parse(line);
    if (r) records.push(r);
    else skipped++;
  }
  let tornTail = false;
  if (last.trim() !== "") {
    // No newline after it: either a torn write, or a complete record whose "\n" never made it.
    const r = parse(last);
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

/** A record to append: a message (without `t`), a state change, or a late `wire`. */
export type NewRecord =
  | ({ t: "msg" } & Omit<MessageRecord, "t">)
  | StateRecord
  | WireRecord;

/**
 * One conversation's history file, opened once: it knows which ids it holds and their current
 * state, so repeated deliveries are dropped and states only move forward.
 */
export class MessageLog {
  /** Path of the JSONL file. */
  readonly path: string;
  readonly #codec: TextCodec;
  readonly #entries = new Map<string, HistoryEntry>();
  readonly #order: HistoryEntry[] = [];
  /** Envelope id → message id, for incoming messages (a copy delivered again). */
  readonly #byEnvelope = new Map<string, string>();
  /** Invalid lines found when the log was opened. */
  readonly skipped: number;

  private constructor(path: string, contents: LogContents, codec: TextCodec) {
    this.path = path;
    this.#codec = codec;
    this.skipped = contents.skipped;
    for (const e of foldRecords(contents.records)) this.#add(e);
  }

  /**
   * Opens (reads) the log at `path`, each line through `codec` (default: clear text); the file is
   * created on the first append.
   */
  static open(path: string, codec: TextCodec = PLAIN): MessageLog {
    return new MessageLog(path, readLog(path, codec), codec);
  }

  #add(e: HistoryEntry): void {
    this.#entries.set(e.id, e);
    this.#order.push(e);
    if (e.dir === "in" && e.env !== undefined) this.#byEnvelope.set(e.env, e.id);
  }

  #remove(e: HistoryEntry): void {
    this.#entries.delete(e.id);
    this.#order.splice(this.#order.lastIndexOf(e), 1);
    if (e.env !== undefined && this.#byEnvelope.get(e.env) === e.id) this.#byEnvelope.delete(e.env);
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

  /** The incoming message that arrived in envelope `env`, if any. */
  byEnvelope(env: string): HistoryEntry | undefined {
    const id = this.#byEnvelope.get(env);
    return id === undefined ? undefined : this.get(id);
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
    return this.appendBatch([{ t: "msg", ...msg }])[0];
  }

  /**
   * Durably records a delivery state for an outgoing message, if that moves it forward (or,
   * for `sending`, puts a failed message back in the queue). Returns true when a record was
   * written (ids that are unknown, incoming, or already in that state or a later one write
   * nothing).
   */
  appendState(id: string, state: RecordedState, at: string): boolean {
    return this.appendBatch([{ t: "state", id, state, at }])[0];
  }

  /**
   * Appends many records with one write and one fsync, and returns once they are durable, with
   * one flag per record: true when it was written, false when it changed nothing (a duplicate
   * message, a state that does not move its message, a `wire` for a message that has one). If
   * the write fails the records are taken back out of the view, and it throws.
   *
   * It is synchronous on purpose: the client appends received messages and then writes the
   * ratchet sessions that opened them, and nothing (a send on the same session) may run between.
   */
  appendBatch(records: NewRecord[]): boolean[] {
    const lines: string[] = [];
    const undo: Array<() => void> = [];
    const flags = records.map((r) => {
      if (r.t === "msg") {
        if (this.#entries.has(r.id)) return false;
        const rec = messageRecord(r);
        const e = entryOf(rec);
        this.#add(e);
        undo.push(() => this.#remove(e));
        lines.push(JSON.stringify(rec));
        return true;
      }
      const e = this.#entries.get(r.id);
      if (!e || e.dir !== "out") return false;
      if (r.t === "wire") {
        if (e.wire !== undefined) return false;
        withWire(e, r);
        undo.push(() => {
          delete e.wire;
          delete e.env;
        });
        lines.push(JSON.stringify({ t: "wire", id: r.id, wire: r.wire, env: r.env, at: r.at }));
        return true;
      }
      if (!moves(e.state, r.state)) return false;
      const [before, beforeAt] = [e.state, e.state_at];
      setState(e, r.state, r.at);
      undo.push(() => void (e.state = before, e.state_at = beforeAt));
      lines.push(JSON.stringify({ t: "state", id: r.id, state: r.state, at: r.at }));
      return true;
    });
    if (lines.length === 0) return flags;
    try {
      appendLines(this.path, lines.map((l) => this.#codec.encode(l)).join("\n") + "\n");
    } catch (e) {
      for (const u of undo.reverse()) u();
      throw e;
    }
    return flags;
  }
}
