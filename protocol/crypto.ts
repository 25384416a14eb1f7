/**
 * Crypto helpers shared by the CLI and the relay. Nothing here is hand-rolled: signatures are
 * tweetnacl's Ed25519 (`nacl.sign`), encryption is tweetnacl's `nacl.box` (X25519 +
 * XSalsa20-Poly1305) with keys converted from the Ed25519 pair by `ed2curve` (the same conversion
 * as libsodium's `crypto_sign_ed25519_pk_to_curve25519` / `..._sk_to_curve25519`).
 *
 * @module
 */
import nacl from "tweetnacl";
import ed2curve from "ed2curve";

import {
  fromBase64,
  isWeakKeyEncoding,
  NONCE_BYTES,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  toHex,
} from "./encoding.ts";

/** Length in bytes of an Ed25519 secret key (seed followed by public key), as tweetnacl keeps it. */
export const SECRET_KEY_BYTES = 64;

/** An Ed25519 identity key pair. */
export interface KeyPair {
  /** 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  /** 64-byte Ed25519 secret key (tweetnacl layout: seed || public key). */
  secretKey: Uint8Array;
}

/**
 * Explains why `text` is not a valid public key, or returns `undefined` when it is one.
 * Used by the CLI and the relay so both word the problem the same way.
 */
export function explainPublicKey(text: string): string | undefined {
  if (typeof text !== "string" || text.length === 0) return "the key is empty";
  const bytes = fromBase64(text);
  if (!bytes) return "the key is not standard base64 (A-Z a-z 0-9 + / with = padding)";
  if (bytes.length !== PUBLIC_KEY_BYTES) {
    return `the key decodes to ${bytes.length} bytes; an Ed25519 public key is ${PUBLIC_KEY_BYTES}`;
  }
  if (isWeakKeyEncoding(bytes) || !ed2curve.convertPublicKey(bytes)) {
    return "the key is not a usable Ed25519 public key (not a point of the curve, or a weak one)";
  }
  return undefined;
}

/** Makes a new random Ed25519 identity. */
export function generateKeyPair(): KeyPair {
  const kp = nacl.sign.keyPair();
  return { publicKey: kp.publicKey, secretKey: kp.secretKey };
}

/** Rebuilds a key pair from its 32-byte seed (the first half of the tweetnacl secret key). */
export function keyPairFromSeed(seed: Uint8Array): KeyPair {
  const kp = nacl.sign.keyPair.fromSeed(seed);
  return { publicKey: kp.publicKey, secretKey: kp.secretKey };
}

/** PKCS #8 wrapping of a 32-byte Ed25519 seed (RFC 8410), for WebCrypto's importKey. */
const ED25519_PKCS8_PREFIX = new Uint8Array([
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
]);

/**
 * A WebCrypto Ed25519 signing key for a 32-byte seed (the first half of a tweetnacl secret key).
 * `extractable` only so the public key can be exported ({@linkcode keyPairFromSeedAsync}).
 */
export function signingKeyFromSeed(seed: Uint8Array, extractable = false): Promise<CryptoKey> {
  if (seed.length !== 32) throw new Error("an Ed25519 seed is 32 bytes");
  const pkcs8 = new Uint8Array(48);
  pkcs8.set(ED25519_PKCS8_PREFIX);
  pkcs8.set(seed, 16);
  try {
    return crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, extractable, ["sign"]);
  } finally {
    pkcs8.fill(0);
  }
}

/**
 * {@linkcode keyPairFromSeed} through the runtime's native Ed25519 (WebCrypto): the same key
 * pair (RFC 8032), about 1 ms instead of tweetnacl's ~17 ms on a cold start, which every CLI
 * command that loads the identity pays.
 */
export async function keyPairFromSeedAsync(seed: Uint8Array): Promise<KeyPair> {
  // The JWK export also carries the seed (`d`) as a string, which cannot be wiped; so does the
  // identity file's JSON once read, so this adds no new kind of copy.
  const key = await signingKeyFromSeed(seed, true);
  const jwk = await crypto.subtle.exportKey("jwk", key);
  const publicKey = fromBase64(
    jwk.x!.replaceAll("-", "+").replaceAll("_", "/").padEnd(44, "="),
  );
  if (!publicKey || publicKey.length !== PUBLIC_KEY_BYTES) {
    throw new Error("the runtime returned a malformed Ed25519 public key");
  }
  const secretKey = new Uint8Array(64);
  secretKey.set(seed);
  secretKey.set(publicKey, 32);
  return { publicKey, secretKey };
}

/**
 * {@linkcode sign} through the runtime's native Ed25519 (WebCrypto): Ed25519 signatures are
 * deterministic, so the bytes are the same as tweetnacl's.
 */
export async function signAsync(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array> {
  const key = await signingKeyFromSeed(secretKey.subarray(0, 32));
  return new Uint8Array(await crypto.subtle.sign("Ed25519", key, new Uint8Array(message)));
}

/** Ed25519 detached signature of `message` with `secretKey`. */
export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return nacl.sign.detached(message, secretKey);
}

/** Verifies an Ed25519 detached signature; never throws (wrong lengths verify as false). */
export function verify(message: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  try {
    return nacl.sign.detached.verify(message, signature, publicKey);
  } catch {
    return false;
  }
}

/**
 * Verifies an Ed25519 detached signature with the runtime's native WebCrypto (RFC 8032; about
 * 50x less CPU than tweetnacl's JS, bench/README.md finding 2). Never rejects: bad input
 * verifies as false. Weak keys are refused before this by {@linkcode decodePublicKey}.
 */
