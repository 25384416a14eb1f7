/**
 * Delivery receipts waiting to go out, per peer. A receipt says "these message ids of yours are
 * stored here"; it never goes out right after the ack in a fixed pattern: the ids are queued,
 * ride on the next message to that peer (its `receipts` field), or are flushed as a `receipt`
 * payload after a random delay (the client's business, see client.ts). Whatever is still queued
 * when a client closes is kept in `receipts.json` (encrypted at rest with a passphrase) for the
 * next run.
 *
 * @module
 */
import { MAX_RECEIPT_IDS } from "@chat-p2p/protocol";
import type { ProfileStore } from "./store/profile_store.ts";

const FILE = "receipts.json";

/** Message ids to acknowledge to each peer, oldest first. */
export class ReceiptQueue {
  readonly #store: ProfileStore | undefined;
  /** Per peer, the ids in the order they were queued (a Set keeps each once, in order). */
  readonly #ids = new Map<string, Set<string>>();

  /** A queue, loaded from `store`'s receipts.json when given. */
  constructor(store?: ProfileStore) {
    this.#store = store;
    if (!store) return;
    const text = store.readFile(FILE, "receipts");
    if (text === undefined) return;
    try {
      const o = JSON.parse(text);
      for (const [peer, ids] of Object.entries(o?.peers ?? {})) {
        if (Array.isArray(ids)) this.add(peer, ids.filter((x) => typeof x === "string"));
      }
    } catch { /* a damaged queue only loses receipts, which are best effort */ }
  }

  /** Queues `ids` (each once) for `peer`. */
  add(peer: string, ids: string[]): void {
    if (ids.length === 0) return;
    const set = this.#ids.get(peer) ?? new Set();
    for (const id of ids) set.add(id);
    this.#ids.set(peer, set);
  }

  /** Takes up to {@linkcode MAX_RECEIPT_IDS} queued ids for `peer`, oldest first. */
  take(peer: string): string[] {
    const set = this.#ids.get(peer);
    if (!set) return [];
    const out: string[] = [];
    for (const id of set) {
      if (out.length === MAX_RECEIPT_IDS) break;
      out.push(id);
      set.delete(id);
    }
    if (set.size === 0) this.#ids.delete(peer);
    return out;
  }

  /** Puts back ids that could not be sent, ahead of the rest. */
  untake(peer: string, ids: string[]): void {
    if (ids.length === 0) return;
    this.#ids.set(peer, new Set([...ids, ...(this.#ids.get(peer) ?? [])]));
  }

  /** True when receipts are queued for `peer`. */
  has(peer: string): boolean {
    return this.#ids.has(peer);
  }

  /** Peers with queued receipts. */
  peers(): string[] {
    return [...this.#ids.keys()];
  }

  /** True when nothing is queued. */
  get isEmpty(): boolean {
    return this.#ids.size === 0;
  }

  /** Writes what is queued to receipts.json (removes it when nothing is). */
  save(): void {
    if (!this.#store) return;
    if (this.isEmpty) return this.#store.removeFile(FILE);
    const peers = Object.fromEntries([...this.#ids].map(([peer, ids]) => [peer, [...ids]]));
    this.#store.writeFile(FILE, JSON.stringify({ v: 1, peers }), "receipts");
  }
}
