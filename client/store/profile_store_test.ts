import assert from "node:assert/strict";
import { join } from "node:path";
import { fingerprint, generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { ClientError } from "../errors.ts";
import { explainContactName } from "./contacts.ts";
import {
  fileNameToKey,
  keyToFileName,
  normalizeFingerprint,
  ProfileStore,
} from "./profile_store.ts";

function store(home: string, warnings: string[] = [], profile = "default"): ProfileStore {
  return new ProfileStore({ home, profile, warn: (m) => warnings.push(m) });
}

function mode(path: string): number {
  return (Deno.statSync(path).mode ?? 0) & 0o777;
}

Deno.test("ProfileStore: identity is written 0600 in a 0700 directory and read back", async () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  try {
    const s = store(home);
    assert.equal(s.hasIdentity(), false);
    const kp = generateKeyPair();
    s.saveIdentity(kp);
    assert.equal(s.dir, join(home, ".chat-default"));
    assert.equal(mode(s.dir), 0o700);
    assert.equal(mode(s.messagesDir), 0o700);
    assert.equal(mode(s.identityPath), 0o600);
    const o = JSON.parse(Deno.readTextFileSync(s.identityPath));
    assert.deepEqual(Object.keys(o).sort(), ["public_key", "secret_key", "v"]);
    assert.equal(o.v, 1);
    assert.equal(o.public_key, toBase64(kp.publicKey));
    const back = await s.loadIdentity();
    assert.deepEqual(back.publicKey, kp.publicKey);
    assert.deepEqual(back.secretKey, kp.secretKey);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("ProfileStore: atomic replace leaves no temp files and a new inode", async () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  try {
    const s = store(home);
    s.saveIdentity(generateKeyPair());
    const ino = Deno.statSync(s.identityPath).ino;
    const kp2 = generateKeyPair();
    s.saveIdentity(kp2);
    assert.notEqual(Deno.statSync(s.identityPath).ino, ino, "replaced by rename, not rewritten");
    assert.deepEqual((await s.loadIdentity()).publicKey, kp2.publicKey);
    s.saveContacts([{ name: "bob", key: toBase64(generateKeyPair().publicKey) }]);
    const names = [...Deno.readDirSync(s.dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["contacts.json", "identity.json", "messages"]);
    assert.equal(mode(s.contactsPath), 0o600);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("ProfileStore: warns when the directory or identity file is too open", async () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  try {
    store(home).saveIdentity(generateKeyPair());
    const dir = join(home, ".chat-default");
    Deno.chmodSync(dir, 0o755);
    Deno.chmodSync(join(dir, "identity.json"), 0o644);
    const warnings: string[] = [];
    await store(home, warnings).loadIdentity();
    assert.equal(warnings.length, 2);
    assert.match(warnings[0], /accessible by other users \(mode 0755\).*chmod 700/);
    assert.match(warnings[1], /readable by other users \(mode 0644\).*chmod 600/);
    Deno.chmodSync(dir, 0o700);
    Deno.chmodSync(join(dir, "identity.json"), 0o600);
    const none: string[] = [];
    await store(home, none).loadIdentity();
    assert.deepEqual(none, []);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("ProfileStore: missing or corrupt identity gives a clear error", async () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  try {
    const s = store(home, [], "alice");
    await assert.rejects(() => s.loadIdentity(), (e: unknown) => {
      assert.ok(e instanceof ClientError);
      assert.equal(e.message, "no identity for profile alice");
      assert.equal(e.code, "no_identity");
      return true;
    });
    s.saveIdentity(generateKeyPair());
    const o = JSON.parse(Deno.readTextFileSync(s.identityPath));
    o.public_key = toBase64(generateKeyPair().publicKey);
    Deno.writeTextFileSync(s.identityPath, JSON.stringify(o));
    await assert.rejects(() => s.loadIdentity(), /does not match secret_key/);
    Deno.writeTextFileSync(s.identityPath, "{oops");
    await assert.rejects(() => s.loadIdentity(), /corrupt: not valid JSON/);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("ProfileStore: contacts round-trip as a name -> key object", () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  try {
    const s = store(home);
    assert.deepEqual(s.loadContacts(), []);
    const k1 = toBase64(generateKeyPair().publicKey);
    const k2 = toBase64(generateKeyPair().publicKey);
    s.saveContacts([{ name: "zed", key: k2 }, { name: "amy", key: k1 }]);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(s.contactsPath)), { amy: k1, zed: k2 });
    assert.deepEqual(s.loadContacts(), [{ name: "amy", key: k1 }, { name: "zed", key: k2 }]);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("ProfileStore: contacts it cannot read are warned about and written back untouched", () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  try {
    const warnings: string[] = [];
    const s = store(home, warnings);
    s.ensureDirs();
    const amy = toBase64(generateKeyPair().publicKey);
    const odd = `{"amy":"${amy}","bad name!":"${amy}","carol":"not a key",` +
      `"dave":{"key":"${amy}","verified":true},"__proto__":42}`;
    Deno.writeTextFileSync(s.contactsPath, odd);
    assert.deepEqual(s.loadContacts(), [{ name: "amy", key: amy }]);
    assert.equal(warnings.length, 4);
    assert.match(warnings[1], /ignoring contact "carol" in .*contacts\.json: .*kept in the file/);

    const bob = toBase64(generateKeyPair().publicKey);
    s.saveContacts([...s.loadContacts(), { name: "bob", key: bob }]);
    const written = JSON.parse(Deno.readTextFileSync(s.contactsPath));
    assert.deepEqual(Object.keys(written).sort(), [
      "__proto__",
      "amy",
      "bad name!",
      "bob",
      "carol",
      "dave",
    ]);
    assert.deepEqual(written.dave, { key: amy, verified: true });
    assert.equal(written.carol, "not a key");
    assert.equal(Object.getOwnPropertyDescriptor(written, "__proto__")?.value, 42);
    assert.equal(warnings.length, 4, "each entry is warned about once per store");

    // Saving a contact under the name of an entry it cannot read would overwrite it: refused.
    assert.throws(
      () => s.saveContacts([{ name: "carol", key: bob }]),
      (e: unknown) =>
        e instanceof ClientError && e.code === "contacts_corrupt" && /"carol"/.test(e.message),
    );
    assert.equal(JSON.parse(Deno.readTextFileSync(s.contactsPath)).carol, "not a key");
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("ProfileStore: a file system failure is a ClientError with code io, naming the path", () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  try {
    // The profile directory's place is taken by a file: nothing can be created under it.
    Deno.writeTextFileSync(join(home, ".chat-default"), "");
    const s = store(home);
    assert.throws(() => s.saveIdentity(generateKeyPair()), (e: unknown) => {
      assert.ok(e instanceof ClientError);
      assert.equal(e.code, "io");
      assert.match(e.message, /^cannot write .*\.chat-default/);
      return true;
    });
    assert.throws(
      () => s.history(toBase64(generateKeyPair().publicKey)),
      (e: unknown) => e instanceof ClientError && e.code === "io",
    );
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("ProfileStore: history is per peer key, files named by base64url key", () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  try {
    const s = store(home);
    // A key with '+' and '/' in base64, to check the file name mapping.
    let key = "";
    while (!/[+/]/.test(key)) key = toBase64(generateKeyPair().publicKey);
    const log = s.history(key);
    log.appendMessage({ id: "abcdefgh", dir: "in", text: "hi", sent_at: "s", at: "a" });
    const name = keyToFileName(key);
    assert.match(name, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(fileNameToKey(name), key);
    assert.equal(s.historyPath(key), join(s.messagesDir, `${name}.jsonl`));
    assert.deepEqual(s.peersWithHistory(), [key]);
    // Saving the key as a contact later shows the same history.
    s.saveContacts([{ name: "stranger", key }]);
    const fresh = store(home);
    const peer = fresh.resolvePeer("stranger");
    assert.deepEqual(fresh.history(peer.key).entries().map((e) => e.text), ["hi"]);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("ProfileStore.resolvePeer: name, key, fingerprint, and unknown names", () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  try {
    const s = store(home);
    const bobKp = generateKeyPair();
    const bob = toBase64(bobKp.publicKey);
    const strangerKp = generateKeyPair();
    const stranger = toBase64(strangerKp.publicKey);
    s.saveContacts([{ name: "bob", key: bob }]);
    s.history(stranger).appendMessage({
      id: "abcdefgh",
      dir: "in",
      text: "x",
      sent_at: "s",
      at: "a",
    });
    assert.equal(s.resolvePeer("bob").key, bob);
    assert.equal(s.resolvePeer(bob).name, "bob");
    assert.throws(() => s.resolvePeer(stranger), /unknown contact/);
    assert.deepEqual(s.resolvePeer(stranger, { allowUnknownKey: true }).name, null);
    const fp = fingerprint(strangerKp.publicKey);
    assert.equal(s.resolvePeer(fp, { allowUnknownKey: true }).key, stranger);
    assert.equal(s.resolvePeer(normalizeFingerprint(fp), { allowUnknownKey: true }).key, stranger);
    assert.throws(() => s.resolvePeer("carol"), /unknown contact "carol"; known contacts: bob/);
    const empty = store(join(home, "other"));
    assert.throws(() => empty.resolvePeer("x"), /no contacts saved yet/);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("profile and contact names are validated", () => {
  assert.throws(() => store("/nonexistent", [], "../evil"), ClientError);
  assert.throws(() => store("/nonexistent", [], ""), ClientError);
  assert.throws(() => store("/nonexistent", [], ".hidden"), ClientError);
  assert.equal(explainContactName("bob"), undefined);
  assert.equal(explainContactName("b.o_b-1"), undefined);
  assert.equal(explainContactName("9lives"), undefined);
  assert.match(explainContactName("")!, /empty/);
  assert.match(explainContactName("-bob")!, /starting with a letter or digit/);
  assert.match(explainContactName("bob/smith")!, /letters and digits/);
  assert.match(explainContactName("x".repeat(33))!, /at most 32/);
  assert.equal(explainContactName("x".repeat(32)), undefined);
});
