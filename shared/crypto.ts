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

/** Length in bytes of an Ed25519 public key. */
export const PUBLIC_KEY_BYTES = 32;
/** Length in bytes of an Ed25519 secret key (seed followed by public key), as tweetnacl keeps it. */
export const SECRET_KEY_BYTES = 64;
/** Length in bytes of a `nacl.box` nonce. */
export const NONCE_BYTES = 24;
/** Length in bytes of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;

/** An Ed25519 identity key pair. */
export interface KeyPair {
  /** 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
  /** 64-byte Ed25519 secret key (tweetnacl layout: seed || public key). */
  secretKey: Uint8Array;
}

/** Standard base64 (RFC 4648 §4, with padding) of bytes. */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

// The last character before padding must leave the unused low bits zero (canonical encoding), so
// every byte string has exactly one accepted text: otherwise "...ik=" and "...il=" would be two
// different mailbox ids for the same key.
const BASE64_RE =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;

/**
 * Decodes strict standard base64 (padding required, no whitespace, canonical: unused trailing bits
 * must be zero, so `toBase64(fromBase64(t)) === t`). Returns `undefined` for anything else, so
 * callers turn it into their own error message.
 */
export function fromBase64(text: string): Uint8Array | undefined {
  if (typeof text !== "string" || !BASE64_RE.test(text)) return undefined;
  try {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}

/**
 * Byte length of strict base64 text (the same rules as {@linkcode fromBase64}) without decoding
 * it, or `undefined` when it is not strict base64. The relay checks sizes of fields it never
 * opens (nonce, ciphertext) with this.
 */
export function base64ByteLength(text: string): number | undefined {
  if (typeof text !== "string" || !BASE64_RE.test(text)) return undefined;
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  return (text.length / 4) * 3 - pad;
}

/** Lower-case hex of bytes. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Decodes a base64 public key, or `undefined` if it is not base64 of exactly 32 bytes. */
export function decodePublicKey(text: string): Uint8Array | undefined {
  const bytes = fromBase64(text);
  return bytes && bytes.length === PUBLIC_KEY_BYTES && !isWeakKeyEncoding(bytes)
    ? bytes
    : undefined;
}

const validKeys = new Map<string, boolean>();

/**
 * Whether `text` is a usable public key ({@linkcode decodePublicKey} would return it). Remembers
 * its answers for a bounded set of texts: the relay checks `from` and `to` of every envelope,
 * and a conversation repeats the same two keys.
 */
export function isPublicKeyText(text: string): boolean {
  // Only the one length a key can have is looked up or remembered: anything else is refused
  // at once, so hostile frames cannot fill the cache with large strings.
  if (typeof text !== "string" || text.length !== 44) return false;
  let ok = validKeys.get(text);
  if (ok === undefined) {
    ok = decodePublicKey(text) !== undefined;
    if (validKeys.size >= 10_000) validKeys.clear();
    validKeys.set(text, ok);
  }
  return ok;
}

/**
 * libsodium's blacklist of small-order Ed25519 points (ge25519_has_small_order), compared with the
 * sign bit cleared: with such a "key" the box's shared secret is a public constant and any
 * signature verifies. No real key pair produces one. Checked against libsodium via PyNaCl.
 */
const SMALL_ORDER: readonly Uint8Array[] = [
  new Uint8Array(32),
  Uint8Array.from([1, ...new Array(31).fill(0)]),
  Uint8Array.from([
    0x26,
    0xe8,
    0x95,
    0x8f,
    0xc2,
    0xb2,
    0x27,
    0xb0,
    0x45,
    0xc3,
    0xf4,
    0x89,
    0xf2,
    0xef,
    0x98,
    0xf0,
    0xd5,
    0xdf,
    0xac,
    0x05,
    0xd3,
    0xc6,
    0x33,
    0x39,
    0xb1,
    0x38,
    0x02,
    0x88,
    0x6d,
    0x53,
    0xfc,
    0x05,
  ]),
  Uint8Array.from([
    0xc7,
    0x17,
    0x6a,
    0x70,
    0x3d,
    0x4d,
    0xd8,
    0x4f,
    0xba,
    0x3c,
    0x0b,
    0x76,
    0x0d,
    0x10,
    0x67,
    0x0f,
    0x2a,
    0x20,
    0x53,
    0xfa,
    0x2c,
    0x39,
    0xcc,
    0xc6,
    0x4e,
    0xc7,
    0xfd,
    0x77,
    0x92,
    0xac,
    0x03,
    0x7a,
  ]),
  Uint8Array.from([0xec, ...new Array(30).fill(0xff), 0x7f]),
  Uint8Array.from([0xed, ...new Array(30).fill(0xff), 0x7f]),
  Uint8Array.from([0xee, ...new Array(30).fill(0xff), 0x7f]),
];

/**
 * True for encodings libsodium refuses as public keys without any curve arithmetic: small-order
 * points and non-canonical y (y >= 2^255 - 19). Cheap enough for every envelope on the relay.
 */
export function isWeakKeyEncoding(key: Uint8Array): boolean {
  const top = key[31] & 0x7f;
  if (top === 0x7f && key[0] >= 0xed && key.subarray(1, 31).every((b) => b === 0xff)) return true;
  return SMALL_ORDER.some((bad) => {
    for (let i = 0; i < 31; i++) if (key[i] !== bad[i]) return false;
    return top === bad[31];
  });
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
  const ciphertext = nacl.box.after(plaintext, nonce, sharedKey(mySecretKey, theirPublicKey));
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
    key = sharedKey(mySecretKey, theirPublicKey);
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
