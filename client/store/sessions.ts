/**
 * The Double Ratchet sessions with each peer, one file per peer:
 * `sessions/<peer key, base64url>.json` holding the `PeerSessions` of @chat-p2p/protocol,
 * replaced atomically (and encrypted at rest with a passphrase) on every change.
 *
 * The file is the one copy that matters: a message key is used only after the state that no
 * longer holds it is on the disk (send), and a received message's key is deleted from the file
 * only after the message is in history (receive). {@linkcode SessionStore} keeps the last state
 * it read or wrote per peer in memory, so a send does not read the file again.
 *
 * @module
 */
import { join } from "node:path";
import { fromBase64, newPeerSessions, type PeerSessions } from "@chat-p2p/protocol";
import { ClientError } from "../errors.ts";
import { keyToFileName, type ProfileStore } from "./profile_store.ts";

function nameOf(peer: string): string {
  return `sessions/${keyToFileName(peer)}.json`;
}

/** The sessions of every peer of one profile, read once and written through. */
export class SessionStore {
  readonly #store: ProfileStore;
  readonly #me: string;
  readonly #cache = new Map<string, PeerSessions>();

  /** Sessions of `store`'s profile, whose identity key is `me` (base64). */
  constructor(store: ProfileStore, me: string) {
    this.#store = store;
    this.#me = me;
  }

  /** Path of the sessions file of `peer`. */
  path(peer: string): string {
    return join(this.#store.dir, nameOf(peer));
  }

  /** The sessions with `peer` (none yet: an empty set). Read from the disk once. */
  get(peer: string): PeerSessions {
    const cached = this.#cache.get(peer);
    if (cached) return cached;
    const path = this.path(peer);
    const text = this.#store.readFile(nameOf(peer), "sessions");
    let ps: PeerSessions;
    if (text === undefined) ps = newPeerSessions(fromBase64(this.#me)!, fromBase64(peer)!);
    else {
      try {
        ps = JSON.parse(text);
      } catch {
        throw new ClientError("io", `cannot read ${path}: not valid JSON`);
      }
      if (ps?.version !== 1 || ps.me !== this.#me || ps.peer !== peer) {
        throw new ClientError(
          "io",
          `cannot use ${path}: not the sessions of this identity with this peer`,
        );
      }
    }
    this.#cache.set(peer, ps);
    return ps;
  }

  /** Durably replaces the sessions with `peer` (atomic write, fsync), then keeps them in memory. */
  put(peer: string, ps: PeerSessions): void {
    this.#store.writeFile(nameOf(peer), JSON.stringify(ps), "sessions");
    this.#cache.set(peer, ps);
  }

  /** Forgets the sessions with `peer`, on disk and in memory (a blocked stranger). */
  remove(peer: string): void {
    this.#store.removeFile(nameOf(peer));
    this.#cache.delete(peer);
  }
}
