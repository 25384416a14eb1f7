import assert from "node:assert/strict";
import { join } from "node:path";
import { fromBase64, generateKeyPair, randomBytes, toBase64 } from "@chat-p2p/protocol";
import { ClientError } from "../errors.ts";
import { ReceiptQueue } from "../receipts.ts";
import { profileSealer } from "../sealing.ts";
import { isEncrypted, openText, sealText } from "./at_rest.ts";
import { filesUnder } from "../../tests/cli_helpers.ts";
import { ProfileStore } from "./profile_store.ts";
import { RequestStore } from "./requests.ts";

const FAST = { N: 1024, r: 8, p: 1 };
const PASS = "correct horse battery";

Deno.test("at rest: a sealed text opens only with its key and label, and not once altered", () => {
  const key = randomBytes(32);
  const sealed = sealText(key, "history A", "hello");
  assert.ok(isEncrypted(sealed) && !sealed.includes("hello"));
  assert.equal(openText(key, "history A", sealed), "hello");
  assert.equal(openText(key, "history B", sealed), undefined, "moved to another file");
  assert.equal(openText(randomBytes(32), "history A", sealed), undefined, "another identity");
  const bytes = fromBase64(JSON.parse(sealed).$enc)!;
  bytes[30] ^= 1; // one bit of the ciphertext
  assert.equal(openText(key, "history A", JSON.stringify({ $enc: toBase64(bytes) })), undefined);
  assert.notEqual(sealText(key, "x", "same"), sealText(key, "x", "same"), "a fresh nonce each");
});

/** A profile with a passphrase and a bit of everything in it. */
async function filledProfile(home: string) {
  const store = new ProfileStore({ home, profile: "p" });
  const kp = generateKeyPair();
  store.saveIdentity(kp, { passphrase: PASS, kdf: FAST });
  const bob = generateKeyPair();
  const bobKey = toBase64(bob.publicKey);
  const carolKey = toBase64(generateKeyPair().publicKey);
  store.saveContacts([{ name: "bob", key: bobKey }]);
  const at = new Date().toISOString();
  store.history(bobKey).appendMessage({
    id: "m1",
    dir: "out",
    text: "SECRET-TEXT",
    sent_at: at,
    at,
  });
  const sealer = profileSealer(store, kp);
  sealer.encrypt(bobKey, { v: 2, kind: "message", id: "0".repeat(32), text: "x", sent_at: at });
  await sealer.mailboxes.ensure([bobKey]);
  new RequestStore(store).add(carolKey, [{ id: "r1", text: "SECRET-REQUEST", sent_at: at, at }]);
  new RequestStore(store).block(toBase64(generateKeyPair().publicKey));
  const q = new ReceiptQueue(store);
  q.add(bobKey, ["1".repeat(32)]);
  q.save();
  return { store, kp, bobKey, carolKey };
}

Deno.test("at rest: with a passphrase no profile file holds a text, a key or a session in clear", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-p2p-rest-" });
  try {
    const { store, kp, bobKey, carolKey } = await filledProfile(home);
    const files = filesUnder(store.dir);
    const names = [...files.keys()].map((p) => p.slice(store.dir.length + 1)).sort();
    assert.deepEqual(
      names.filter((n) =>
        !n.startsWith("sessions/") && !n.startsWith("requests/") && !n.startsWith("messages/")
      ),
      [
        "blocked.json",
        "contacts.json",
        "identity.json",
        "pairs.json",
        "profile.json",
        "receipts.json",
      ],
    );
    for (const [path, text] of files) {
      if (path.endsWith("identity.json") || path.endsWith("profile.json")) continue;
      for (const line of text.split("\n").filter(Boolean)) assert.ok(isEncrypted(line), path);
      for (const secret of ["SECRET-TEXT", "SECRET-REQUEST", '"rk"', bobKey, carolKey]) {
        assert.ok(!text.includes(secret), `${secret} in ${path}`);
      }
    }

    // Another run, not unlocked: nothing encrypted can be read, nothing written.
    const locked = new ProfileStore({ home, profile: "p" });
    for (const read of [() => locked.loadContacts(), () => locked.history(bobKey).entries()]) {
      assert.throws(
        read,
        (e: unknown) => e instanceof ClientError && e.code === "passphrase_required",
      );
    }
    assert.throws(
      () => locked.saveContacts([]),
      (e: unknown) => e instanceof ClientError && e.code === "passphrase_required",
    );
    await locked.loadIdentity(PASS);
    assert.deepEqual(locked.loadContacts(), [{ name: "bob", key: bobKey }]);
    assert.deepEqual(locked.history(bobKey).entries().map((e) => e.text), ["SECRET-TEXT"]);
    assert.deepEqual(new RequestStore(locked).list().map((r) => r.key), [carolKey]);

    // The key is the identity's, not the passphrase's: changing the passphrase rewrites nothing.
    const before = filesUnder(join(store.dir, "messages"));
    locked.saveIdentity(kp, { passphrase: "another one", kdf: FAST });
    assert.deepEqual(filesUnder(join(store.dir, "messages")), before);

    // A history line moved into another conversation's file does not open there.
    const bobFile = locked.historyPath(bobKey);
    Deno.writeTextFileSync(locked.historyPath(carolKey), Deno.readTextFileSync(bobFile));
    const other = new ProfileStore({ home, profile: "p" });
    await other.loadIdentity("another one");
    assert.deepEqual(other.history(carolKey).entries(), []);
    assert.equal(other.history(carolKey).skipped, 1);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("at rest: removing the passphrase writes every file in clear again, setting it encrypts them", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-p2p-rest-" });
  try {
    const { store, kp, bobKey } = await filledProfile(home);
    store.saveIdentity(kp); // passphrase removed
    const clear = filesUnder(store.dir);
    assert.ok([...clear.values()].join("").includes("SECRET-TEXT"));
    for (const [path, text] of clear) {
      for (const line of text.split("\n").filter(Boolean)) assert.ok(!isEncrypted(line), path);
    }
    const fresh = new ProfileStore({ home, profile: "p" });
    assert.deepEqual(fresh.history(bobKey).entries().map((e) => e.text), ["SECRET-TEXT"]);
    assert.equal(JSON.parse(Deno.readTextFileSync(store.profilePath)).at_rest, "plain");

    fresh.saveIdentity(kp, { passphrase: PASS, kdf: FAST });
    assert.ok(![...filesUnder(store.dir).values()].join("").includes("SECRET-TEXT"));
    assert.equal(JSON.parse(Deno.readTextFileSync(store.profilePath)).at_rest, "encrypted");
    // A crash half-way leaves some files in clear and some encrypted: both read, and the next
    // unlock finishes the job (profile.json still names the old mode).
    Deno.writeTextFileSync(store.contactsPath, JSON.stringify({ bob: bobKey }));
    Deno.writeTextFileSync(store.profilePath, JSON.stringify({ v: 2, at_rest: "plain" }));
    const after = new ProfileStore({ home, profile: "p" });
    await after.loadIdentity(PASS);
    assert.deepEqual(after.loadContacts(), [{ name: "bob", key: bobKey }]);
    assert.ok(isEncrypted(Deno.readTextFileSync(store.contactsPath)));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
