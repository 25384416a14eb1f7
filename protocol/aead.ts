/**
 * XChaCha20-Poly1305 (IETF variant, 24-byte nonce), the AEAD of protocol v2, from
 * `@noble/ciphers`. The output layout is libsodium's `crypto_aead_xchacha20poly1305_ietf_encrypt`:
 * the encrypted bytes followed by the 16-byte Poly1305 tag.
 *
 * @module
 */
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";

/** Key length of XChaCha20-Poly1305. */
export const AEAD_KEY_BYTES = 32;
/** Nonce length of XChaCha20-Poly1305 (random nonces are safe at this size). */
export const AEAD_NONCE_BYTES = 24;
/** Length of the Poly1305 tag appended to every ciphertext. */
export const AEAD_TAG_BYTES = 16;

function check(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== AEAD_KEY_BYTES) throw new RangeError("an XChaCha20-Poly1305 key is 32 bytes");
  if (nonce.length !== AEAD_NONCE_BYTES) {
    throw new RangeError("an XChaCha20-Poly1305 nonce is 24 bytes");
  }
}

/**
 * Encrypts `plaintext` with associated data `ad`: returns ciphertext || tag
 * (`plaintext.length + 16` bytes). Never reuse a (key, nonce) pair.
 *
 * @example Round trip
 * ```ts
 * import { aeadDecrypt, aeadEncrypt, randomBytes } from "@chat-p2p/protocol";
 *
 * const key = randomBytes(32);
 * const nonce = randomBytes(24);
 * const ad = new TextEncoder().encode("header");
 * const sealed = aeadEncrypt(key, nonce, new TextEncoder().encode("hi"), ad);
 * console.log(new TextDecoder().decode(aeadDecrypt(key, nonce, sealed, ad))); // "hi"
 * ```
 */
export function aeadEncrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  ad: Uint8Array,
): Uint8Array {
  check(key, nonce);
  return xchacha20poly1305(key, nonce, ad).encrypt(plaintext);
}

/**
 * Decrypts and verifies; `undefined` when the ciphertext, tag, nonce, key or associated data
 * differ from what was sealed (never throws for such input).
 */
export function aeadDecrypt(
  key: Uint8Array,
  nonce: Uint8Array,
  ciphertext: Uint8Array,
  ad: Uint8Array,
): Uint8Array | undefined {
  check(key, nonce);
  if (ciphertext.length < AEAD_TAG_BYTES) return undefined;
  try {
    return xchacha20poly1305(key, nonce, ad).decrypt(ciphertext);
  } catch {
    return undefined;
  }
}