export async function verifyAsync(
  message: Uint8Array,
  signature: Uint8Array,
  publicKey: Uint8Array,
): Promise<boolean> {
  if (signature.length !== SIGNATURE_BYTES || publicKey.length !== PUBLIC_KEY_BYTES) return false;
  try {
    const key = await crypto.subtle.importKey(
      "raw",
      new Uint8Array(publicKey),
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    return await crypto.subtle.verify(
      "Ed25519",
      key,
      new Uint8Array(signature),
      new Uint8Array(message),
    );
  } catch {
    return false;
  }
}

/** Cryptographically random bytes. */
export function randomBytes(n: number): Uint8Array {
  return nacl.randomBytes(n);
}

function curvePublic(edPublicKey: Uint8Array): Uint8Array {
  const pk = ed2curve.convertPublicKey(edPublicKey);
  if (!pk) throw new Error("Cannot convert public key: not a valid Ed25519 point");
  return pk;
}

function curveSecret(edSecretKey: Uint8Array): Uint8Array {
  return ed2curve.convertSecretKey(edSecretKey);
}

/**
 * The X25519 public key `nacl.box` uses for an Ed25519 public key (libsodium's
 * `crypto_sign_ed25519_pk_to_curve25519`). Throws when the bytes are not an Ed25519 point.
 * Exported for test vectors and other-language cross-checks.
 */
export function toX25519PublicKey(edPublicKey: Uint8Array): Uint8Array {
  return curvePublic(edPublicKey);
}

/**
 * The X25519 secret key `nacl.box` uses for an Ed25519 secret key (libsodium's
 * `crypto_sign_ed25519_sk_to_curve25519`: SHA-512 of the seed, first 32 bytes, clamped).
 * Exported for test vectors and other-language cross-checks.
 */
export function toX25519SecretKey(edSecretKey: Uint8Array): Uint8Array {
  return curveSecret(edSecretKey);
}

/**
 * Precomputes the `nacl.box` shared key between my Ed25519 secret key and a peer's Ed25519
 * public key. The same value results from either side of the pair.
 */
export function sharedKey(mySecretKey: Uint8Array, theirPublicKey: Uint8Array): Uint8Array {
  return nacl.box.before(curvePublic(theirPublicKey), curveSecret(mySecretKey));
}

/** Shared keys per secret key (dropped with it), by the peer's key in hex; at most this many. */
const SHARED_KEY_CACHE = 1024;
const sharedKeys = new WeakMap<Uint8Array, Map<string, Uint8Array>>();

/**
 * {@linkcode sharedKey}, remembered per secret key: the two key conversions and the X25519
 * multiplication cost about 2 ms, which every seal and open paid again for the same peer.
 */
function cachedSharedKey(mySecretKey: Uint8Array, theirPublicKey: Uint8Array): Uint8Array {
  let byPeer = sharedKeys.get(mySecretKey);
  if (!byPeer) sharedKeys.set(mySecretKey, byPeer = new Map());
  const peer = toHex(theirPublicKey);
  let key = byPeer.get(peer);
  if (!key) {
    key = sharedKey(mySecretKey, theirPublicKey);
    if (byPeer.size >= SHARED_KEY_CACHE) byPeer.delete(byPeer.keys().next().value!);
    byPeer.set(peer, key);
  }
  return key;
}

/** A sealed box: the random nonce and the ciphertext (16-byte Poly1305 tag + encrypted bytes). */
export interface Sealed {
  nonce: Uint8Array;
  ciphertext: Uint8Array;
}

/** Encrypts `plaintext` for `theirPublicKey` from `mySecretKey` with a fresh random nonce. */
export function seal(
  plaintext: Uint8Array,
  theirPublicKey: Uint8Array,
  mySecretKey: Uint8Array,
): Sealed {
  return sealWithNonce(plaintext, nacl.randomBytes(NONCE_BYTES), theirPublicKey, mySecretKey);
}

/**
 * {@linkcode seal} with a caller-chosen nonce. Only for deterministic test vectors: reusing a
 * nonce with the same pair of keys breaks the encryption, so real messages use `seal`.
 */
export function sealWithNonce(
  plaintext: Uint8Array,
  nonce: Uint8Array,
  theirPublicKey: Uint8Array,
  mySecretKey: Uint8Array,
): Sealed {
  if (nonce.length !== NONCE_BYTES) {
    throw new RangeError(`Cannot seal: the nonce must be ${NONCE_BYTES} bytes`);
  }
  const ciphertext = nacl.box.after(plaintext, nonce, cachedSharedKey(mySecretKey, theirPublicKey));
  return { nonce, ciphertext };
}

/**
 * Opens a box sealed by `theirPublicKey` for `mySecretKey`. Returns `undefined` when it does not
 * open: tampered bytes, a wrong key, or a sender other than the one claimed.
 */
export function open(
  sealed: Sealed,
  theirPublicKey: Uint8Array,
  mySecretKey: Uint8Array,
): Uint8Array | undefined {
  if (sealed.nonce.length !== NONCE_BYTES) return undefined;
  let key: Uint8Array;
  try {
    key = cachedSharedKey(mySecretKey, theirPublicKey);
  } catch {
    return undefined;
  }
  return nacl.box.open.after(sealed.ciphertext, sealed.nonce, key) ?? undefined;
}

/**
 * A short human fingerprint of a public key, for comparing out of band: the first 10 bytes of
 * SHA-512(public key), as five groups of four hex digits ("3f2a 9c1b 77d0 e412 5a6b").
 */
export function fingerprint(publicKey: Uint8Array): string {
  const hex = toHex(nacl.hash(publicKey).subarray(0, 10));
  return hex.match(/.{4}/g)!.join(" ");
}

/** Constant-time comparison of two byte arrays. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  // nacl.verify answers false for two empty arrays; they are equal.
  return a.length === b.length && (a.length === 0 || nacl.verify(a, b));
}
