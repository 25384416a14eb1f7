/**
 * Conversations as a person sees them: every peer with history (contacts and strangers), what
 * is unread, the last message, and each conversation in arrival order.
 *
 * **Order.** {@linkcode chronological} keeps messages in the order this profile stored them:
 * an incoming message when it arrived, an outgoing one when it was written. It never sorts by
 * `sent_at`: that is the sender's claim, and a contact could backdate a message to bury it among
 * old ones, or date it in the future to keep it last. {@linkcode conversations} puts the
 * conversation whose last message was stored most recently (its `at`, this device's clock) first.
 * `sent_at` is still shown as the time the sender gives.
 *
 * **Read.** An incoming message counts as read once it was shown to the person: printed by
 * `chat` (its recent history on opening, or live), `history`, `sync` or `listen`. Commands mark
 * what they printed with {@linkcode ReadMarks.markRead} and {@linkcode ReadMarks.save}. Each
 * conversation has a mark: every incoming message up to and including the one marked, in the
 * order they arrived, is read; so are the messages listed in `read` (shown although an earlier
 * one was not); the rest are unread. Marks are kept in `read.json` (0600, replaced atomically,
 * so a crash never leaves a torn file):
 *
 * ```json
 * {"<peer key>": {"through": "<message id>", "count": 12, "read": ["<id>"], "at": "<ISO time>"}}
 * ```
 *
 * `count` is how many incoming messages the mark covers: it settles which of two marks is further
 * when two commands save at once (the further one wins, and their `read` lists are merged), and
 * stands in for `through` if that message is ever missing from history. `read` is absent when
 * empty.
 *
 * @module
 */
import type { HistoryEntry } from "./message_log.ts";
import { keyFingerprint, type ProfileStore } from "./profile_store.ts";

const FILE = "read.json";

function sameIds(a: string[] | undefined, b: string[] | undefined): boolean {
  return (a ?? []).join("\n") === (b ?? []).join("\n");
}

/** The ids of the incoming messages `mark`'s run covers. */
function readIds(entries: readonly HistoryEntry[], mark: ReadMark | undefined): string[] {
  const { incoming, upTo } = covered(entries, mark);
  return incoming.slice(0, upTo).map((e) => e.id);
}

/** How far a conversation is read. */
export interface ReadMark {
  /** Id of the last incoming message of the read run (arrival order), or "" for none. */
  through: string;
  /** How many incoming messages that covers. */
  count: number;
  /** Ids of incoming messages after the mark that are read too. */
  read?: string[];
  /** When it was marked. */
  at: string;
}

/** When this profile stored a history entry (ms, its own clock; 0 if unreadable). */
function storedAt(e: HistoryEntry): number {
  return Date.parse(e.at) || 0;
}

/**
 * `entries` (in the order they were stored) in the order they are shown: the order this profile
 * stored them (arrival order), never the sender-claimed `sent_at` (see the module doc).
 */
export function chronological(entries: readonly HistoryEntry[]): HistoryEntry[] {
  return [...entries];
}

function parseMark(v: unknown): ReadMark | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.through !== "string" || typeof o.at !== "string") return undefined;
  if (typeof o.count !== "number" || !Number.isInteger(o.count) || o.count < 0) return undefined;
  const read = Array.isArray(o.read) ? o.read.filter((x) => typeof x === "string") : [];
  return { through: o.through, count: o.count, at: o.at, ...(read.length ? { read } : {}) };
}

/** Incoming messages of `entries` (arrival order) and how many of them `mark` covers. */
function covered(entries: readonly HistoryEntry[], mark: ReadMark | undefined) {
  const incoming = entries.filter((e) => e.dir === "in");
  if (!mark) return { incoming, upTo: 0 };
  const at = mark.through === "" ? -1 : incoming.findIndex((e) => e.id === mark.through);
  return { incoming, upTo: at >= 0 ? at + 1 : Math.min(mark.count, incoming.length) };
}

/**
 * The mark that covers what `a` and `b` both say is read, moved past every message read in a
 * row; undefined for nothing read.
 */
function settle(
  entries: readonly HistoryEntry[],
  a: ReadMark | undefined,
  read: Iterable<string>,
  at: string,
): ReadMark | undefined {
  const { incoming, upTo: start } = covered(entries, a);
  const ids = new Set([...(a?.read ?? []), ...read]);
  let upTo = start;
  while (upTo < incoming.length && ids.has(incoming[upTo].id)) upTo++;
  const after = incoming.slice(upTo).filter((e) => ids.has(e.id)).map((e) => e.id);
  if (upTo === 0 && after.length === 0) return undefined;
  return {
    through: upTo === 0 ? "" : incoming[upTo - 1].id,
    count: upTo,
    ...(after.length ? { read: after } : {}),
    at,
  };
}

