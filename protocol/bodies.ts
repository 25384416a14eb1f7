/**
 * The two v2 bodies, the only bytes a relay stores besides an envelope's id and mailbox id.
 *
 * - Pair body: `nonce (24) || XChaCha20-Poly1305(mailbox_box_key, nonce, ratchet_message,
 *   ad = mailbox id)`. The outer layer hides the ratchet header (counters, ratchet keys) from the
 *   relay and binds the body to its mailbox.
 * - Request body: `crypto_box_seal(ikx_public(recipient), 0x02 || IK_sender || ratchet_message)`:
 *   first contact, or a peer whose pair mailbox is not registered yet. The sender key inside is a
 *   claim until the ratchet message opens (only the real sender can derive the session key).
 *
 * @module
 */
import { explainPublicKey, type KeyPair, randomBytes, toX25519PublicKey } from "./crypto.ts";
import { fromBase64, toBase64 } from "./encoding.ts";
import type { EnvelopeV2 } from "./frames_v2.ts";
import { newId } from "./frames.ts";
import { AEAD_NONCE_BYTES, aeadDecrypt, aeadEncrypt } from "./aead.ts";
import { concat, identityX25519, inboxId, type PairMailbox, type X25519KeyPair } from "./kdf.ts";
import { sealedBoxOpen, sealedBoxSeal } from "./sealed_box.ts";

/** First byte of a request body's sealed plaintext: its format. */
export const REQUEST_BODY_FORMAT = 0x02;

/** The pair body of a ratchet message. `nonce` is for test vectors only (default: random). */
export function pairBody(
  boxKey: Uint8Array,
  mailboxId: Uint8Array,
  ratchetMessage: Uint8Array,
  nonce: Uint8Array = randomBytes(AEAD_NONCE_BYTES),
): Uint8Array {
  return concat(nonce, aeadEncrypt(boxKey, nonce, ratchetMessage, mailboxId));
}

/** The ratchet message in a pair body, or `undefined` when it does not open for this mailbox. */
export function openPairBody(
  boxKey: Uint8Array,
  mailboxId: Uint8Array,
  body: Uint8Array,
): Uint8Array | undefined {
  if (body.length < AEAD_NONCE_BYTES) return undefined;
  return aeadDecrypt(
    boxKey,
    body.subarray(0, AEAD_NONCE_BYTES),
    body.subarray(AEAD_NONCE_BYTES),
    mailboxId,
  );
}

/**
 * The request body of a ratchet message, sealed to the recipient's identity (`recipient` and
 * `sender` are Ed25519 identity public keys). `ephemeral` is for test vectors only.
 */
export function requestBody(
  recipient: Uint8Array,
  sender: Uint8Array,
  ratchetMessage: Uint8Array,
  ephemeral?: X25519KeyPair,
): Uint8Array {
  const plain = concat(Uint8Array.of(REQUEST_BODY_FORMAT), sender, ratchetMessage);
  return sealedBoxSeal(plain, toX25519PublicKey(recipient), ephemeral);
}

/** A request body opened: the claimed sender and the ratchet message, or why it did not open. */
export type OpenedRequest =
  | { ok: true; sender: Uint8Array; message: Uint8Array }
  | { ok: false; message: string };

/** Opens a request body sealed to my identity. */
export function openRequestBody(me: KeyPair, body: Uint8Array): OpenedRequest {
  const plain = sealedBoxOpen(body, identityX25519(me));
  if (!plain) return { ok: false, message: "Cannot open request: the sealed box does not open" };
  if (plain[0] !== REQUEST_BODY_FORMAT || plain.length < 33) {
    return { ok: false, message: `Cannot open request: unknown format ${plain[0]}` };
  }
  const sender = plain.slice(1, 33);
  const why = explainPublicKey(toBase64(sender));
  if (why) return { ok: false, message: `Cannot open request: the sender key is bad (${why})` };
  return { ok: true, sender, message: plain.slice(33) };
}

/** An envelope for a pair mailbox I send to. `id` and `nonce` default to random. */
export function pairEnvelope(
  mailbox: PairMailbox,
  ratchetMessage: Uint8Array,
  id: string = newId(),
  nonce?: Uint8Array,
): EnvelopeV2 {
  const body = pairBody(mailbox.boxKey, mailbox.id, ratchetMessage, nonce);
  return { v: 2, id, to: mailbox.idText, body: toBase64(body) };
}

/** An envelope for the recipient's request inbox (send it with `key` = the recipient's key). */
export function requestEnvelope(
  recipient: Uint8Array,
  sender: Uint8Array,
  ratchetMessage: Uint8Array,
  id: string = newId(),
  ephemeral?: X25519KeyPair,
): EnvelopeV2 {
  const body = requestBody(recipient, sender, ratchetMessage, ephemeral);
  return { v: 2, id, to: toBase64(inboxId(recipient)), body: toBase64(body) };
}

/** The ratchet message of an envelope delivered from a pair mailbox I read. */
export function openPairEnvelope(
  mailbox: PairMailbox,
  envelope: EnvelopeV2,
): Uint8Array | undefined {
  const body = fromBase64(envelope.body);
  if (!body || envelope.to !== mailbox.idText) return undefined;
  return openPairBody(mailbox.boxKey, mailbox.id, body);
}

/** True when `to` is the request inbox id of the identity key `key` (both base64). */
export function isInboxOf(to: string, key: string): boolean {
  const k = fromBase64(key);
  return k !== undefined && k.length === 32 && toBase64(inboxId(k)) === to;
}

/** The claimed sender and ratchet message of an envelope delivered from my request inbox. */
export function openRequestEnvelope(me: KeyPair, envelope: EnvelopeV2): OpenedRequest {
  const body = fromBase64(envelope.body);
  if (!body || envelope.to !== toBase64(inboxId(me.publicKey))) {
    return { ok: false, message: "Cannot open request: not addressed to my request inbox" };
  }
  return openRequestBody(me, body);
}
