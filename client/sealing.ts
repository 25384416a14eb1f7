/**
 * The one seam between the client and protocol v2's cryptography: how a payload for a peer
 * becomes a ratchet message and an envelope, and how a delivered envelope becomes a payload from
 * a peer. The outbox, the inbox and the receipts only go through a {@linkcode Sealer}; nothing
 * else in the client looks inside an envelope.
 *
 * - {@linkcode Sealer.encrypt}: pad the payload, encrypt it on the peer's ratchet and write the
 *   advanced sessions to disk before returning the ratchet message. The caller stores that
 *   message (history) before it sends anything, so a retry re-wraps the same bytes and a key is
 *   never used twice.
 * - {@linkcode Sealer.pairEnvelope} / {@linkcode Sealer.requestEnvelope}: wrap a ratchet message
 *   for the peer's pair mailbox, or, when the relay does not know that mailbox
 *   (`unknown_mailbox`), as a sealed first-contact request for the peer's request inbox.
 * - {@linkcode Sealer.unwrap} and a {@linkcode Workspace}: open an envelope's outer layer, then
 *   decrypt on a copy of the sessions, so a batch of deliveries is decrypted in memory and its
 *   sessions are written only once the batch is in history ({@linkcode Workspace.commit}).
 *
 * @module
 */
import {
  decodeHeader,
  type DecryptFailure,
  encodePayloadV2,
  type EnvelopeV2,
  fromBase64,
  hmacSha256,
  type KeyPair,
  MAX_PAYLOAD_BYTES,
  openPairEnvelope,
  openRequestEnvelope,
  paddedSize,
  padPayloadV2,
  pairBody,
  type PayloadV2,
  peerDecrypt,
  peerEncrypt,
  type PeerSessions,
  REQUEST_BODY_OVERHEAD,
  requestEnvelope,
  restartSessions,
  toBase64,
  toHex,
  unpadPayloadV2,
} from "@chat-p2p/protocol";
import { crashPoint } from "./_crash.ts";
import { ClientError, RelayError } from "./errors.ts";
import { Mailboxes } from "./mailboxes.ts";
import type { ProfileStore } from "./store/profile_store.ts";
import { SessionStore } from "./store/sessions.ts";

/** An envelope ready to send, with the `key` a request-inbox send carries. */
export interface Outgoing {
  envelope: EnvelopeV2;
  /** The recipient's identity key, for a request envelope only. */
  key?: string;
}

/** What the outer layer of a delivered envelope gave. */
export type Unwrapped =
  | { ok: true; via: "pair" | "request"; peer: string; message: Uint8Array }
  | {
    ok: false;
    /** `outer`: the outer layer did not open; `not_mine`: not a mailbox this client reads. */
    why: "outer" | "not_mine";
    /** The contact whose pair mailbox it came through, when it did. */
    peer?: string;
    message: string;
  };

/** A payload opened from a peer, or why not (`reason` as the ratchet says, or `payload`). */
export type Decrypted =
  | { ok: true; payload: PayloadV2 }
  | { ok: false; reason: DecryptFailure | "payload"; message: string };

/**
 * The size of the largest send frame `payload` can become: a request envelope (the bigger body)
 * of its padding bucket, with an envelope id of 64 characters and the `key` field; `undefined`
 * when the payload fits no bucket.
 */
export function sendFrameBytes(payload: PayloadV2): number | undefined {
  const padded = paddedSize(encodePayloadV2(payload).length);
  if (padded === undefined) return undefined;
  return SEND_FRAME_OVERHEAD + Math.ceil((padded + REQUEST_BODY_OVERHEAD) / 3) * 4;
}

/**
 * The characters of a request's send frame around its base64 body (which needs no escaping):
 * measured once, so sizing a message does not build a frame-sized string.
 */
const SEND_FRAME_OVERHEAD = (() => {
  const x = (n: number) => "x".repeat(n);
  const envelope = { v: 2, id: x(64), to: x(44), body: "" };
  return JSON.stringify({ v: 2, type: "send", envelope, key: x(44) }).length;
})();

/**
 * Throws when `payload` cannot be sent: `message_too_large` when it fits no padding bucket
 * (more than {@linkcode MAX_PAYLOAD_BYTES} bytes of JSON), `frame_too_large` when its frame would
 * be larger than `maxFrameBytes` (a relay with a smaller frame limit).
 */
export function checkPayload(payload: PayloadV2, maxFrameBytes: number): void {
  const frame = sendFrameBytes(payload);
  if (frame === undefined) {
    const size = encodePayloadV2(payload).length;
    throw new ClientError(
      "message_too_large",
      `the message takes ${size} bytes encoded; at most ${MAX_PAYLOAD_BYTES} fit in one message`,
    );
  }
  if (frame > maxFrameBytes) {
    throw new RelayError(
      "frame_too_large",
      `message too large: ${frame} bytes on the wire, the relay accepts at most ${maxFrameBytes}`,
    );
  }
}

/**
 * The sealer of a profile: `identity`'s sessions (sessions/) and mailboxes (pairs.json) in
 * `store`, which must be unlocked (`store.loadIdentity`).
 */
export function profileSealer(store: ProfileStore, identity: KeyPair): Sealer {
  return new Sealer(
    identity,
    new SessionStore(store, toBase64(identity.publicKey)),
    new Mailboxes(store, identity),
  );
}

/** Seals for and opens from the peers of one identity. */
export class Sealer {
  /** My base64 identity key. */
  readonly me: string;
  readonly #identity: KeyPair;
  readonly #sessions: SessionStore;
  readonly #mailboxes: Mailboxes;

