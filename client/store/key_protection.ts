/**
 * Passphrase protection of the identity's secret key. Nothing here is hand-rolled: the key is
 * derived from the passphrase with scrypt (`@noble/hashes`, memory-hard), and the 32-byte Ed25519
 * seed is sealed with tweetnacl's `nacl.secretbox` (XSalsa20-Poly1305) under that key, with a
 * random salt and a random nonce. Every parameter is stored next to the ciphertext, so a later
 * version can raise the cost and still open files written today.
 *
 * ```json
 * "encrypted_secret_key": {
 *   "v": 1,
 *   "kdf": { "name": "scrypt", "N": 131072, "r": 8, "p": 1, "dk_len": 32, "salt": "<b64, 16 B>" },
 *   "cipher": "xsalsa20-poly1305",
 *   "nonce": "<b64, 24 B>",
 *   "ciphertext": "<b64: secretbox(seed), 48 B>"
 * }
 * ```
 *
 * The passphrase is Unicode-normalised (NFC) and encoded as UTF-8 before derivation, so the same
 * text typed on two systems derives the same key.
 *
 * @module
 */
import nacl from "tweetnacl";
import { scrypt } from "@noble/hashes/scrypt.js";
import { fromBase64, randomBytes, toBase64 } from "@chat-p2p/protocol";

/** scrypt cost parameters. */
export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number;
  /** Block size. */
  r: number;
  /** Parallelism. */
  p: number;
}

/**
 * Parameters for new files: N = 2^17, r = 8, p = 1 (128 MiB of memory per derivation, well under
 * a second on a laptop core). This is above the 2^15..2^16 that current guidance (OWASP, the
 * scrypt paper's interactive setting) asks for, because a derivation happens only once per
 * command.
 */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });

/** Salt length in bytes for new files. */
export const SALT_BYTES = 16;
/** Seed length: what is encrypted (the Ed25519 seed; the rest of the key is derived from it). */
export const SEED_BYTES = 32;
const KEY_BYTES = nacl.secretbox.keyLength; // 32
const NONCE_BYTES = nacl.secretbox.nonceLength; // 24
const CIPHERTEXT_BYTES = SEED_BYTES + nacl.secretbox.overheadLength; // 48
/** The largest memory a stored parameter set may ask for (128·N·r bytes): 2 GiB. */
const MAX_MEMORY_BYTES = 2 ** 31;

/** The stored, versioned form of an encrypted secret key. */
export interface EncryptedSecretKey {
  v: 1;
  kdf: { name: "scrypt"; N: number; r: number; p: number; dk_len: number; salt: string };
  cipher: "xsalsa20-poly1305";
  nonce: string;
  ciphertext: string;
}

/** Explains why scrypt parameters are unusable, or returns undefined. */
export function explainScryptParams(p: ScryptParams): string | undefined {
  const { N, r, p: par } = p;
  if (!Number.isSafeInteger(N) || N < 2 ** 10 || (N & (N - 1)) !== 0) {
    return `scrypt N must be a power of two of at least 1024, got ${N}`;
  }
  if (!Number.isSafeInteger(r) || r < 1 || r > 64) return `scrypt r must be 1..64, got ${r}`;
  if (!Number.isSafeInteger(par) || par < 1 || par > 16) {
    return `scrypt p must be 1..16, got ${par}`;
  }
  if (128 * N * r > MAX_MEMORY_BYTES) {
    return `scrypt N=${N}, r=${r} needs more than ${MAX_MEMORY_BYTES / 2 ** 30} GiB of memory`;
  }
  return undefined;
}

function deriveKey(passphrase: string, salt: Uint8Array, params: ScryptParams): Uint8Array {
  return scrypt(new TextEncoder().encode(passphrase.normalize("NFC")), salt, {
    N: params.N,
    r: params.r,
    p: params.p,
    dkLen: KEY_BYTES,
    maxmem: MAX_MEMORY_BYTES + 1024,
  });
}

