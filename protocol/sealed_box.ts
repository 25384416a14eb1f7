/**
 * Anonymous sealed boxes, byte-compatible with libsodium's `crypto_box_seal` /
 * `crypto_box_seal_open`: `epk || crypto_box(m, nonce, recipient_pk, esk)` with a fresh
 * ephemeral X25519 key pair and `nonce = BLAKE2b-192(epk || recipient_pk)` (the published
 * construction; tweetnacl's `nacl.box` for the box, `@noble/hashes` for BLAKE2b). Protocol v2
 * seals first-contact requests to the recipient's identity this way.
 *
 * @module
 */
import nacl from "tweetnacl";
import { blake2b } from "@noble/hashes/blake2.js";

import { randomBytes } from "./crypto.ts";
import { concat, dh, type X25519KeyPair, x25519KeyPair } from "./kdf.ts";

/** Bytes a sealed box adds to its message: the ephemeral public key (32) and the tag (16). */
export const SEALED_BOX_OVERHEAD = 48;

function sealNonce(ephemeralPublic: Uint8Array, recipientPublic: Uint8Array): Uint8Array {
  return blake2b(concat(ephemeralPublic, recipientPublic), { dkLen: nacl.box.nonceLength });
}

/**
 * Seals `message` to an X25519 public key. `ephemeral` is for deterministic test vectors only:
 * by default a fresh key pair is made, and reusing one would link the boxes it sealed.
 *
 * @example Seal to a recipient and open it
 * ```ts
 * import { randomBytes, sealedBoxOpen, sealedBoxSeal, x25519KeyPair } from "@chat-p2p/protocol";
 *
 * const recipient = x25519KeyPair(randomBytes(32));
 * const box = sealedBoxSeal(new TextEncoder().encode("hello"), recipient.publicKey);
 * console.log(new TextDecoder().decode(sealedBoxOpen(box, recipient))); // "hello"
 * ```
 */
export function sealedBoxSeal(
  message: Uint8Array,
  recipientPublic: Uint8Array,
  ephemeral: X25519KeyPair = x25519KeyPair(randomBytes(32)),
): Uint8Array {
  if (recipientPublic.length !== 32) throw new RangeError("an X25519 public key is 32 bytes");
  const nonce = sealNonce(ephemeral.publicKey, recipientPublic);
  const box = nacl.box(message, nonce, recipientPublic, ephemeral.secretKey);
  return concat(ephemeral.publicKey, box);
}

/** Opens a sealed box with the recipient's X25519 key pair; `undefined` when it does not open. */
export function sealedBoxOpen(
  sealed: Uint8Array,
  recipient: X25519KeyPair,
): Uint8Array | undefined {
  if (sealed.length < SEALED_BOX_OVERHEAD) return undefined;
  const epk = sealed.subarray(0, 32);
  // libsodium refuses a small-order ephemeral key (all-zero shared secret); so do we.
  if (!dh(recipient.secretKey, epk)) return undefined;
  const nonce = sealNonce(epk, recipient.publicKey);
  return nacl.box.open(sealed.subarray(32), nonce, epk, recipient.secretKey) ?? undefined;
}
