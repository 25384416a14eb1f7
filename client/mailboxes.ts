/**
 * The mailboxes of a profile: its public request inbox, and per peer the two pair mailboxes
 * (epoch 0) of protocol v2, the one I send to (me → peer) and the one I read (peer → me).
 *
 * Deriving a pair costs an X25519 and two Ed25519 key generations, so each pair is derived once
 * (with the runtime's native Ed25519) and kept in `pairs.json` (encrypted at rest with a
 * passphrase, like the sessions: it holds the box keys and the auth seed of the mailbox I read).
 * A cold `send` then reads one small file instead.
 *
 * ```json
 * {"v":1,"pairs":{"<peer key>":{"epoch":0,
 *   "send":{"id":"<b64 mailbox id>","box":"<b64 box key>"},
 *   "receive":{"id":"<b64 mailbox id>","box":"<b64 box key>","seed":"<b64 auth seed>"}}}}
 * ```
 *
 * @module
 */
import {
  fromBase64,
  inboxId,
  type KeyPair,
  keyPairFromSeedAsync,
  type PairMailbox,
  pairMailboxAsync,
  pairSecret,
  toBase64,
} from "@chat-p2p/protocol";
import { ClientError } from "./errors.ts";
import type { ProfileStore } from "./store/profile_store.ts";

/** What is kept of one mailbox of a pair. */
interface StoredMailbox {
  id: string;
  box: string;
  /** Auth seed: only for the mailbox I read. */
  seed?: string;
}

/** What is kept of one pair. */
interface StoredPair {
  epoch: number;
  send: StoredMailbox;
  receive: StoredMailbox;
}

/** The mailbox I send to for a peer: enough to address and wrap, not to open. */
export interface SendMailbox {
  /** Base64 mailbox id. */
  idText: string;
  id: Uint8Array;
  boxKey: Uint8Array;
}

/** A mailbox a profile reads: its request inbox (inbox socket) or a pair mailbox (reader socket). */
export type ReadMailbox =
  | { kind: "inbox"; idText: string }
  | { kind: "pair"; idText: string; peer: string };

const FILE = "pairs.json";

function cannotTalkTo(peer: string, e: unknown): ClientError {
  return new ClientError(
    "unknown_contact",
    `cannot talk to key ${peer}: ${e instanceof Error ? e.message : e}`,
  );
}

/** The request inbox and pair mailboxes of one identity, derived once and cached on disk. */
export class Mailboxes {
  /** Base64 id of my request inbox. */
  readonly inbox: string;
  readonly #store: ProfileStore;
  readonly #me: KeyPair;
  #pairs: Record<string, StoredPair> | undefined;
  /** Mailbox id → peer, for the mailboxes I read. */
  #byId: Map<string, string> | undefined;
  readonly #opened = new Map<string, PairMailbox>();
  readonly #sending = new Map<string, SendMailbox>();
  #deriving: Promise<void> = Promise.resolve();

  /** The mailboxes of `me`, cached in `store`'s pairs.json. */
  constructor(store: ProfileStore, me: KeyPair) {
    this.#store = store;
    this.#me = me;
    this.inbox = toBase64(inboxId(me.publicKey));
  }

  #load(): Record<string, StoredPair> {
    if (this.#pairs) return this.#pairs;
    const text = this.#store.readFile(FILE, "pair mailboxes");
    let pairs: Record<string, StoredPair> = {};
    if (text !== undefined) {
      try {
        const o = JSON.parse(text);
        if (o?.v === 1 && typeof o.pairs === "object" && o.pairs !== null) pairs = o.pairs;
      } catch { /* rebuilt below: everything here can be derived again */ }
    }
    this.#pairs = pairs;
    this.#byId = new Map(Object.entries(pairs).map(([peer, p]) => [p.receive.id, peer]));
    return pairs;
  }

  /**
   * Derives and saves the pairs of `peers` not derived yet (one write for all of them). Throws
   * `unknown_contact` for a key that cannot be a peer (not a usable Ed25519 key).
   */
  ensure(peers: Iterable<string>): Promise<void> {
    const pairs = this.#load();
    const missing = [...new Set(peers)].filter((p) => !pairs[p]);
    if (missing.length === 0) return Promise.resolve();
    // One derivation at a time: callers that ask meanwhile wait for it, then find theirs.
    const run = this.#deriving.then(() => this.#deriveAndSave(missing));
    this.#deriving = run.catch(() => {});
    return run;
  }