/** Encrypts a 32-byte Ed25519 seed under `passphrase` (fresh random salt and nonce). */
export function encryptSeed(
  seed: Uint8Array,
  passphrase: string,
  params: ScryptParams = DEFAULT_SCRYPT,
): EncryptedSecretKey {
  if (seed.length !== SEED_BYTES) throw new TypeError(`seed must be ${SEED_BYTES} bytes`);
  const bad = explainScryptParams(params);
  if (bad) throw new TypeError(bad);
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const key = deriveKey(passphrase, salt, params);
  try {
    const ciphertext = nacl.secretbox(seed, nonce, key);
    return {
      v: 1,
      kdf: {
        name: "scrypt",
        N: params.N,
        r: params.r,
        p: params.p,
        dk_len: KEY_BYTES,
        salt: toBase64(salt),
      },
      cipher: "xsalsa20-poly1305",
      nonce: toBase64(nonce),
      ciphertext: toBase64(ciphertext),
    };
  } finally {
    key.fill(0);
  }
}

/**
 * Checks the shape of a stored `encrypted_secret_key` (types, lengths, sane KDF parameters)
 * without deriving anything. Returns the typed value, or a reason it is unusable.
 */
export function parseEncryptedSecretKey(
  o: unknown,
): { ok: true; value: EncryptedSecretKey } | { ok: false; reason: string } {
  const fail = (reason: string) => ({ ok: false as const, reason });
  if (typeof o !== "object" || o === null || Array.isArray(o)) return fail("not an object");
  const r = o as Record<string, unknown>;
  if (r.v !== 1) return fail(`unsupported version ${JSON.stringify(r.v)}`);
  if (r.cipher !== "xsalsa20-poly1305") return fail(`unknown cipher ${JSON.stringify(r.cipher)}`);
  const kdf = r.kdf;
  if (typeof kdf !== "object" || kdf === null || Array.isArray(kdf)) return fail("bad kdf");
  const k = kdf as Record<string, unknown>;
  if (k.name !== "scrypt") return fail(`unknown kdf ${JSON.stringify(k.name)}`);
  if (typeof k.N !== "number" || typeof k.r !== "number" || typeof k.p !== "number") {
    return fail("bad kdf parameters");
  }
  const bad = explainScryptParams({ N: k.N, r: k.r, p: k.p });
  if (bad) return fail(bad);
  if (k.dk_len !== KEY_BYTES) return fail(`kdf dk_len must be ${KEY_BYTES}`);
  const salt = typeof k.salt === "string" ? fromBase64(k.salt) : undefined;
  if (!salt || salt.length < SALT_BYTES || salt.length > 64) return fail("bad kdf salt");
  const nonce = typeof r.nonce === "string" ? fromBase64(r.nonce) : undefined;
  if (!nonce || nonce.length !== NONCE_BYTES) return fail("bad nonce");
  const ct = typeof r.ciphertext === "string" ? fromBase64(r.ciphertext) : undefined;
  if (!ct || ct.length !== CIPHERTEXT_BYTES) return fail("bad ciphertext");
  return {
    ok: true,
    value: {
      v: 1,
      kdf: { name: "scrypt", N: k.N, r: k.r, p: k.p, dk_len: KEY_BYTES, salt: k.salt as string },
      cipher: "xsalsa20-poly1305",
      nonce: r.nonce as string,
      ciphertext: r.ciphertext as string,
    },
  };
}

/**
 * Decrypts the seed with `passphrase`; `undefined` when the box does not open (a wrong
 * passphrase, or a file that was altered). `enc` must come from {@linkcode parseEncryptedSecretKey}.
 */
export function decryptSeed(enc: EncryptedSecretKey, passphrase: string): Uint8Array | undefined {
  const salt = fromBase64(enc.kdf.salt)!;
  const nonce = fromBase64(enc.nonce)!;
  const ciphertext = fromBase64(enc.ciphertext)!;
  const key = deriveKey(passphrase, salt, enc.kdf);
  try {
    return nacl.secretbox.open(ciphertext, nonce, key) ?? undefined;
  } finally {
    key.fill(0);
  }
}
