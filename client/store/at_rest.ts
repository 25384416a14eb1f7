/**
 * Encryption at rest: the one layer every profile file passes through, so the code above it
 * (contacts, history, sessions, requests) reads and writes plain text and never knows whether the
 * disk holds it encrypted.
 *
 * With a passphrase on the identity, everything is written encrypted with the local-storage key
 * (`localStorageKey` of @chat-p2p/protocol: `HKDF(identity seed, "chat-p2p/2", "local storage")`),
 * XChaCha20-Poly1305 with a fresh random 24-byte nonce per history line and per file, and the
 * associated data `"chat-p2p local/1\n" || label`, where the label names the file's role and peer
 * (`history <peer key>`), so a line or file moved to another place does not open there. Without a
 * passphrase, everything is written in clear (and `chat-p2p id` says so).
 *
 * ```
 * encrypted file:  {"$enc":"<base64(nonce || ciphertext || tag)>"}\n
 * encrypted line:  {"$enc":"<base64(nonce || ciphertext || tag)>"}
 * ```
 *
 * `$` cannot start a contact name or a record field, so a plain file or line is never mistaken for
 * an encrypted one. Reading accepts both forms whatever the mode (a v1 profile, or one whose
 * passphrase was just set, still has clear files until they are rewritten).
 *
 * @module
 */
import {
  aeadDecrypt,
  aeadEncrypt,
  concat,
  fromBase64,
  randomBytes,
  toBase64,
} from "@chat-p2p/protocol";
import { ClientError } from "../errors.ts";

const NONCE_BYTES = 24;
const FIELD = "$enc";
const PREFIX = `{"${FIELD}":"`;
const AD_PREFIX = "chat-p2p local/1\n";

/** What the store can do with encrypted data right now. */
export type AtRestMode =
  /** No passphrase: write in clear; `key` (from the clear seed) reads what is encrypted. */
  | { kind: "plain"; key?: Uint8Array }
  /** A passphrase, and the identity is unlocked: write encrypted with `key`. */
  | { kind: "encrypted"; key: Uint8Array }
  /** A passphrase, not unlocked yet: clear data reads; encrypted data and writes need the key. */
  | { kind: "locked" };

/** The encode/decode pair a file or history log uses for one label. */
export interface TextCodec {
  /** The text as it goes to disk (encrypted in `encrypted` mode). */
  encode(text: string): string;
  /** The plain text of what the disk holds; `undefined` when it does not open (damaged). */
  decode(stored: string): string | undefined;
}

/** True when `stored` (a line, or a whole file) is in the encrypted form. */
export function isEncrypted(stored: string): boolean {
  return stored.trimStart().startsWith(PREFIX);
}

function ad(label: string): Uint8Array {
  return new TextEncoder().encode(AD_PREFIX + label);
}

/** Encrypts `text` for `label` under `key`: the encrypted form, one line, no newline. */
export function sealText(key: Uint8Array, label: string, text: string): string {
  const nonce = randomBytes(NONCE_BYTES);
  const ct = aeadEncrypt(key, nonce, new TextEncoder().encode(text), ad(label));
  return JSON.stringify({ [FIELD]: toBase64(concat(nonce, ct)) });
}

/** Decrypts the encrypted form; `undefined` when it is not one or does not open for `label`. */
export function openText(key: Uint8Array, label: string, stored: string): string | undefined {
  let o: unknown;
  try {
    o = JSON.parse(stored);
  } catch {
    return undefined;
  }
  if (
    typeof o !== "object" || o === null || typeof (o as Record<string, unknown>)[FIELD] !== "string"
  ) {
    return undefined;
  }
  const both = fromBase64((o as Record<string, string>)[FIELD]);
  if (!both || both.length < NONCE_BYTES) return undefined;
  const plain = aeadDecrypt(
    key,
    both.subarray(0, NONCE_BYTES),
    both.subarray(NONCE_BYTES),
    ad(label),
  );
  return plain && new TextDecoder().decode(plain);
}

/** The error for encrypted data (or a write) while the passphrase has not been given. */
export function lockedError(profile: string, what: string): ClientError {
  return new ClientError(
    "passphrase_required",
    `the ${what} of profile ${profile} are encrypted at rest; the passphrase is needed`,
  );
}

/**
 * The codec of one label under the store's current mode (`modeOf`, read at every call). `locked()` is the error to throw when the key is missing;
 * a record that does not decrypt is returned as `undefined` (reported and kept by the caller).
 */
export function codecFor(
  modeOf: () => AtRestMode,
  label: string,
  locked: () => Error,
): TextCodec {
  return {
    encode(text) {
      const mode = modeOf();
      if (mode.kind === "plain") return text;
      if (mode.kind === "locked") throw locked();
      return sealText(mode.key, label, text);
    },
    decode(stored) {
      if (!isEncrypted(stored)) return stored;
      const mode = modeOf();
      const key = mode.kind === "locked" ? undefined : mode.key;
      if (!key) throw locked();
      return openText(key, label, stored.trim());
    },
  };
}