  async #deriveAndSave(peers: string[]): Promise<void> {
    const pairs = this.#load();
    const missing = peers.filter((p) => !pairs[p]);
    if (missing.length === 0) return;
    for (const peer of missing) {
      pairs[peer] = await this.#derive(peer);
      this.#byId!.set(pairs[peer].receive.id, peer);
    }
    this.#store.writeFile(FILE, JSON.stringify({ v: 1, pairs }), "pair mailboxes");
  }

  async #derive(peer: string): Promise<StoredPair> {
    const key = fromBase64(peer);
    let secret: Uint8Array;
    try {
      secret = pairSecret(this.#me, key!);
    } catch (e) {
      throw cannotTalkTo(peer, e);
    }
    const [send, receive] = await Promise.all([
      pairMailboxAsync(this.#me, key!, "send", 0, secret),
      pairMailboxAsync(this.#me, key!, "receive", 0, secret),
    ]);
    return {
      epoch: 0,
      send: { id: send.idText, box: toBase64(send.boxKey) },
      receive: {
        id: receive.idText,
        box: toBase64(receive.boxKey),
        seed: toBase64(receive.authKeyPair.secretKey.subarray(0, 32)),
      },
    };
  }

  /**
   * The mailbox I send to `peer` through (derived and saved first if need be); decoded once per
   * peer, as every message to it needs it.
   */
  async sendMailbox(peer: string): Promise<SendMailbox> {
    const done = this.#sending.get(peer);
    if (done) return done;
    await this.ensure([peer]);
    const s = this.#load()[peer].send;
    const mailbox = { idText: s.id, id: fromBase64(s.id)!, boxKey: fromBase64(s.box)! };
    this.#sending.set(peer, mailbox);
    return mailbox;
  }

  /**
   * The mailbox I send to `peer` through, with its auth key pair: the sender derives it too
   * (PROTOCOL.md §3), and uses it only to register that mailbox at a relay the peer has not read
   * at yet. Derived anew each time (not kept: it is needed that rarely).
   */
  async sendMailboxWithAuth(peer: string): Promise<PairMailbox> {
    const key = fromBase64(peer);
    try {
      return await pairMailboxAsync(this.#me, key!, "send", 0);
    } catch (e) {
      throw cannotTalkTo(peer, e);
    }
  }

  /**
   * The mailbox `peer` writes to me through, with its auth key pair (to open it at a relay and
   * to open its bodies). Derived and saved first if need be.
   */
  async readMailbox(peer: string): Promise<PairMailbox> {
    const done = this.#opened.get(peer);
    if (done) return done;
    await this.ensure([peer]);
    const r = this.#load()[peer].receive;
    const mailbox: PairMailbox = {
      direction: "receive",
      epoch: 0,
      authKeyPair: await keyPairFromSeedAsync(fromBase64(r.seed!)!),
      boxKey: fromBase64(r.box)!,
      id: fromBase64(r.id)!,
      idText: r.id,
    };
    this.#opened.set(peer, mailbox);
    return mailbox;
  }

  /** Base64 id of the mailbox `peer` writes to me through (its pair is derived already). */
  readIdOf(peer: string): string {
    const pair = this.#load()[peer];
    if (!pair) throw new Error(`the pair with ${peer} is not derived yet`);
    return pair.receive.id;
  }

  /** The mailbox I read with this id: `peer` for a pair, `inbox` for my request inbox. */
  lookup(idText: string): ReadMailbox | undefined {
    if (idText === this.inbox) return { kind: "inbox", idText };
    const peer = this.#byIdMap().get(idText);
    return peer === undefined ? undefined : { kind: "pair", idText, peer };
  }

  /** The opened pair mailbox of `peer` ({@linkcode Mailboxes.readMailbox} was awaited before). */
  opened(peer: string): PairMailbox | undefined {
    return this.#opened.get(peer);
  }

  #byIdMap(): Map<string, string> {
    this.#load();
    return this.#byId!;
  }
}
