/**
 * The safety number of two identities: 60 digits both people compute from the two public keys
 * and compare out of band (in person, on a call, or by scanning its QR code). If a relay or
 * anyone else swapped a key, the numbers differ.
 *
 * The construction is Signal's numeric fingerprint (libsignal `NumericFingerprintGenerator`,
 * fingerprint version 0, 5,200 iterations), with chat-p2p's inputs:
 *
 * - for each identity: `h = SHA-512(0x0000 || key || id || key)`, then 5,199 times
 *   `h = SHA-512(h || key)` (5,200 hashes in all), where `key` is the raw 32-byte Ed25519 public key and `id` (Signal's
 *   stable identifier) is the key's base64 text, the address;
 * - each identity's 30 digits: the first 30 bytes of `h` as six 5-byte big-endian numbers, each
 *   modulo 100,000 written as 5 digits;
 * - the safety number: the two 30-digit strings in ascending order, concatenated, so both sides
 *   get the same 60 digits.
 *
 * {@linkcode numericFingerprint} is the generic construction, checked against libsignal's own test
 * vector; {@linkcode safetyNumber} applies it to two chat-p2p keys. SHA-512 is `@noble/hashes`.
 *
 * @example
 * ```ts
 * import { formatSafetyNumber, safetyNumber } from "@chat-p2p/client";
 * import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
 *
 * const alice = toBase64(generateKeyPair().publicKey);
 * const bob = toBase64(generateKeyPair().publicKey);
 * safetyNumber(alice, bob) === safetyNumber(bob, alice); // true
 * formatSafetyNumber(safetyNumber(alice, bob)); // "12345 67890 ... " (12 groups of 5)
 * ```
 *
 * @module
 */
import { sha512 } from "@noble/hashes/sha2.js";
import { decodePublicKey } from "@chat-p2p/protocol";

/** Iterations of SHA-512 per identity (Signal's). */
export const SAFETY_NUMBER_ITERATIONS = 5200;

/** One identity's half of a numeric fingerprint: the key and its stable identifier. */
export interface FingerprintInput {
  /** The public key, serialized as the protocol serializes it. */
  key: Uint8Array;
  /** The stable identifier of its owner. */
  id: Uint8Array;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The 30 digits of one identity. */
function digitsOf({ key, id }: FingerprintInput, iterations: number): string {
  let hash = sha512(concat(new Uint8Array([0, 0]), key, id, key));
  for (let i = 1; i < iterations; i++) hash = sha512(concat(hash, key));
  let digits = "";
  for (let chunk = 0; chunk < 6; chunk++) {
    let n = 0;
    for (let b = 0; b < 5; b++) n = n * 256 + hash[chunk * 5 + b]; // < 2^40: exact in a double
    digits += String(n % 100_000).padStart(5, "0");
  }
  return digits;
}

/**
 * Signal's displayable numeric fingerprint of two identities: 60 digits, the same whichever side
 * computes it.
 */
export function numericFingerprint(
  local: FingerprintInput,
  remote: FingerprintInput,
  iterations: number = SAFETY_NUMBER_ITERATIONS,
): string {
  const a = digitsOf(local, iterations);
  const b = digitsOf(remote, iterations);
  return a <= b ? a + b : b + a;
}

/** The safety number of two base64 Ed25519 public keys (60 digits, no spaces). */
export function safetyNumber(myKey: string, theirKey: string): string {
  const input = (key: string): FingerprintInput => {
    const bytes = decodePublicKey(key);
    if (!bytes) throw new TypeError("safetyNumber: not a base64 32-byte public key");
    return { key: bytes, id: new TextEncoder().encode(key) };
  };
  return numericFingerprint(input(myKey), input(theirKey));
}

/** A safety number in 12 groups of 5 digits, as people read it aloud. */
export function formatSafetyNumber(digits: string): string {
  return digits.match(/.{1,5}/g)?.join(" ") ?? "";
}