  /** A sealer for `identity`, its sessions and its mailboxes. */
  constructor(identity: KeyPair, sessions: SessionStore, mailboxes: Mailboxes) {
    this.#identity = identity;
    this.me = toBase64(identity.publicKey);
    this.#sessions = sessions;
    this.#mailboxes = mailboxes;
  }

  /** The mailboxes this sealer wraps for and opens from. */
  get mailboxes(): Mailboxes {
    return this.#mailboxes;
  }

  /**
   * Pads `payload` and encrypts it for `peer` on the ratchet; the advanced sessions are on disk
   * when this returns. Check the payload first ({@linkcode checkPayload}): one that fits no bucket
   * throws a `RangeError`.
   */
  encrypt(peer: string, payload: PayloadV2): Uint8Array {
    const sent = peerEncrypt(this.#sessions.get(peer), padPayloadV2(payload), this.#identity);
    crashPoint("send:encrypted");
    this.#sessions.put(peer, sent.state);
    return sent.message;
  }

  /** The envelope of a ratchet message for `peer`'s pair mailbox (a fresh random nonce). */
  async pairEnvelope(peer: string, message: Uint8Array, envelopeId: string): Promise<Outgoing> {
    const box = await this.#mailboxes.sendMailbox(peer);
    const body = pairBody(box.boxKey, box.id, message);
    return { envelope: { v: 2, id: envelopeId, to: box.idText, body: toBase64(body) } };
  }

  /**
   * The same ratchet message as a first-contact request for `peer`'s request inbox. Its envelope
   * id is derived from the pair envelope's with the pair's box key: the same for every retry (the
   * relay stores it once), and not linkable to the pair envelope by the relay.
   */
  async requestEnvelope(peer: string, message: Uint8Array, envelopeId: string): Promise<Outgoing> {
    const box = await this.#mailboxes.sendMailbox(peer);
    const id = toHex(
      hmacSha256(box.boxKey, new TextEncoder().encode(`request envelope ${envelopeId}`)),
    ).slice(0, 32);
    const envelope = requestEnvelope(fromBase64(peer)!, this.#identity.publicKey, message, id);
    return { envelope, key: peer };
  }

  /** Opens the outer layer of a delivered envelope (which mailbox, which peer, the ratchet bytes). */
  unwrap(envelope: EnvelopeV2): Unwrapped {
    const mb = this.#mailboxes.lookup(envelope.to);
    if (!mb) return { ok: false, why: "not_mine", message: "not for a mailbox this client reads" };
    if (mb.kind === "pair") {
      const mailbox = this.#mailboxes.opened(mb.peer);
      const message = mailbox && openPairEnvelope(mailbox, envelope);
      if (!message) {
        return {
          ok: false,
          why: "outer",
          peer: mb.peer,
          message: "it does not open with this contact's mailbox key (not from this contact, " +
            "or damaged)",
        };
      }
      return { ok: true, via: "pair", peer: mb.peer, message };
    }
    const opened = openRequestEnvelope(this.#identity, envelope);
    if (!opened.ok) return { ok: false, why: "outer", message: opened.message };
    return { ok: true, via: "request", peer: toBase64(opened.sender), message: opened.message };
  }

  /**
   * Whether a message from `peer` has ever opened in a session with it: the peer knows me (a
   * contact, or it accepted my request), so it reads our pair mailbox.
   */
  heardFrom(peer: string): boolean {
    return this.#sessions.get(peer).rx > 0;
  }

  /** Deletes the sessions with `peer` (a blocked stranger). */
  forget(peer: string): void {
    this.#sessions.remove(peer);
  }

  /** A copy of the sessions to decrypt a batch on; nothing is written until `commit`. */
  workspace(): Workspace {
    return new Workspace(this.#identity, this.#sessions);
  }
}

/**
 * Sessions being changed by a batch of deliveries: decrypts on copies, writes them all at
 * {@linkcode Workspace.commit} (after the batch is in history).
 */
export class Workspace {
  readonly #identity: KeyPair;
  readonly #sessions: SessionStore;
  readonly #changed = new Map<string, PeerSessions>();

  /** @internal use {@linkcode Sealer.workspace} */
  constructor(identity: KeyPair, sessions: SessionStore) {
    this.#identity = identity;
    this.#sessions = sessions;
  }

  #current(peer: string): PeerSessions {
    return this.#changed.get(peer) ?? this.#sessions.get(peer);
  }

  /**
   * Decrypts a ratchet message from `peer` and parses its payload. A message the pair mailbox's
   * outer layer authenticated (`via` pair) that opens in no session makes the next message to
   * that peer start a new session (`restartSessions`, docs/PROTOCOL.md §7.5).
   */
  decrypt(peer: string, message: Uint8Array, via: "pair" | "request"): Decrypted {
    if (!decodeHeader(message)) {
      return { ok: false, reason: "malformed", message: "not a ratchet message" };
    }
    const before = this.#current(peer);
    const r = peerDecrypt(before, message, this.#identity);
    if (!r.ok) {
      if (r.reason === "auth_failed" && via === "pair") {
        const restarted = restartSessions(before);
        if (restarted !== before) this.#changed.set(peer, restarted);
      }
      return { ok: false, reason: r.reason, message: r.message };
    }
    // The key is used up whatever the payload holds: keep the new state.
    this.#changed.set(peer, r.state);
    const p = unpadPayloadV2(r.plaintext);
    if (!p.ok) return { ok: false, reason: "payload", message: `${p.code}: ${p.message}` };
    return { ok: true, payload: p.value };
  }

  /** Writes the changed sessions (each file atomically); call it once the batch is stored. */
  commit(): void {
    for (const [peer, ps] of this.#changed) this.#sessions.put(peer, ps);
    this.#changed.clear();
  }
}
