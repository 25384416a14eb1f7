/**
 * The one seam between the client and the envelope format: how a payload for a peer becomes an
 * envelope, and how a delivered envelope becomes a payload from a peer. The outbox, the inbox
 * and the receipts only go through a {@linkcode Sealer}; nothing else in the client looks inside
 * an envelope. Protocol v1 ({@linkcode v1Sealer}) is a `crypto_box` between the two identity
 * keys, addressed to the peer's key; a later version (per-pair mailboxes, sealed sender, a
 * ratchet) is another implementation of the same two methods.
 *
 * @module
 */
import {
  type Envelope,
  type KeyPair,
  openEnvelope,
  type Parsed,
  type Payload,
  sealEnvelope,
} from "@chat-p2p/protocol";

/** A payload opened from an envelope, with the peer it really comes from. */
export interface Opened {
  /** The sender's base64 identity key (proved by the box, not just claimed). */
  from: string;
  /** What the sender sealed. */
  payload: Payload;
}

/** Seals payloads for peers and opens envelopes addressed to this identity. */
export interface Sealer {
  /** Seals `payload` for the peer with base64 key `to`, under `id` (new envelopes: a fresh one). */
  seal(payload: Payload, to: string, id?: string): Envelope;
  /**
   * Opens a delivered envelope. Fails (as data) when it does not open with the key it claims,
   * is not addressed to me, or holds a payload this client does not understand.
   */
  open(envelope: Envelope): Parsed<Opened>;
}

/**
 * Protocol v1: `sealEnvelope`/`openEnvelope` of @chat-p2p/protocol with my key pair; the sender
 * is the envelope's `from`, which the box proves.
 */
export function v1Sealer(me: KeyPair): Sealer {
  return {
    seal: (payload, to, id) => sealEnvelope(payload, me, to, id),
    open(envelope) {
      const opened = openEnvelope(envelope, me);
      return opened.ok
        ? { ok: true, value: { from: envelope.from, payload: opened.value } }
        : opened;
    },
  };
}
