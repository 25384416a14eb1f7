/**
 * Contacts: named keys, what a name may be, the format of `contacts.json`, and the changes people
 * make to them (add, remove, rename, mark verified), with the rules that keep a verified key from
 * changing silently.
 *
 * **Names** are what people call each other, in any script (`Zoë`, `李雷`, `Ana María`), stored
 * NFC-normalised so the same name typed two ways is one name. A name is only ever a label: it
 * never becomes part of a file name (history is kept under the peer's key), and it is printed on
 * terminals, so it may not hold control, format (bidi overrides, zero-width joiners and spaces),
 * private-use or unassigned characters, or any space but U+0020. See
 * {@linkcode explainContactName} for the whole rule.
 *
 * **contacts.json** maps names to keys. An unverified contact is `"name": "<base64 key>"` (the
 * format older versions wrote and read); a contact whose safety number was confirmed is
 * `"name": {"key": "<base64 key>", "verified": {"key": "<the key verified>", "at": "<ISO time>"}}`.
 * The verified key is kept when the contact's key is replaced (`add-contact --force`), so the
 * change stays visible until the new key is verified. Entries that are neither are kept in the
 * file as they are (see `ProfileStore.saveContacts`).
 *
 * @module
 */
import { decodePublicKey } from "@chat-p2p/protocol";
import { ClientError } from "../errors.ts";
import { countCharacters } from "../limits.ts";

/** When a contact's key was verified, and which key that was. */
export interface Verification {
  /** The base64 key whose safety number was confirmed. */
  key: string;
  /** ISO time it was confirmed. */
  at: string;
}

/** A saved contact. */
export interface Contact {
  /** The name, NFC-normalised. */
  name: string;
  /** Base64 Ed25519 public key. */
  key: string;
  /** Set once the safety number was confirmed (for `key`, or for an earlier key). */
  verified?: Verification;
}

/** Whether a contact's key is the one whose safety number was confirmed. */
export type VerificationState =
  /** Never verified. */
  | "unverified"
  /** The current key was verified. */
  | "verified"
  /** A key was verified, and the contact's key has changed since. */
  | "changed";

/** The verification state of `c`. */
export function verificationState(c: Contact): VerificationState {
  if (!c.verified) return "unverified";
  return c.verified.key === c.key ? "verified" : "changed";
}

/** Most characters (grapheme clusters) in a name, and most UTF-8 bytes. */
const MAX_NAME_CHARACTERS = 32;
const MAX_NAME_BYTES = 128;
/** Characters a name may never hold: controls, format, private use, unassigned, separators. */
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}]|(?! )\p{Zs}/u;
const ALLOWED = /^[\p{L}\p{M}\p{N}_.' -]*$/u;
const FIRST = /^[\p{L}\p{N}]/u;

/** A contact name as stored and compared: NFC. */
export function normalizeContactName(name: string): string {
  return name.normalize("NFC");
}

/**
 * Explains why `name` (after NFC normalisation) is not a valid contact name, or returns undefined.
 * A name is 1-32 characters: letters and digits of any script, combining marks, spaces, `_`,
 * `-`, `.` and `'`; it starts with a letter or digit, has no space at its end and no two in a
 * row, and is not 20 hex digits (it would hide a fingerprint).
 */
export function explainContactName(name: string): string | undefined {
  const n = normalizeContactName(name);
  if (n.length === 0) return "the name is empty";
  const bad = FORBIDDEN.exec(n);
  if (bad) {
    const cp = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    return `the name contains U+${cp}, an invisible, control or direction-changing character`;
  }
  const chars = countCharacters(n);
  if (chars > MAX_NAME_CHARACTERS || new TextEncoder().encode(n).length > MAX_NAME_BYTES) {
    return `the name is ${chars} characters long; at most ${MAX_NAME_CHARACTERS} are allowed`;
  }
  if (!ALLOWED.test(n) || !FIRST.test(n) || n.endsWith(" ") || n.includes("  ")) {
    return "use letters and digits (any script), spaces, '_', '-', '.' or ''', starting with a " +
      "letter or digit, with single spaces between words";
  }
  if (/^[0-9a-f]{20}$/i.test(n.replace(/[\s:]/g, ""))) {
    return "a name may not look like a fingerprint";
  }
  return undefined;
}

/** The form under which two names count as the same: NFKC, lower case ("Bob" and "ｂｏｂ"). */
function foldName(name: string): string {
  return name.normalize("NFKC").toLowerCase();
}

/** Parses one value of contacts.json; undefined when it is not a contact. */
function parseEntry(name: string, value: unknown): Contact | undefined {
  if (explainContactName(name) !== undefined) return undefined;
  const isKey = (k: unknown): k is string => typeof k === "string" && !!decodePublicKey(k);
  if (isKey(value)) return { name: normalizeContactName(name), key: value };
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const o = value as Record<string, unknown>;
  if (!isKey(o.key)) return undefined;
  if (o.verified === undefined) return { name: normalizeContactName(name), key: o.key };
  const v = o.verified as Record<string, unknown> | null;
  if (typeof v !== "object" || v === null || !isKey(v.key) || typeof v.at !== "string") {
    return undefined;
  }
  return { name: normalizeContactName(name), key: o.key, verified: { key: v.key, at: v.at } };
}

/** What {@linkcode parseContacts} found. */
export interface ParsedContacts {
  /** The contacts, sorted by name. */
  contacts: Contact[];
  /** Entries that are not contacts, exactly as found (written back as they are). */
  unreadable: Array<[string, unknown]>;
}

/** Reads the object of contacts.json. */
export function parseContacts(o: Record<string, unknown>): ParsedContacts {
  const contacts: Contact[] = [];
  const unreadable: Array<[string, unknown]> = [];
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(o)) {
    const c = parseEntry(name, value);
    if (!c || seen.has(c.name)) unreadable.push([name, value]);
    else {
      seen.add(c.name);
      contacts.push(c);
    }
  }
  contacts.sort(byName);
  return { contacts, unreadable };
}

