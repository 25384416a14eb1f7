/**
 * The profile store: owns every file under `$HOME/.chat-<profile>/`.
 *
 * ```
 * ~/.chat-<profile>/            0700
 *   identity.json               0600  {"v":1,"public_key":b64,"secret_key":b64}, or with a
 *                                     passphrase {"v":2,"public_key":b64,
 *                                     "encrypted_secret_key":{...}} (see key_protection.ts)
 *   contacts.json               0600  {"<name>": "<base64 key>" or {"key", "verified"}, ...}
 *                                     (see contacts.ts)
 *   config.json                 0600  per-profile settings (see config.ts)
 *   read.json                   0600  how far each conversation is read (see conversations.ts)
 *   messages/                   0700
 *     <peer key, base64url>.jsonl     append-only history per peer key (see message_log.ts)
 * ```
 *
 * identity.json and contacts.json are replaced atomically: write a temporary file in the same
 * directory, fsync it, rename it over the old one, fsync the directory. History is keyed by the
 * peer's key, not by contact name, so messages from strangers are kept and show up under the
 * contact's name once the key is added.
 *
 * @module
 */
import { join } from "node:path";
import {
  decodePublicKey,
  fingerprint,
  fromBase64,
  type KeyPair,
  keyPairFromSeedAsync,
  PUBLIC_KEY_BYTES,
  SECRET_KEY_BYTES,
  toBase64,
} from "@chat-p2p/protocol";
import { ClientError } from "../errors.ts";
import {
  decryptSeed,
  DEFAULT_SCRYPT,
  type EncryptedSecretKey,
  encryptSeed,
  parseEncryptedSecretKey,
  type ScryptParams,
} from "./key_protection.ts";
import { ioError, MessageLog } from "./message_log.ts";
import {
  type Contact,
  normalizeContactName,
  parseContacts,
  serializeContacts,
} from "./contacts.ts";

/** Profile names: what may follow `.chat-` in a directory name. */
const PROFILE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Explains why `name` is not a valid profile name, or returns undefined. */
export function explainProfileName(name: string): string | undefined {
  return PROFILE_RE.test(name) ? undefined : `invalid profile name ${JSON.stringify(name)}: use ` +
    "1-64 letters, digits, '_', '-' or '.', starting with a letter or digit";
}

