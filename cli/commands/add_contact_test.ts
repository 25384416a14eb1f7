import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { runInProcess, tempHome } from "../testing.ts";

async function withProfile(fn: (home: string, me: string) => Promise<void>): Promise<void> {
  const home = tempHome();
  try {
    const me = (await runInProcess(["init"], { home })).stdout.trim();
    await fn(home, me);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
}

const newKey = () => toBase64(generateKeyPair().publicKey);

Deno.test("add-contact saves a contact; contacts lists it", async () => {
  await withProfile(async (home) => {
    const key = newKey();
    const r = await runInProcess(["add-contact", "bob", key], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /added bob \(fingerprint [0-9a-f ]{24}\)/);
    const list = await runInProcess(["contacts", "--json"], { home });
    const o = JSON.parse(list.stdout.trim());
    assert.equal(o.name, "bob");
    assert.equal(o.public_key, key);
    assert.match(o.fingerprint, /^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
    const human = await runInProcess(["contacts"], { home });
    assert.match(
      human.stdout,
      new RegExp(`^bob  [0-9a-f ]{24}  unverified {5}${key.replace(/[+/]/g, "\\$&")}\n$`),
    );
  });
});

Deno.test("add-contact rejects invalid names and keys with exit 2 and the reason", async () => {
  await withProfile(async (home) => {
    const key = newKey();
    const bad: Array<[string, string, RegExp]> = [
      ["bob/smith", key, /invalid contact name "bob\/smith"/],
      ["bob\u202e", key, /U\+202E, an invisible, control or direction-changing character/],
      ["_bob", key, /invalid contact name "_bob": .*starting with a letter or digit/],
      ["-bob", key, /Unknown option/],
      ["x".repeat(33), key, /at most 32/],
      ["bob", "not-a-key", /invalid public key for bob: the key is not standard base64/],
      ["bob", toBase64(new Uint8Array(31)), /decodes to 31 bytes; an Ed25519 public key is 32/],
      ["bob", key.slice(0, -1), /not standard base64/],
    ];
    for (const [name, k, re] of bad) {
      const r = await runInProcess(["add-contact", name, k], { home });
      assert.equal(r.code, 2, `${name} ${k}`);
      assert.match(r.stderr, re);
    }
    assert.equal((await runInProcess(["contacts", "--json"], { home })).stdout, "");
  });
});

Deno.test("add-contact: duplicate name, key saved under another name, own key", async () => {
  await withProfile(async (home, me) => {
    const k1 = newKey();
    const k2 = newKey();
    assert.equal((await runInProcess(["add-contact", "bob", k1], { home })).code, 0);

    const dupName = await runInProcess(["add-contact", "bob", k2], { home });
    assert.equal(dupName.code, 1);
    assert.match(dupName.stderr, /a contact named bob already exists/);

    const dupKey = await runInProcess(["add-contact", "robert", k1], { home });
    assert.equal(dupKey.code, 1);
    assert.match(dupKey.stderr, /already saved as bob/);

    const own = await runInProcess(["add-contact", "me", me], { home });
    assert.equal(own.code, 1);
    assert.match(own.stderr, /your own public key/);

    const list = (await runInProcess(["contacts", "--json"], { home })).stdout.trim().split("\n");
    assert.equal(list.length, 1);
  });
});

Deno.test("add-contact without an identity says to run init", async () => {
  const home = tempHome();
  try {
    const r = await runInProcess(["add-contact", "bob", newKey()], { home });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no identity for profile default: run `chat-p2p init`/);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("add-contact keeps contacts.json entries it cannot read, exactly as they were", async () => {
  await withProfile(async (home) => {
    const file = `${home}/.chat-default/contacts.json`;
    const amy = newKey();
    const before = {
      amy,
      "bad\u202ename": amy, // a name no version accepts
      carol: "not a key",
      dave: { key: amy, verified: true }, // a shape from a newer version
    };
    Deno.writeTextFileSync(file, JSON.stringify(before));
    const bob = newKey();
    const r = await runInProcess(["add-contact", "bob", bob], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /warning: ignoring contact "carol" in .*kept in the file/);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(file)), { ...before, bob });

    // A name taken by an entry it cannot read is refused rather than overwritten.
    const clash = await runInProcess(["add-contact", "carol", newKey()], { home });
    assert.equal(clash.code, 1);
    assert.match(clash.stderr, /error: contacts file .* has an entry "carol" that cannot be read/);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(file)), { ...before, bob });
  });
});
