/**
 * A protocol-v2 correspondent for tests, built from the client library's own parts in a profile
 * of its own: it encrypts messages and receipts on its ratchet (sessions persisted like a real
 * client's), and wraps them for a pair mailbox or a request inbox.
 * Tests use it to put exactly the envelopes they want in front of a client (or a CLI profile).
 *
 * @module
 */
import {
  type EnvelopeV2,
  generateKeyPair,
  type KeyPair,
  newId,
  newMessageId,
  type PayloadV2,
  toBase64,
} from "@chat-p2p/protocol";
import { profileSealer, type Sealer } from "../client/sealing.ts";
import { ProfileStore } from "../client/store/profile_store.ts";

/** What {@linkcode TestPeer.message} made. */
export interface Made {
  /** The envelope, ready to deliver or send. */
  envelope: EnvelopeV2;
  /** The ratchet message inside it. */
  wire: Uint8Array;
  /** The message id (for a message). */
  id: string;
}

/** A correspondent with its own identity, sessions and pair mailboxes. */
export class TestPeer implements AsyncDisposable {
  readonly kp: KeyPair;
  readonly key: string;
  readonly store: ProfileStore;
  readonly sealer: Sealer;
  readonly #home: string;

  private constructor(home: string, kp: KeyPair) {
    this.#home = home;
    this.kp = kp;
    this.key = toBase64(kp.publicKey);
    this.store = new ProfileStore({ home, profile: "peer" });
    this.store.saveIdentity(kp);
    this.sealer = profileSealer(this.store, kp);
  }

  /** A new correspondent (a fresh key pair unless `kp` is given) in a temporary directory. */
  static async create(kp: KeyPair = generateKeyPair()): Promise<TestPeer> {
    return new TestPeer(await Deno.makeTempDir({ prefix: "chat-p2p-peer-" }), kp);
  }

  /** Encrypts `payload` for `to` (advancing this peer's sessions) and wraps it. */
  async seal(to: string, payload: PayloadV2, via: "pair" | "request" = "pair"): Promise<Made> {
    const wire = this.sealer.encrypt(to, payload);
    return {
      envelope: await this.wrap(to, wire, via),
      wire,
      id: "id" in payload ? payload.id : "",
    };
  }

  /** A chat message to `to` (`id` defaults to a new message id). */
  message(
    to: string,
    text: string,
    opts: { via?: "pair" | "request"; id?: string; receipts?: string[] } = {},
  ): Promise<Made> {
    const payload: PayloadV2 = {
      v: 2,
      kind: "message",
      id: opts.id ?? newMessageId(),
      text,
      sent_at: new Date().toISOString(),
    };
    if (opts.receipts) payload.receipts = opts.receipts;
    return this.seal(to, payload, opts.via);
  }

  /** A receipt for `ids` to `to`. */
  receipt(to: string, ids: string[], via: "pair" | "request" = "pair"): Promise<Made> {
    return this.seal(to, { v: 2, kind: "receipt", ids }, via);
  }

  /** Wraps a ratchet message again (a new nonce; a new envelope id unless `id` is given). */
  async wrap(
    to: string,
    wire: Uint8Array,
    via: "pair" | "request",
    id: string = newId(),
  ): Promise<EnvelopeV2> {
    const out = via === "pair"
      ? await this.sealer.pairEnvelope(to, wire, id)
      : await this.sealer.requestEnvelope(to, wire, id);
    return out.envelope;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.#home, { recursive: true });
  }
}

/** A profile made for a test: its store, key pair and base64 key. */
export interface TestProfile {
  store: ProfileStore;
  kp: KeyPair;
  key: string;
}

/** Profiles `alice` and `bob` under `home`, each with an identity and the other as a contact. */
export function contactProfiles(home: string): { alice: TestProfile; bob: TestProfile } {
  const make = (profile: string): TestProfile => {
    const store = new ProfileStore({ home, profile });
    const kp = generateKeyPair();
    store.saveIdentity(kp);
    return { store, kp, key: toBase64(kp.publicKey) };
  };
  const alice = make("alice");
  const bob = make("bob");
  alice.store.saveContacts([{ name: "bob", key: bob.key }]);
  bob.store.saveContacts([{ name: "alice", key: alice.key }]);
  return { alice, bob };
}
