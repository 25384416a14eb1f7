/**
 * The profile store: owns every file under `$HOME/.chat-<profile>/`.
 *
 * ```
 * ~/.chat-<profile>/            0700
 *   identity.json               0600  {"v":1,"public_key":b64,"secret_key":b64}, or with a
 *                                     passphrase {"v":2,"public_key":b64,
 *                                     "encrypted_secret_key":{...}} (see key_protection.ts)
 *   profile.json                0600  {"v":2,"at_rest":"plain"|"encrypted"}: the layout and how the
 *                                     files below were last written (absent: chat-p2p 1)
 *   contacts.json               0600  {"<name>": "<base64 key>" or {"key", "verified"}, ...}
 *                                     (see contacts.ts)
 *   config.json                 0600  per-profile settings (see config.ts), always in clear
 *   read.json                   0600  how far each conversation is read (see conversations.ts)
 *   pairs.json                  0600  derived pair mailboxes per contact (see client/mailboxes.ts)
 *   blocked.json                0600  keys whose requests are dropped
 *   receipts.json               0600  receipts not sent yet, per peer
 *   messages/                   0700
 *     <peer key, base64url>.jsonl     append-only history per peer key (see message_log.ts)
 *   sessions/                   0700
 *     <peer key, base64url>.json      the Double Ratchet sessions with that peer
 *   requests/                   0700
 *     <peer key, base64url>.json      first-contact messages from a key that is not a contact
 * ```
 *
 * Every file but identity.json and profile.json goes through one layer, store/at_rest.ts: with a
 * passphrase they are encrypted with the local-storage key (history line by line), without one
 * they are clear text. Whole files are replaced atomically: write a temporary file in the same
 * directory, fsync it, rename it over the old one, fsync the directory. History is keyed by the
 * peer's key, not by contact name, so messages from strangers are kept and show up under the
 * contact's name once the key is added.
 *
 * @module
 */