function byName(a: Contact, b: Contact): number {
  return a.name.localeCompare(b.name);
}

/** The text of contacts.json for `contacts`, with `unreadable` entries kept as they were. */
export function serializeContacts(
  contacts: readonly Contact[],
  unreadable: ReadonlyArray<[string, unknown]> = [],
): string {
  const entries = [...contacts].sort(byName).map((c): [string, unknown] => [
    c.name,
    c.verified ? { key: c.key, verified: c.verified } : c.key,
  ]);
  // fromEntries defines own properties, so a name like "__proto__" stays an entry.
  return JSON.stringify(Object.fromEntries([...entries, ...unreadable]), null, 2) + "\n";
}

/** Where contacts are read and written: the profile store. */
export interface ContactStore {
  /** The contacts, sorted by name. */
  loadContacts(): Contact[];
  /** Replaces the contacts (atomically). */
  saveContacts(contacts: Contact[]): void;
}

function invalidName(name: string): ClientError | undefined {
  const why = explainContactName(name);
  return why === undefined ? undefined : new ClientError(
    "invalid_contact_name",
    `invalid contact name ${JSON.stringify(name)}: ${why}`,
  );
}

/** The contact named `name` (NFC), or an `unknown_contact` error naming the known ones. */
function find(contacts: Contact[], name: string): Contact {
  const n = normalizeContactName(name);
  const c = contacts.find((c) => c.name === n);
  if (c) return c;
  const known = contacts.length === 0
    ? "no contacts saved yet"
    : `known contacts: ${contacts.map((c) => c.name).join(", ")}`;
  throw new ClientError("unknown_contact", `unknown contact ${JSON.stringify(name)}; ${known}`);
}

/** A contact whose name counts as the same as `name` (other than `except`). */
function sameName(contacts: Contact[], name: string, except?: Contact): Contact | undefined {
  const folded = foldName(name);
  return contacts.find((c) => c !== except && foldName(c.name) === folded);
}

/** What {@linkcode addContact} did. */
export interface AddResult {
  /** The contact as saved. */
  contact: Contact;
  /** The contact it replaced (same name, another key), with `force`. */
  replaced?: Contact;
}

/**
 * Saves `key` as contact `name`. Refused (`contact_exists`) when the key is saved under another
 * name, or another contact's name differs from `name` only in case or width. A contact of that
 * very name with another key is replaced only with `force`; without it, the refusal is
 * `key_changed` when its key was verified (a new key means a reinstall, or someone in between)
 * and `contact_exists` otherwise. A replaced contact's verification stays with its old key, so
 * the new key shows as `changed` until it is verified.
 */
export function addContact(
  store: ContactStore,
  name: string,
  key: string,
  opts: { force?: boolean } = {},
): AddResult {
  const bad = invalidName(name);
  if (bad) throw bad;
  const n = normalizeContactName(name);
  const contacts = store.loadContacts();
  const byKey = contacts.find((c) => c.key === key);
  if (byKey && byKey.name === n) {
    throw new ClientError("contact_exists", `${n} is already saved with this key`);
  }
  if (byKey) {
    throw new ClientError("contact_exists", `this key is already saved as ${byKey.name}`);
  }
  const existing = contacts.find((c) => c.name === n);
  const similar = sameName(contacts, n);
  if (similar && similar !== existing) {
    throw new ClientError(
      "contact_exists",
      `a contact named ${similar.name} already exists; names that differ only in case or ` +
        "width are too easy to mix up",
    );
  }
  if (existing && !opts.force) {
    if (verificationState(existing) === "verified") {
      throw new ClientError(
        "key_changed",
        `${n} is saved with a verified key (verified ${existing.verified!.at}); this is another ` +
          "key. A new key means a new install, or someone between you",
      );
    }
    throw new ClientError("contact_exists", `a contact named ${n} already exists with another key`);
  }
  const contact: Contact = existing?.verified
    ? { name: n, key, verified: existing.verified }
    : { name: n, key };
  store.saveContacts([...contacts.filter((c) => c !== existing), contact]);
  return existing ? { contact, replaced: existing } : { contact };
}

/** Removes contact `name`; returns it. History with its key stays (under the key). */
export function removeContact(store: ContactStore, name: string): Contact {
  const contacts = store.loadContacts();
  const c = find(contacts, name);
  store.saveContacts(contacts.filter((x) => x !== c));
  return c;
}

/** Renames contact `from` to `to`, keeping its key and verification; returns it renamed. */
export function renameContact(store: ContactStore, from: string, to: string): Contact {
  const bad = invalidName(to);
  if (bad) throw bad;
  const contacts = store.loadContacts();
  const c = find(contacts, from);
  const n = normalizeContactName(to);
  const taken = sameName(contacts, n, c);
  if (taken) {
    throw new ClientError(
      "contact_exists",
      taken.name === n
        ? `a contact named ${n} already exists`
        : `a contact named ${taken.name} already exists; names that differ only in case or ` +
          "width are too easy to mix up",
    );
  }
  const renamed = { ...c, name: n };
  store.saveContacts([...contacts.filter((x) => x !== c), renamed]);
  return renamed;
}

/** Records that the safety number of contact `name`'s current key was confirmed at `at`. */
export function markVerified(store: ContactStore, name: string, at: Date): Contact {
  const contacts = store.loadContacts();
  const c = find(contacts, name);
  const verified = { ...c, verified: { key: c.key, at: at.toISOString() } };
  store.saveContacts([...contacts.filter((x) => x !== c), verified]);
  return verified;
}
