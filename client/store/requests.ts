/**
 * First-contact requests: messages from keys that are not contacts, kept apart from history until
 * the person accepts the sender (`chat-p2p accept`: they move into history) or blocks it
 * (`chat-p2p block`: they are deleted, and later requests from that key are dropped on arrival).
 *
 * ```
 * requests/<sender key, base64url>.json   {"v":1,"key":…,"messages":[{"id","text","sent_at","at"}]}
 * blocked.json                            {"v":1,"keys":[…]}
 * ```
 *
 * Both go through the at-rest layer (encrypted with a passphrase). Only messages whose ratchet
 * message opened for the key they claim are kept: a forged claim never gets here.
 *
 * @module
 */
import { ClientError } from "../errors.ts";
import {
  keyFingerprint,
  keysInDir,
  keyToFileName,
  normalizeFingerprint,
  type ProfileStore,
} from "./profile_store.ts";

const BLOCKED = "blocked.json";

/** A message of a request, as it will go into history when accepted. */
export interface RequestMessage {
  /** Message id. */
  id: string;
  text: string;
  /** Sender's clock. */
  sent_at: string;
  /** Local time it was stored. */
  at: string;
  /** Envelope id it came in. */
  env?: string;
}

/** Everything a stranger sent, oldest first. */
export interface Request {
  /** The sender's base64 identity key. */
  key: string;
  messages: RequestMessage[];
}

/** The requests and the block list of one profile. */
export class RequestStore {
  readonly #store: ProfileStore;
  #blocked: Set<string> | undefined;

  /** The requests of `store`'s profile. */
  constructor(store: ProfileStore) {
    this.#store = store;
  }

  #name(key: string): string {
    return `requests/${keyToFileName(key)}.json`;
  }

  /** The request from `key`, or undefined. */
  get(key: string): Request | undefined {
    const text = this.#store.readFile(this.#name(key), "requests");
    if (text === undefined) return undefined;
    try {
      const o = JSON.parse(text);
      if (o?.v === 1 && o.key === key && Array.isArray(o.messages)) {
        return { key, messages: o.messages };
      }
    } catch { /* reported below */ }
    throw new ClientError("io", `cannot read ${this.#name(key)}: not a request file`);
  }

  /**
   * The pending request whose sender is `text`: a base64 key, or its fingerprint as `requests`
   * shows it (spaces and colons ignored, any case).
   */
  find(text: string): Request | undefined {
    const fp = normalizeFingerprint(text);
    const key = keysInDir(this.#store.requestsDir, ".json").find((k) =>
      k === text || normalizeFingerprint(keyFingerprint(k)) === fp
    );
    return key === undefined ? undefined : this.get(key);
  }

  /** Every pending request, by sender key. */
  list(): Request[] {
    return keysInDir(this.#store.requestsDir, ".json").map((k) => this.get(k)!).filter(Boolean);
  }

  /**
   * Adds messages to the request from `key` (ids it holds already are skipped); one atomic write.
   * Returns one flag per message: true when it was added.
   */
  add(key: string, messages: RequestMessage[]): boolean[] {
    const req = this.get(key) ?? { key, messages: [] };
    const have = new Set(req.messages.map((m) => m.id));
    const flags = messages.map((m) => {
      if (have.has(m.id)) return false;
      have.add(m.id);
      req.messages.push(m);
      return true;
    });
    if (flags.some(Boolean)) this.#write(req);
    return flags;
  }

  #write(req: Request): void {
    const text = JSON.stringify({ v: 1, key: req.key, messages: req.messages });
    this.#store.writeFile(this.#name(req.key), text, "requests");
  }

  /** Deletes the request from `key` (accepted or blocked). */
  remove(key: string): void {
    this.#store.removeFile(this.#name(key));
  }

  /** Keys whose requests are dropped. */
  blocked(): Set<string> {
    if (this.#blocked) return this.#blocked;
    const text = this.#store.readFile(BLOCKED, "block list");
    let keys: string[] = [];
    if (text !== undefined) {
      try {
        const o = JSON.parse(text);
        if (o?.v === 1 && Array.isArray(o.keys)) {
          keys = o.keys.filter((k: unknown) => typeof k === "string");
        }
      } catch {
        throw new ClientError("io", `cannot read ${BLOCKED}: not valid JSON`);
      }
    }
    this.#blocked = new Set(keys);
    return this.#blocked;
  }

  /** Adds `key` to the block list (and deletes its request). */
  block(key: string): void {
    const keys = this.blocked();
    if (!keys.has(key)) {
      keys.add(key);
      this.#store.writeFile(
        BLOCKED,
        JSON.stringify({ v: 1, keys: [...keys].sort() }),
        "block list",
      );
    }
    this.remove(key);
  }
}
