import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { ClientError } from "../errors.ts";
import {
  addContact,
  type Contact,
  explainContactName,
  markVerified,
  parseContacts,
  removeContact,
  renameContact,
  serializeContacts,
  verificationState,
} from "./contacts.ts";
import { ProfileStore } from "./profile_store.ts";

const newKey = () => toBase64(generateKeyPair().publicKey);

/** A store of contacts in memory, as contacts.json would hold them. */
function memoryStore(): {
  loadContacts(): Contact[];
  saveContacts(c: Contact[]): void;
  text: string;
} {
  const s = {
    text: "{}",
    loadContacts: () => parseContacts(JSON.parse(s.text)).contacts,
    saveContacts: (c: Contact[]) => void (s.text = serializeContacts(c)),
  };
  return s;
}

function code(c: string) {
  return (e: unknown) => e instanceof ClientError && e.code === c;
}

Deno.test("contact names: any script, NFC, nothing invisible, no terminal or path tricks", () => {
  for (
    const ok of ["Zoë", "李雷", "Ana María", "O'Brien", "ñandú-2", "Zoe\u0308", "x".repeat(32)]
  ) {
    assert.equal(explainContactName(ok), undefined, ok);
  }
  const refused: Array<[string, RegExp]> = [
    ["", /empty/],
    ["bob\u202Eevil", /U\+202E, an invisible, control or direction-changing/],
    ["b\u200Bob", /U\+200B/],
    ["bob\x1b[31m", /U\+001B/],
    ["bob\nsmith", /U\+000A/],
    ["bob\u00A0smith", /U\+00A0/],
    ["../bob", /starting with a letter or digit/],
    ["bob/x", /letters and digits/],
    ["bob ", /single spaces/],
    ["bo  b", /single spaces/],
    ["-bob", /starting with/],
    ["x".repeat(33), /33 characters long; at most 32/],
    ["0123 4567 89ab cdef 0123", /look like a fingerprint/],
  ];
  for (const [name, re] of refused) assert.match(explainContactName(name) ?? "", re, name);
});

Deno.test("contacts: add, rename, remove; a name is stored NFC and found either way", () => {
  const s = memoryStore();
  const zoe = newKey();
  const { contact } = addContact(s, "Zoe\u0308", zoe); // e + combining diaeresis
  assert.equal(contact.name, "Zoë");
  assert.deepEqual(JSON.parse(s.text), { "Zoë": zoe });
  assert.throws(() => addContact(s, "Zoë", zoe), /already saved with this key/);
  assert.throws(() => addContact(s, "other", zoe), /already saved as Zoë/);
  assert.throws(() => addContact(s, "ZOË", newKey()), code("contact_exists"));
  assert.throws(() => addContact(s, "ｚｏë", newKey()), /differ only in case or width/);
  assert.throws(() => addContact(s, "bad\u202E", newKey()), code("invalid_contact_name"));

  const bob = newKey();
  addContact(s, "bob", bob);
  assert.throws(() => renameContact(s, "bob", "zoë"), /differ only in case/);
  assert.deepEqual(renameContact(s, "Zoe\u0308", "Zoë Smith"), { name: "Zoë Smith", key: zoe });
  assert.throws(() => renameContact(s, "nobody", "x"), code("unknown_contact"));
  assert.deepEqual(removeContact(s, "bob"), { name: "bob", key: bob });
  assert.deepEqual(s.loadContacts(), [{ name: "Zoë Smith", key: zoe }]);
});

Deno.test("contacts: a verified key is not replaced without force, and the change stays visible", () => {
  const s = memoryStore();
  const k1 = newKey();
  addContact(s, "bob", k1);
  assert.equal(verificationState(s.loadContacts()[0]), "unverified");
  const at = new Date("2026-11-25T10:00:00Z");
  markVerified(s, "bob", at);
  assert.deepEqual(JSON.parse(s.text).bob, {
    key: k1,
    verified: { key: k1, at: "2026-11-25T10:00:00.000Z" },
  });
  assert.equal(verificationState(s.loadContacts()[0]), "verified");
  renameContact(s, "bob", "Bobby");
  assert.equal(verificationState(s.loadContacts()[0]), "verified", "a rename keeps it");

  const k2 = newKey();
  assert.throws(() => addContact(s, "Bobby", k2), (e: unknown) => {
    assert.ok(e instanceof ClientError && e.code === "key_changed");
    assert.match(e.message, /verified key \(verified 2026-11-25T10:00:00.000Z\); this is another/);
    return true;
  });
  assert.equal(s.loadContacts()[0].key, k1, "unchanged");
  const { replaced } = addContact(s, "Bobby", k2, { force: true });
  assert.equal(replaced?.key, k1);
  const now = s.loadContacts()[0];
  assert.equal(now.key, k2);
  assert.equal(verificationState(now), "changed");
  markVerified(s, "Bobby", at);
  assert.equal(verificationState(s.loadContacts()[0]), "verified");
});

Deno.test("contacts.json: the old format reads, verified entries are objects, odd ones are kept", () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-contacts-" });
  try {
    const warnings: string[] = [];
    const store = new ProfileStore({ home, profile: "p", warn: (m) => warnings.push(m) });
    store.ensureDirs();
    const [a, b] = [newKey(), newKey()];
    Deno.writeTextFileSync(
      store.contactsPath,
      JSON.stringify({
        amy: a,
        "Zoe\u0308": b, // written by hand in NFD: read as NFC
        eve: { key: a, verified: "yes" },
      }),
    );
    assert.deepEqual(store.loadContacts(), [{ name: "amy", key: a }, { name: "Zoë", key: b }]);
    assert.equal(warnings.length, 1);
    markVerified(store, "Zoë", new Date(0));
    const written = JSON.parse(Deno.readTextFileSync(store.contactsPath));
    assert.deepEqual(written, {
      amy: a,
      "Zoë": { key: b, verified: { key: b, at: "1970-01-01T00:00:00.000Z" } },
      eve: { key: a, verified: "yes" },
    });
    assert.equal(store.resolvePeer("Zoe\u0308").name, "Zoë");
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
