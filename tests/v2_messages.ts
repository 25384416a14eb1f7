/**
 * Real protocol-v2 messages for relay tests, made with the protocol package alone: a contact's
 * ratchet messages wrapped for their pair mailbox, and first-contact requests for a request
 * inbox. What the relay stores of them is exactly what it stores of a real client's.
 *
 * @module
 */
import {
  type EnvelopeV2,
  type KeyPair,
  newMessageId,
  newPeerSessions,
  padPayloadV2,
  pairEnvelope,
  type PairMailbox,
  pairMailbox,
  peerEncrypt,
  requestEnvelope,
} from "@chat-p2p/protocol";
import { pairBox, type TestMailbox } from "./raw_client.ts";

/** Messages `from` wrote to `to` (an identity key), and where they go. */
export interface Written {
  envelopes: EnvelopeV2[];
  /** The message ids inside, in order (what the recipient's history keeps). */
  ids: string[];
  /** The pair mailbox from → to (epoch 0). */
  mailbox: PairMailbox;
  /** The same mailbox as the recipient opens it. */
  box: TestMailbox;
}

/**
 * `texts` as messages from `from` to `to` through their pair mailbox, on a fresh ratchet session
 * (the first flight), each padded and wrapped as a real client does.
 */
export function pairMessages(from: KeyPair, to: Uint8Array, texts: string[]): Written {
  const mailbox = pairMailbox(from, to, "send", 0);
  let sessions = newPeerSessions(from.publicKey, to);
  const envelopes: EnvelopeV2[] = [], ids: string[] = [];
  for (const text of texts) {
    const id = newMessageId();
    const payload = padPayloadV2({
      v: 2,
      kind: "message",
      id,
      text,
      sent_at: new Date().toISOString(),
    });
    const out = peerEncrypt(sessions, payload, from);
    sessions = out.state;
    envelopes.push(pairEnvelope(mailbox, out.message));
    ids.push(id);
  }
  return { envelopes, ids, mailbox, box: pairBox(mailbox.authKeyPair) };
}

/** A first-contact request from `from` to `to`'s request inbox (send it with `key` = `to`). */
export function requestMessage(from: KeyPair, to: Uint8Array, text: string): EnvelopeV2 {
  const payload = padPayloadV2({
    v: 2,
    kind: "message",
    id: newMessageId(),
    text,
    sent_at: new Date().toISOString(),
  });
  const out = peerEncrypt(newPeerSessions(from.publicKey, to), payload, from);
  return requestEnvelope(to, from.publicKey, out.message);
}