/** The read marks of one profile (read.json). */
export class ReadMarks {
  readonly #store: ProfileStore;
  #marks: Map<string, ReadMark> | undefined;
  readonly #changed = new Set<string>();

  /** The marks of `store`'s profile; read.json is read when first needed. */
  constructor(store: ProfileStore) {
    this.#store = store;
  }

  /** The mark of the conversation with `peer`, if any. */
  get(peer: string): ReadMark | undefined {
    return this.#load().get(peer);
  }

  /** The incoming messages from `peer` not read yet, in the order they arrived. */
  unread(
    peer: string,
    entries: HistoryEntry[] = this.#store.history(peer).entries(),
  ): HistoryEntry[] {
    const mark = this.get(peer);
    const { incoming, upTo } = covered(entries, mark);
    const read = new Set(mark?.read);
    return incoming.slice(upTo).filter((e) => !read.has(e.id));
  }

  /**
   * Marks the incoming messages from `peer` with these `ids` as read (default: all of them), in
   * memory until {@linkcode ReadMarks.save}. Returns true when that changed anything; what is
   * read stays read.
   */
  markRead(peer: string, ids?: Iterable<string>, now: Date = new Date()): boolean {
    const entries = this.#store.history(peer).entries();
    const before = this.get(peer);
    const all = ids ?? entries.filter((e) => e.dir === "in").map((e) => e.id);
    const mark = settle(entries, before, all, now.toISOString());
    if (!mark || (before && before.count === mark.count && sameIds(before.read, mark.read))) {
      return false;
    }
    this.#load().set(peer, mark);
    this.#changed.add(peer);
    return true;
  }

  /**
   * Writes the marks that changed, merged with what another command may have written meanwhile
   * (what either says is read stays read). Nothing to write: nothing is touched.
   */
  save(): void {
    if (this.#changed.size === 0) return;
    const onDisk = this.#read();
    for (const peer of this.#changed) {
      const mine = this.#marks!.get(peer)!;
      const theirs = parseMark(onDisk[peer]);
      const entries = this.#store.history(peer).entries();
      const [further, other] = !theirs || theirs.count <= mine.count
        ? [mine, theirs]
        : [theirs, mine];
      onDisk[peer] =
        settle(entries, further, [...(other?.read ?? []), ...readIds(entries, other)], mine.at) ??
          further;
    }
    this.#store.writeFile(FILE, JSON.stringify(onDisk, null, 2) + "\n");
    this.#changed.clear();
    this.#marks = undefined; // read again, with the others' marks
  }

  #load(): Map<string, ReadMark> {
    if (this.#marks) return this.#marks;
    const marks = new Map<string, ReadMark>();
    for (const [peer, v] of Object.entries(this.#read())) {
      const m = parseMark(v);
      if (m) marks.set(peer, m);
    }
    return this.#marks = marks;
  }

  /** read.json as an object; a file that is not one counts as empty (marks are rebuilt). */
  #read(): Record<string, unknown> {
    const text = this.#store.readFile(FILE);
    if (text === undefined) return {};
    try {
      const o = JSON.parse(text);
      if (typeof o === "object" && o !== null && !Array.isArray(o)) return o;
    } catch { /* below */ }
    return {};
  }
}

/** One conversation, as `chats` lists it. */
export interface ConversationSummary {
  /** The peer's base64 key. */
  peer: string;
  /** Contact name, or null for a stranger. */
  contact: string | null;
  /** The peer's fingerprint. */
  fingerprint: string;
  /** Incoming messages not read yet. */
  unread: number;
  /** Messages in the conversation, both ways. */
  total: number;
  /** The message stored last (arrival order, not the sender-claimed `sent_at`). */
  last: HistoryEntry;
}

/**
 * Every conversation with at least one message, contacts and strangers alike, the one whose last
 * message was stored last first.
 */
export function conversations(
  store: ProfileStore,
  marks = new ReadMarks(store),
): ConversationSummary[] {
  const names = new Map(store.loadContacts().map((c) => [c.key, c.name]));
  const out: ConversationSummary[] = [];
  for (const peer of store.peersWithHistory()) {
    const entries = store.history(peer).entries();
    if (entries.length === 0) continue;
    const sorted = chronological(entries);
    out.push({
      peer,
      contact: names.get(peer) ?? null,
      fingerprint: keyFingerprint(peer),
      unread: marks.unread(peer, entries).length,
      total: entries.length,
      last: sorted[sorted.length - 1],
    });
  }
  return out.sort((a, b) => storedAt(b.last) - storedAt(a.last) || a.peer.localeCompare(b.peer));
}