import { dirname, join } from "node:path";
import {
  decodePublicKey,
  fingerprint,
  fromBase64,
  type KeyPair,
  keyPairFromSeedAsync,
  localStorageKey,
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
import { type AtRestMode, codecFor, lockedError, type TextCodec } from "./at_rest.ts";
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

/** The layout version written to profile.json (chat-p2p 1 had no such file). */
export const PROFILE_LAYOUT = 2;

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
  /** Directory of per-peer ratchet session files. */
  readonly sessionsDir: string;
  /** Directory of first-contact requests. */
  readonly requestsDir: string;
  /** Path of profile.json (layout version, how the files are written). */
  readonly profilePath: string;
  readonly #warn: (message: string) => void;
  readonly #logs = new Map<string, MessageLog>();
  /** Set once the identity is read; see {@linkcode ProfileStore.atRest}. */
  #mode: AtRestMode | undefined;
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
    this.sessionsDir = join(this.dir, "sessions");
    this.requestsDir = join(this.dir, "requests");
    this.profilePath = join(this.dir, "profile.json");
    this.#warn = opts.warn ?? (() => {});
  }

  // -- directories and permissions ------------------------------------------------------------

  /** Creates the profile directory (0700) and its subdirectories if missing. */
  ensureDirs(): void {
    for (const d of [this.dir, this.messagesDir, this.sessionsDir, this.requestsDir]) {
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
   * Atomically replaces `path` (in the profile directory or one of its subdirectories) with
   * `text`: temp file in the same directory (0600), fsync, rename, fsync of the directory.
   */
  #writeAtomic(path: string, text: string): void {
    this.ensureDirs();
    const dir = dirname(path);
    const tmp = join(dir, `.${crypto.randomUUID()}.tmp`);
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
      const d = Deno.openSync(dir, { read: true });
      try {
        d.syncSync();
      } finally {
        d.close();
      }
    } catch {
      // Directory fsync is not available everywhere (Windows); the rename itself is atomic.
    }
  }

  // -- the other files, and encryption at rest -----------------------------------------------

  /** Files that stay in clear whatever the mode: settings, which hold nothing of anyone's. */
  static readonly CLEAR_FILES: ReadonlySet<string> = new Set(["config.json"]);

  /**
   * How files are written now: `plain` (no passphrase), `encrypted` (a passphrase, unlocked by
   * {@linkcode ProfileStore.loadIdentity}) or `locked` (a passphrase, not unlocked yet: files in
   * clear still read, encrypted ones and every write need the passphrase).
   */
  atRest(): AtRestMode {
    if (this.#mode) return this.#mode;
    if (!this.hasIdentity()) return { kind: "plain" }; // nothing to protect files with yet
    const info = this.readIdentity();
    this.#mode = info.encrypted
      ? { kind: "locked" }
      : { kind: "plain", key: localStorageKey(info.secretKey!.subarray(0, 32)) };
    return this.#mode;
  }

  /**
   * The codec of the profile file `name` (its path in the profile directory, which is also the
   * associated data that binds its encryption to that place): see store/at_rest.ts. `what` names
   * the contents in the error asking for the passphrase.
   */
  codec(name: string, what = "files"): TextCodec {
    if (ProfileStore.CLEAR_FILES.has(name)) return { encode: (t) => t, decode: (t) => t };
    return codecFor(() => this.atRest(), name, () => lockedError(this.profile, what));
  }

  /**
   * The text of the profile's file `name` (`config.json`, `sessions/<key>.json`, ...), through
   * the at-rest layer, or undefined when it does not exist. Throws `passphrase_required` for an
   * encrypted file before the identity is unlocked, and `io` for one that does not decrypt (it
   * is left as it is). For the modules that own such a file.
   */
  readFile(name: string, what?: string): string | undefined {
    const path = this.#fileOf(name);
    let stored: string;
    try {
      stored = Deno.readTextFileSync(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw ioError("read", path, e);
    }
    this.#checkFileMode(path);
    const plain = this.codec(name, what).decode(stored);
    if (plain === undefined) {
      throw new ClientError(
        "io",
        `cannot read ${path}: it does not decrypt with this identity's key (damaged, or moved ` +
          "from elsewhere); it is left as it is",
      );
    }
    return plain;
  }

  /** Atomically replaces the profile's file `name` (0600; through the at-rest layer). */
  writeFile(name: string, text: string, what?: string): void {
    const stored = this.codec(name, what).encode(text);
    this.#writeAtomic(this.#fileOf(name), stored.endsWith("\n") ? stored : stored + "\n");
  }

  /** Removes the profile's file `name`; nothing happens when it is not there. */
  removeFile(name: string): void {
    const path = this.#fileOf(name);
    try {
      Deno.removeSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw ioError("write", path, e);
    }
  }

  /** Path of the profile file `name`: a `.json` file in the profile, sessions/ or requests/. */
  #fileOf(name: string): string {
    if (!/^(?:(?:sessions|requests)\/[A-Za-z0-9_-]+|[a-z][a-z0-9_]*)\.json$/.test(name)) {
      throw new TypeError(`not a profile file: ${name}`);
    }
    return join(this.dir, name);
  }

  /**
   * Rewrites every file the at-rest layer covers in the current mode (after the passphrase was set
   * or removed, and when a profile of chat-p2p 1 is first unlocked), one file at a time,
   * atomically: a crash leaves each file in its old form or its new one, both readable. Lines
   * that do not decrypt are kept exactly as they are. Then records the mode in profile.json.
   */
  rewriteAtRest(): void {
    const mode = this.atRest();
    if (mode.kind === "locked") throw lockedError(this.profile, "files");
    for (const name of this.#atRestFiles()) {
      const text = this.readFile(name);
      if (text !== undefined) this.writeFile(name, text);
    }
    for (const key of this.peersWithHistory()) {
      const path = this.historyPath(key);
      const codec = this.codec(historyName(key), "history");
      let raw: string;
      try {
        raw = Deno.readTextFileSync(path);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        throw ioError("read", path, e);
      }
      const lines = raw.split("\n").filter((l) => l.trim() !== "").map((l) => {
        const plain = codec.decode(l);
        return plain === undefined ? l : codec.encode(plain);
      });
      this.#writeAtomic(path, lines.map((l) => l + "\n").join(""));
      this.#logs.delete(key);
    }
    this.#writeProfileMarker();
  }

  /** The whole files the at-rest layer covers (those that exist, or may). */
  *#atRestFiles(): Generator<string> {
    for (const e of readDirOrNothing(this.dir)) {
      if (e.isFile && e.name.endsWith(".json") && !UNLAYERED.has(e.name)) yield e.name;
    }
    for (const sub of ["sessions", "requests"]) {
      for (const key of keysInDir(join(this.dir, sub), ".json")) {
        yield `${sub}/${keyToFileName(key)}.json`;
      }
    }
  }

  #writeProfileMarker(): void {
    const mode = this.atRest();
    const atRest = mode.kind === "plain" ? "plain" : "encrypted";
    this.#writeAtomic(
      this.profilePath,
      JSON.stringify({ v: PROFILE_LAYOUT, at_rest: atRest }) + "\n",
    );
  }

  /** What profile.json says, or undefined (a profile of chat-p2p 1, or none yet). */
  #readProfileMarker(): { v: number; at_rest: string } | undefined {
    try {
      const o = JSON.parse(Deno.readTextFileSync(this.profilePath));
      return typeof o?.v === "number" && typeof o.at_rest === "string" ? o : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Brings the files up to date once the identity is unlocked: a profile of chat-p2p 1, or one
   * whose files were written in another mode (a crash during `passphrase`), is rewritten.
   */
  #upgrade(): void {
    const want = this.atRest().kind === "plain" ? "plain" : "encrypted";
    const marker = this.#readProfileMarker();
    if (marker && marker.v === PROFILE_LAYOUT && marker.at_rest === want) return;
    if (want === "encrypted" || marker) this.rewriteAtRest();
    else this.#writeProfileMarker(); // clear files stay clear
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
    this.#unlock(seed, info.encrypted !== undefined);
    this.#upgrade();
    return kp;
  }

  /** The at-rest mode once the seed is known (`protected`: the identity has a passphrase). */
  #unlock(seed: Uint8Array, isProtected: boolean): void {
    const key = localStorageKey(seed);
    this.#mode = isProtected ? { kind: "encrypted", key } : { kind: "plain", key };
  }

  /**
   * Atomically writes the identity (0600). With `passphrase`, the secret key is stored only
   * encrypted (scrypt with `kdf`, default {@linkcode DEFAULT_SCRYPT}, then secretbox). The caller
   * decides whether replacing is allowed.
   *
   * The same key pair with a passphrase set or removed: every file is rewritten encrypted, or in
   * clear ({@linkcode ProfileStore.rewriteAtRest}). Another key pair: what belonged to the old
   * identity (sessions, pair mailboxes, requests, receipts) is removed; history and contacts stay
   * (in files encrypted with the old identity's key they can no longer be read).
   */
  saveIdentity(kp: KeyPair, opts: { passphrase?: string; kdf?: ScryptParams } = {}): void {
    const publicKey = toBase64(kp.publicKey);
    let before: IdentityInfo | undefined;
    try {
      before = this.hasIdentity() ? this.readIdentity() : undefined;
    } catch {
      before = undefined; // a corrupt identity being replaced (init --force)
    }
    const sameKey = before !== undefined && toBase64(before.publicKey) === publicKey;
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
    if (before && !sameKey) this.#forgetIdentityState();
    this.#unlock(kp.secretKey.subarray(0, 32), opts.passphrase !== undefined);
    if (!before || !sameKey) this.#writeProfileMarker();
    else if ((before.encrypted !== undefined) !== (opts.passphrase !== undefined)) {
      this.rewriteAtRest();
    }
  }

  /** Removes the files derived from an identity that was just replaced. */
  #forgetIdentityState(): void {
    for (const dir of [this.sessionsDir, this.requestsDir]) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw ioError("write", dir, e);
      }
    }
    for (const name of ["pairs.json", "receipts.json"]) this.removeFile(name);
    this.#logs.clear();
  }

  // -- contacts -------------------------------------------------------------------------------

  /**
   * Reads contacts.json: the valid contacts sorted by name, and the entries that are not (a
   * value that is not a key, a name that is not a contact name), exactly as found, so writes can
   * keep them. Each of those is warned about once per store.
   */
  #readContacts(): { contacts: Contact[]; unreadable: Array<[string, unknown]> } {
    const text = this.readFile("contacts.json", "contacts");
    if (text === undefined) return { contacts: [], unreadable: [] };
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
    this.writeFile("contacts.json", serializeContacts(contacts, unreadable), "contacts");
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
      log = MessageLog.open(
        this.historyPath(peerKey),
        this.codec(historyName(peerKey), "messages"),
      );
      if (log.skipped > 0) {
        this.#warn(`${log.path}: skipped ${log.skipped} unreadable line(s)`);
      }
      this.#logs.set(peerKey, log);
    }
    return log;
  }

  /** Keys of every peer with a history file. */
  peersWithHistory(): string[] {
    return keysInDir(this.messagesDir, ".jsonl");
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

/** The name (path in the profile) of the history with `peerKey`: its at-rest label. */
export function historyName(peerKey: string): string {
  return `messages/${keyToFileName(peerKey)}.jsonl`;
}

/** identity.json and profile.json are not written through the at-rest layer. */
const UNLAYERED = new Set(["identity.json", "profile.json", ...ProfileStore.CLEAR_FILES]);

function readDirOrNothing(dir: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(dir)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw ioError("read", dir, e);
  }
}

/** The peer keys of the files named `<key, base64url><ext>` in `dir`, sorted. */
export function keysInDir(dir: string, ext: string): string[] {
  const keys: string[] = [];
  for (const entry of readDirOrNothing(dir)) {
    if (!entry.isFile || !entry.name.endsWith(ext)) continue;
    const key = fileNameToKey(entry.name.slice(0, -ext.length));
    if (key) keys.push(key);
  }
  return keys.sort();
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