/** File-name form of a base64 key: base64url without padding (no '/' or '+'). */
export function keyToFileName(key: string): string {
  return key.replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Inverse of {@linkcode keyToFileName}; undefined when the name is not a key. */
export function fileNameToKey(name: string): string | undefined {
  if (!/^[A-Za-z0-9_-]{43}$/.test(name)) return undefined;
  const key = name.replaceAll("-", "+").replaceAll("_", "/") + "=";
  return decodePublicKey(key) ? key : undefined;
}

/** Normalises a fingerprint as typed by a user: lower-case hex, no spaces. */
export function normalizeFingerprint(text: string): string {
  return text.replace(/[\s:]/g, "").toLowerCase();
}

/** A peer as resolved from what the user typed: a contact, or a bare key. */
export interface Peer {
  /** Base64 public key. */
  key: string;
  /** Contact name, or null for a key that is not saved. */
  name: string | null;
  /** Short human fingerprint of the key. */
  fingerprint: string;
}

function modeOf(info: Deno.FileInfo): number | null {
  return info.mode === null ? null : info.mode & 0o777;
}

function octal(mode: number): string {
  return "0" + mode.toString(8).padStart(3, "0");
}

/** What identity.json holds, read without the passphrase. */
export interface IdentityInfo {
  /** The Ed25519 public key. */
  publicKey: Uint8Array;
  /** The secret key as stored in clear (`v` 1), or undefined when it is encrypted. */
  secretKey: Uint8Array | undefined;
  /** The encrypted secret key (`v` 2), or undefined when it is stored in clear. */
  encrypted: EncryptedSecretKey | undefined;
}

/** Thrown by {@linkcode ProfileStore.loadIdentity} when the passphrase does not open the key. */
export class WrongPassphraseError extends ClientError {
  /** Creates the error for `profile`. */
  constructor(profile: string) {
    super("wrong_passphrase", `wrong passphrase for profile ${profile}`);
    this.name = "WrongPassphraseError";
  }
}

/** Options for {@linkcode ProfileStore}. */
export interface ProfileStoreOptions {
  /** Home directory the profile directory lives in. */
  home: string;
  /** Profile name (validated). */
  profile: string;
  /** Receives warnings (loose permissions, corrupt lines) for stderr. */
  warn?: (message: string) => void;
}

/** Owner of one profile's files. */
export class ProfileStore {
  /** Profile name. */
  readonly profile: string;
  /** `$HOME/.chat-<profile>`. */
  readonly dir: string;
  /** Path of identity.json. */
  readonly identityPath: string;
  /** Path of contacts.json. */
  readonly contactsPath: string;
  /** Directory of per-peer history files. */
  readonly messagesDir: string;
  readonly #warn: (message: string) => void;
  readonly #logs = new Map<string, MessageLog>();
  #checkedDir = false;
  readonly #checkedFiles = new Set<string>();
  readonly #warnedContacts = new Set<string>();

  /** Creates a store for `home`/`profile`; nothing is read or written yet. */
  constructor(opts: ProfileStoreOptions) {
    const bad = explainProfileName(opts.profile);
    if (bad) throw new ClientError("invalid_profile", bad);
    this.profile = opts.profile;
    this.dir = join(opts.home, `.chat-${opts.profile}`);
    this.identityPath = join(this.dir, "identity.json");
    this.contactsPath = join(this.dir, "contacts.json");
    this.messagesDir = join(this.dir, "messages");
    this.#warn = opts.warn ?? (() => {});
  }

  // -- directories and permissions ------------------------------------------------------------

  /** Creates the profile directory (0700) and messages/ if missing. */
  ensureDirs(): void {
    for (const d of [this.dir, this.messagesDir]) {
      try {
        Deno.mkdirSync(d, { recursive: true, mode: 0o700 });
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw ioError("write", d, e);
      }
    }
    this.#checkDirMode();
  }

  #checkDirMode(): void {
    if (this.#checkedDir) return;
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(this.dir);
    } catch {
      return;
    }
    this.#checkedDir = true;
    const mode = modeOf(info);
    if (mode !== null && (mode & 0o077) !== 0) {
      this.#warn(
        `profile directory ${this.dir} is accessible by other users (mode ${octal(mode)}); ` +
          `run: chmod 700 ${this.dir}`,
      );
    }
  }

  #checkFileMode(path: string): void {
    if (this.#checkedFiles.has(path)) return;
    this.#checkedFiles.add(path);
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(path);
    } catch {
      return;
    }
    const mode = modeOf(info);
    if (mode !== null && (mode & 0o077) !== 0) {
      this.#warn(
        `${path} is readable by other users (mode ${octal(mode)}); run: chmod 600 ${path}`,
      );
    }
  }

  /**
   * Atomically replaces `path` with `text`: temp file in the same directory (0600), fsync,
   * rename, fsync of the directory.
   */
  #writeAtomic(path: string, text: string): void {
    this.ensureDirs();
    const tmp = join(this.dir, `.${crypto.randomUUID()}.tmp`);
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o600 });
    } catch (e) {
      throw ioError("write", path, e);
    }
    try {
      try {
        const bytes = new TextEncoder().encode(text);
        let off = 0;
        while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
        file.syncSync();
      } finally {
        file.close();
      }
      Deno.chmodSync(tmp, 0o600); // in case of an unusual umask
      Deno.renameSync(tmp, path);
    } catch (e) {
      try {
        Deno.removeSync(tmp);
      } catch { /* already gone */ }
      throw ioError("write", path, e);
    }
    try {
      const dir = Deno.openSync(this.dir, { read: true });
      try {
        dir.syncSync();
      } finally {
        dir.close();
      }
    } catch {
      // Directory fsync is not available everywhere (Windows); the rename itself is atomic.
    }
  }

  // -- other files of the profile ---------------------------------------------------------------

  /**
   * The text of the profile's file `name` (a plain file name such as `config.json`), or
   * undefined when it does not exist. For the modules that own such a file (config.ts,
   * conversations.ts).
   */
  readFile(name: string): string | undefined {
    const path = this.#fileOf(name);
    try {
      const text = Deno.readTextFileSync(path);
      this.#checkFileMode(path);
      return text;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw ioError("read", path, e);
    }
  }

  /** Atomically replaces the profile's file `name` with `text` (0600; see the module doc). */
  writeFile(name: string, text: string): void {
    this.#writeAtomic(this.#fileOf(name), text);
  }

  #fileOf(name: string): string {
    if (!/^[a-z][a-z0-9_]*\.json$/.test(name)) throw new TypeError(`not a profile file: ${name}`);
    return join(this.dir, name);
  }

  // -- identity -------------------------------------------------------------------------------

  /** True when identity.json exists. */
  hasIdentity(): boolean {
    try {
      Deno.statSync(this.identityPath);
      return true;
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw ioError("read", this.identityPath, e);
    }
  }

  /**
   * Reads and checks identity.json without touching the secret key's protection: the public key
   * is always readable. Throws a `no_identity` ClientError telling the user to run init if it is missing, and
   * one naming the problem if it is corrupt. Warns when the file or directory is too open.
   */
  readIdentity(): IdentityInfo {
    this.#checkDirMode();
    let text: string;
    try {
      text = Deno.readTextFileSync(this.identityPath);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new ClientError(
          "no_identity",
          `no identity for profile ${this.profile}`,
        );
      }
      throw ioError("read", this.identityPath, e);
    }
    this.#checkFileMode(this.identityPath);
    const corrupt = (why: string) =>
      new ClientError("identity_corrupt", `identity file ${this.identityPath} is corrupt: ${why}`);
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      throw corrupt("not valid JSON");
    }
    if (typeof o !== "object" || o === null) throw corrupt("not a JSON object");
    const r = o as Record<string, unknown>;
    if (r.v !== 1 && r.v !== 2) throw corrupt(`unsupported version ${JSON.stringify(r.v)}`);
    const pk = typeof r.public_key === "string" ? fromBase64(r.public_key) : undefined;
    if (!pk || pk.length !== PUBLIC_KEY_BYTES) throw corrupt("bad public_key");
    if (r.v === 2) {
      const enc = parseEncryptedSecretKey(r.encrypted_secret_key);
      if (!enc.ok) throw corrupt(`bad encrypted_secret_key: ${enc.reason}`);
      return { publicKey: pk, secretKey: undefined, encrypted: enc.value };
    }
    const sk = typeof r.secret_key === "string" ? fromBase64(r.secret_key) : undefined;
    if (!sk || sk.length !== SECRET_KEY_BYTES) throw corrupt("bad secret_key");
    return { publicKey: pk, secretKey: sk, encrypted: undefined };
  }

  /** The public key (never needs the passphrase). */
  loadPublicKey(): Uint8Array {
    return this.readIdentity().publicKey;
  }

  /** True when the identity's secret key is protected by a passphrase. */
  isProtected(): boolean {
    return this.readIdentity().encrypted !== undefined;
  }

  /**
   * Reads the key pair. A protected identity needs `passphrase`: without one this throws a
   * `passphrase_required` ClientError, and with a wrong one a {@linkcode WrongPassphraseError}.
   */
  async loadIdentity(passphrase?: string): Promise<KeyPair> {
    const info = this.readIdentity();
    const corrupt = (why: string) =>
      new ClientError("identity_corrupt", `identity file ${this.identityPath} is corrupt: ${why}`);
    let seed: Uint8Array;
    if (info.encrypted) {
      if (passphrase === undefined) {
        throw new ClientError(
          "passphrase_required",
          `the identity of profile ${this.profile} is protected by a passphrase`,
        );
      }
      const opened = decryptSeed(info.encrypted, passphrase);
      if (!opened) throw new WrongPassphraseError(this.profile);
      seed = opened;
    } else {
      seed = info.secretKey!.subarray(0, 32);
    }
    const kp = await keyPairFromSeedAsync(seed);
    if (toBase64(kp.publicKey) !== toBase64(info.publicKey)) {
      throw corrupt(
        info.encrypted
          ? "public_key does not match encrypted_secret_key"
          : "public_key does not match secret_key",
      );
    }
    if (info.secretKey && toBase64(kp.secretKey) !== toBase64(info.secretKey)) {
      throw corrupt("public_key does not match secret_key");
    }
    return kp;
  }

  /**
   * Atomically writes the identity (0600). With `passphrase`, the secret key is stored only
   * encrypted (scrypt with `kdf`, default {@linkcode DEFAULT_SCRYPT}, then secretbox). The caller
   * decides whether replacing is allowed.
   */
  saveIdentity(kp: KeyPair, opts: { passphrase?: string; kdf?: ScryptParams } = {}): void {
    const publicKey = toBase64(kp.publicKey);
    const text = opts.passphrase === undefined
      ? JSON.stringify({ v: 1, public_key: publicKey, secret_key: toBase64(kp.secretKey) })
      : JSON.stringify(
        {
          v: 2,
          public_key: publicKey,
          encrypted_secret_key: encryptSeed(
            kp.secretKey.subarray(0, 32),
            opts.passphrase,
            opts.kdf ?? DEFAULT_SCRYPT,
          ),
        },
        null,
        2,
      );
    this.#writeAtomic(this.identityPath, text + "\n");
  }

  // -- contacts -------------------------------------------------------------------------------

  /**
   * Reads contacts.json: the valid contacts sorted by name, and the entries that are not (a
   * value that is not a key, a name that is not a contact name), exactly as found, so writes can
   * keep them. Each of those is warned about once per store.
   */
  #readContacts(): { contacts: Contact[]; unreadable: Array<[string, unknown]> } {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.contactsPath);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return { contacts: [], unreadable: [] };
      throw ioError("read", this.contactsPath, e);
    }
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      throw new ClientError(
        "contacts_corrupt",
        `contacts file ${this.contactsPath} is corrupt: not valid JSON`,
      );
    }
    if (typeof o !== "object" || o === null || Array.isArray(o)) {
      throw new ClientError(
        "contacts_corrupt",
        `contacts file ${this.contactsPath} is corrupt: not a JSON object`,
      );
    }
    const parsed = parseContacts(o as Record<string, unknown>);
    for (const [name] of parsed.unreadable) {
      if (this.#warnedContacts.has(name)) continue;
      this.#warnedContacts.add(name);
      this.#warn(
        `ignoring contact ${JSON.stringify(name)} in ${this.contactsPath}: not a valid ` +
          "name and key (the entry is kept in the file as it is)",
      );
    }
    return parsed;
  }

  /** Saved contacts, sorted by name (entries that cannot be read are left out, with a warning). */
  loadContacts(): Contact[] {
    return this.#readContacts().contacts;
  }

  /**
   * Atomically replaces the contacts in contacts.json with `contacts`. Entries of the file that
   * could not be read are written back untouched: nothing the store did not understand is
   * dropped. A contact named like one of those entries is refused (`contacts_corrupt`), since
   * saving it would overwrite the entry.
   */
  saveContacts(contacts: Contact[]): void {
    const { unreadable } = this.#readContacts();
    const clash = unreadable.find(([name]) => contacts.some((c) => c.name === name));
    if (clash) {
      throw new ClientError(
        "contacts_corrupt",
        `contacts file ${this.contactsPath} has an entry ${
          JSON.stringify(clash[0])
        } that cannot be read; fix or remove it by hand first`,
      );
    }
    this.#writeAtomic(this.contactsPath, serializeContacts(contacts, unreadable));
  }

  // -- history --------------------------------------------------------------------------------

  /** Path of the history file for a peer key. */
  historyPath(peerKey: string): string {
    return join(this.messagesDir, `${keyToFileName(peerKey)}.jsonl`);
  }

  /** The history with a peer (opened once per store and cached). */
  history(peerKey: string): MessageLog {
    let log = this.#logs.get(peerKey);
    if (!log) {
      this.ensureDirs();
      log = MessageLog.open(this.historyPath(peerKey));
      if (log.skipped > 0) {
        this.#warn(`${log.path}: skipped ${log.skipped} unreadable line(s)`);
      }
      this.#logs.set(peerKey, log);
    }
    return log;
  }

  /** Keys of every peer with a history file. */
  peersWithHistory(): string[] {
    const keys: string[] = [];
    try {
      for (const entry of Deno.readDirSync(this.messagesDir)) {
        if (!entry.isFile || !entry.name.endsWith(".jsonl")) continue;
        const key = fileNameToKey(entry.name.slice(0, -".jsonl".length));
        if (key) keys.push(key);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw ioError("read", this.messagesDir, e);
    }
    return keys.sort();
  }

  // -- resolving what the user typed ------------------------------------------------------------

  /**
   * Resolves a contact name, a base64 key, or a fingerprint (of a contact or of a peer with
   * history) to a peer. Throws an `unknown_contact` ClientError naming the known contacts when nothing matches.
   */
  resolvePeer(text: string, opts: { allowUnknownKey?: boolean } = {}): Peer {
    const contacts = this.loadContacts();
    const name = normalizeContactName(text);
    const byName = contacts.find((c) => c.name === name);
    if (byName) {
      return { key: byName.key, name: byName.name, fingerprint: keyFingerprint(byName.key) };
    }
    if (decodePublicKey(text)) {
      const c = contacts.find((c) => c.key === text);
      if (c || opts.allowUnknownKey) {
        return { key: text, name: c?.name ?? null, fingerprint: keyFingerprint(text) };
      }
    }
    const fp = normalizeFingerprint(text);
    if (opts.allowUnknownKey && /^[0-9a-f]{20}$/.test(fp)) {
      const keys = new Set([...contacts.map((c) => c.key), ...this.peersWithHistory()]);
      for (const key of keys) {
        if (normalizeFingerprint(keyFingerprint(key)) === fp) {
          const c = contacts.find((c) => c.key === key);
          return { key, name: c?.name ?? null, fingerprint: keyFingerprint(key) };
        }
      }
    }
    const known = contacts.length === 0
      ? "no contacts saved yet"
      : `known contacts: ${contacts.map((c) => c.name).join(", ")}`;
    throw new ClientError("unknown_contact", `unknown contact ${JSON.stringify(text)}; ${known}`);
  }
}

/** Fingerprint of a base64 key (assumed valid). */
export function keyFingerprint(key: string): string {
  const bytes = decodePublicKey(key);
  if (!bytes) throw new TypeError(`not a public key: ${key}`);
  return fingerprint(bytes);
}

/** Opens the store of the profile selected on the command line, warning on stderr. */
export function openStore(
  env: (name: string) => string | undefined,
  profile: string,
  warn: (message: string) => void,
): ProfileStore {
  const home = env("HOME");
  if (!home) {
    throw new ClientError("no_home", "HOME is not set: cannot locate the profile directory");
  }
  return new ProfileStore({ home, profile, warn });
}
