/**
 * Sealing a payload into an envelope and opening it again: the one place the CLI (and the tests)
 * turn plaintext into what the relay may see.
 *
 * @module
 */
import { type KeyPair, open, seal } from "./crypto.ts";
import { decodePublicKey, fromBase64, toBase64 } from "./encoding.ts";
import type { Parsed } from "./errors.ts";
import { type Envelope, newId } from "./frames.ts";
import { encodePayload, parsePayload, type Payload } from "./payload.ts";

/** Encrypts `payload` from `sender` to the base64 key `to`, as an envelope with a fresh id. */
export function sealEnvelope(
  payload: Payload,
  sender: KeyPair,
  to: string,
  id: string = newId(),
): Envelope {
  const recipient = decodePublicKey(to);
  if (!recipient) throw new TypeError("Cannot seal envelope: 'to' is not a base64 32-byte key");
  const sealed = seal(encodePayload(payload), recipient, sender.secretKey);
  return {
    v: 1,
    id,
    from: toBase64(sender.publicKey),
    to,
    nonce: toBase64(sealed.nonce),
    ciphertext: toBase64(sealed.ciphertext),
  };
}

/**
 * Opens an envelope addressed to `me` with the key it claims as `from`. Fails with `auth_failed`
 * when the box does not open (tampered, or not really from `from`), so a forged sender is never
 * shown as the contact it claims to be.
 */
export function openEnvelope(envelope: Envelope, me: KeyPair): Parsed<Payload> {
  const from = decodePublicKey(envelope.from);
  const nonce = fromBase64(envelope.nonce);
  const ciphertext = fromBase64(envelope.ciphertext);
  if (!from || !nonce || !ciphertext) {
    return { ok: false, code: "bad_frame", message: "Cannot open envelope: bad encoding" };
  }
  if (envelope.to !== toBase64(me.publicKey)) {
    return { ok: false, code: "bad_frame", message: "Cannot open envelope: not addressed to me" };
  }
  const plain = open({ nonce, ciphertext }, from, me.secretKey);
  if (!plain) {
    return {
      ok: false,
      code: "auth_failed",
      message: "Cannot open envelope: the box does not open with the sender's key " +
        "(tampered, or not sent by the key it claims)",
    };
  }
  return parsePayload(plain);
}
