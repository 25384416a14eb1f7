/**
 * Passphrase protection of the identity: the store's file format, `init --passphrase` through
 * CHAT_PASSPHRASE and through a (pretend) terminal, and every command that does or does not
 * need the secret key.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateKeyPair, toBase64, toHex } from "@chat-p2p/protocol";
import type { Context } from "../context.ts";
import { readHidden, unlockIdentity } from "./passphrase.ts";
import { ClientError, ProfileStore, WrongPassphraseError } from "@chat-p2p/client";
import { captureIo, runInProcess, type RunOptions, withHome } from "../testing.ts";

const FAST = { N: 1024, r: 8, p: 1 };

function mode(path: string): number {
  return (Deno.statSync(path).mode ?? 0) & 0o777;
}

/** Every way the secret key (or its seed) could be spelled in a file or an output. */
function secretForms(secretKey: Uint8Array): string[] {
  const seed = secretKey.subarray(0, 32);
  return [toBase64(secretKey), toBase64(seed), toHex(secretKey), toHex(seed)];
}

Deno.test("ProfileStore: a protected identity holds no plaintext key and opens only with its passphrase", async () => {
  await withHome(async (home) => {
    const s = new ProfileStore({ home, profile: "alice" });
    const kp = generateKeyPair();
    s.saveIdentity(kp, { passphrase: "open sesame", kdf: FAST });
    assert.equal(mode(s.identityPath), 0o600);
    assert.equal(mode(s.dir), 0o700);
    const text = Deno.readTextFileSync(s.identityPath);
    for (const form of secretForms(kp.secretKey)) assert.ok(!text.includes(form), form);
    const o = JSON.parse(text);
    assert.deepEqual(Object.keys(o).sort(), ["encrypted_secret_key", "public_key", "v"]);
    assert.equal(o.v, 2);
    assert.equal(o.encrypted_secret_key.v, 1);
    assert.equal(o.public_key, toBase64(kp.publicKey));

    assert.equal(s.isProtected(), true);
    assert.deepEqual(s.loadPublicKey(), kp.publicKey, "the public key needs no passphrase");
    await assert.rejects(
      () => s.loadIdentity(),
      (e: unknown) =>
        e instanceof ClientError && e.code === "passphrase_required" &&
        e.message === "the identity of profile alice is protected by a passphrase",
    );
    await assert.rejects(
      () => s.loadIdentity("open sesam"),
      (e: unknown) =>
        e instanceof WrongPassphraseError && e.message === "wrong passphrase for profile alice",
    );
    const back = await s.loadIdentity("open sesame");
    assert.deepEqual(back.publicKey, kp.publicKey);
    assert.deepEqual(back.secretKey, kp.secretKey);

    // A swapped public key is caught once the seed is decrypted.
    o.public_key = toBase64(generateKeyPair().publicKey);
    Deno.writeTextFileSync(s.identityPath, JSON.stringify(o));
    await assert.rejects(
      () => s.loadIdentity("open sesame"),
      /does not match encrypted_secret_key/,
    );
    o.encrypted_secret_key.kdf.N = 12345;
    Deno.writeTextFileSync(s.identityPath, JSON.stringify(o));
    assert.throws(() => s.loadPublicKey(), /corrupt: bad encrypted_secret_key: .*power of two/);

    // Unprotected again after a plain save.
    s.saveIdentity(kp);
    assert.equal(s.isProtected(), false);
    assert.deepEqual((await s.loadIdentity()).secretKey, kp.secretKey);
  });
});

Deno.test("init --passphrase with CHAT_PASSPHRASE: KDF parameters stored; only id needs no passphrase", async () => {
  await withHome(async (home) => {
    const alice: RunOptions = { home, profile: "alice" };
    const env = { CHAT_PASSPHRASE: "a long enough passphrase" };
    const init = await runInProcess(["init", "--passphrase"], { ...alice, env });
    assert.equal(init.code, 0, init.stderr);
    const key = init.stdout.trim();
    assert.match(key, /^[A-Za-z0-9+/]{43}=$/);
    assert.equal(init.stdout, key + "\n", "stdout: the key alone");
    assert.match(init.stderr, /encrypted with your passphrase \(scrypt N=2\^17, r=8, p=1/);
    assert.doesNotMatch(init.stderr, /warning/);

    const path = join(home, ".chat-alice", "identity.json");
    assert.equal(mode(path), 0o600);
    assert.equal(mode(join(home, ".chat-alice")), 0o700);
    const o = JSON.parse(Deno.readTextFileSync(path));
    assert.equal(o.secret_key, undefined);
    assert.deepEqual(
      { ...o.encrypted_secret_key.kdf, salt: typeof o.encrypted_secret_key.kdf.salt },
      { name: "scrypt", N: 131072, r: 8, p: 1, dk_len: 32, salt: "string" },
    );
    assert.equal(o.encrypted_secret_key.cipher, "xsalsa20-poly1305");

    const kp = await new ProfileStore({ home, profile: "alice" }).loadIdentity(env.CHAT_PASSPHRASE);
    assert.equal(toBase64(kp.publicKey), key);
    const text = Deno.readTextFileSync(path);
    for (const form of secretForms(kp.secretKey)) assert.ok(!text.includes(form));

    // id needs only the public key, and says the files are encrypted at rest. Contacts and
    // history are encrypted with a key derived from the identity: they need the passphrase.
    const bob = toBase64(generateKeyPair().publicKey);
    const outputs = [init];
    const id = await runInProcess(["id", "--json"], alice);
    assert.equal(id.code, 0, id.stderr);
    assert.deepEqual(JSON.parse(id.stdout), {
      public_key: key,
      fingerprint: JSON.parse(id.stdout).fingerprint,
      encrypted_at_rest: true,
    });
    const add = await runInProcess(["add-contact", "bob", bob], { ...alice, env });
    assert.equal(add.code, 0, add.stderr);
    const contacts = await runInProcess(["contacts", "--json"], { ...alice, env });
    assert.equal(contacts.code, 0, contacts.stderr);
    assert.equal(JSON.parse(contacts.stdout.split("\n")[0]).public_key, bob);
    assert.ok(!Deno.readTextFileSync(join(home, ".chat-alice", "contacts.json")).includes(bob));
    const history = await runInProcess(["history", "bob", "--json"], { ...alice, env });
    assert.equal(history.code, 0, history.stderr);
    assert.equal(history.stdout, "");
    outputs.push(add, id, contacts, history);

    // Commands that need the secret key say what is missing, and never crash.
    const url = "ws://127.0.0.1:9/ws";
    for (
      const args of [
        ["send", url, "bob", "hi"],
        ["sync", url],
        ["chat", url, "bob"],
        ["contacts"],
        ["history", "bob"],
        ["add-contact", "carol", toBase64(generateKeyPair().publicKey)],
        ["requests"],
      ]
    ) {
      const r = await runInProcess(args, alice);
      assert.equal(r.code, 1, args.join(" "));
      assert.equal(
        r.stderr,
        "error: the identity of profile alice is protected by a passphrase and stdin is not a " +
          "terminal: set CHAT_PASSPHRASE\n",
      );
      const wrong = await runInProcess(args, { ...alice, env: { CHAT_PASSPHRASE: "nope" } });
      assert.equal(wrong.code, 1);
      assert.equal(wrong.stderr, "error: wrong passphrase for profile alice\n");
      assert.equal(wrong.stdout, "");
      outputs.push(r, wrong);
    }
    for (const r of outputs) {
      for (const form of secretForms(kp.secretKey)) {
        assert.ok(!r.stdout.includes(form) && !r.stderr.includes(form), "secret in output");
      }
    }
  });
});

Deno.test("init --passphrase on a pipe without CHAT_PASSPHRASE fails and writes nothing", async () => {
  await withHome(async (home) => {
    const r = await runInProcess(["init", "--passphrase"], { home });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      "error: --passphrase: stdin is not a terminal, so put the passphrase in CHAT_PASSPHRASE\n",
    );
    assert.equal(r.stdout, "");
    assert.equal(new ProfileStore({ home, profile: "default" }).hasIdentity(), false);
    // A short passphrase is accepted with a warning.
    const short = await runInProcess(["init", "--passphrase"], {
      home,
      env: { CHAT_PASSPHRASE: "abc" },
    });
    assert.equal(short.code, 0, short.stderr);
    assert.match(short.stderr, /warning: the passphrase is short/);
    // CHAT_PASSPHRASE without --passphrase: a warning, and the key stays unencrypted.
    const plain = await runInProcess(["init", "--force"], {
      home,
      env: { CHAT_PASSPHRASE: "abcdefghij" },
    });
    assert.equal(plain.code, 0, plain.stderr);
    assert.match(plain.stderr, /CHAT_PASSPHRASE is set but --passphrase was not given/);
    assert.equal(new ProfileStore({ home, profile: "default" }).isProtected(), false);
  });
});

Deno.test("init --passphrase on a terminal: asked twice, no echo, raw mode switched back", async () => {
  await withHome(async (home) => {
    const pass = "tr0ub4dor & 3 ünïcode";
    const r = await runInProcess(["init", "--passphrase"], {
      home,
      stdinTty: true,
      stdin: `${pass}\r${pass}\r`,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.rawModes, [true, false, true, false]);
    assert.match(r.stderr, /^New passphrase for profile default \(not shown as you type\): \n/);
    assert.match(r.stderr, /\nType it again to confirm: \n/);
    assert.ok(!r.stderr.includes("tr0ub4dor") && !r.stdout.includes("tr0ub4dor"), "no echo");
    const s = new ProfileStore({ home, profile: "default" });
    assert.equal(toBase64((await s.loadIdentity(pass)).publicKey), r.stdout.trim());

    // Refused without --force, even though it is protected: the public key is shown.
    const again = await runInProcess(["init", "--passphrase"], { home, stdinTty: true });
    assert.equal(again.code, 1);
    assert.ok(again.stderr.includes(r.stdout.trim()));
    assert.deepEqual(again.rawModes, [], "nothing asked before refusing");

    // --force --passphrase replaces it with a new key under a new passphrase.
    const replaced = await runInProcess(["init", "--force", "--passphrase"], {
      home,
      env: { CHAT_PASSPHRASE: "the second passphrase" },
    });
    assert.equal(replaced.code, 0, replaced.stderr);
    assert.notEqual(replaced.stdout, r.stdout);
    assert.match(replaced.stderr, /^replaced identity/);
    await assert.rejects(() => s.loadIdentity(pass), WrongPassphraseError);
    assert.equal(
      toBase64((await s.loadIdentity("the second passphrase")).publicKey),
      replaced.stdout.trim(),
    );
  });
});

Deno.test("init --passphrase on a terminal: mismatch, empty and Ctrl-C exit 1 and change nothing", async () => {
  await withHome(async (home) => {
    const cases: Array<[string, RegExp]> = [
      ["one passphrase\rother passphrase\r", /^error: the two passphrases do not match/m],
      ["\r", /^error: the passphrase is empty; nothing was changed$/m],
      ["half typed\x03", /^error: passphrase entry cancelled$/m],
      ["first entry\rhalf\x03", /^error: passphrase entry cancelled$/m],
      ["", /^error: passphrase entry cancelled$/m], // EOF
      ["\x04", /^error: passphrase entry cancelled$/m], // Ctrl-D
    ];
    for (const [typed, expected] of cases) {
      const r = await runInProcess(["init", "--passphrase"], {
        home,
        stdinTty: true,
        stdin: typed,
      });
      assert.equal(r.code, 1, JSON.stringify(typed));
      assert.match(r.stderr, expected);
      assert.equal(r.stdout, "");
      assert.equal(r.rawModes.at(-1), false, "raw mode is always switched off");
      assert.equal(new ProfileStore({ home, profile: "default" }).hasIdentity(), false);
    }
  });
});

function ttyContext(home: string, typed: string, chunk = 1) {
  const c = captureIo({ home, stdinTty: true, stdin: typed, ttyChunk: chunk });
  const ctx: Context = { io: c.io, profile: "alice", verbose: false, color: false };
  return { ctx, stderr: c.stderr, rawModes: c.rawModes };
}

Deno.test("readHidden: editing keys, escape sequences, several keys per read", async () => {
  await withHome(async (home) => {
    const cases: Array<[string, string]> = [
      ["abcx\x7f\r", "abc"],
      ["ab\x08c\r", "ac"],
      ["wrong\x15right\n", "right"],
      ["é€😀\x7f\r", "é€"],
      ["pass\x1b[Dword\r", "password"],
      ["tab\tbed\r", "tabbed"],
    ];
    for (const [typed, expected] of cases) {
      for (const chunk of [1, 64]) {
        const t = ttyContext(home, typed, chunk);
        assert.equal(await readHidden(t.ctx, "? "), expected, JSON.stringify([typed, chunk]));
        assert.deepEqual(t.rawModes, [true, false]);
        assert.equal(t.stderr(), "? \n");
      }
    }
  });
});

Deno.test("unlockIdentity on a terminal: three tries, then wrong passphrase", async () => {
  await withHome(async (home) => {
    const s = new ProfileStore({ home, profile: "alice" });
    const kp = generateKeyPair();
    s.saveIdentity(kp, { passphrase: "right one", kdf: FAST });

    const ok = ttyContext(home, "wrong\rright one\r");
    assert.deepEqual((await unlockIdentity(ok.ctx, s)).secretKey, kp.secretKey);
    assert.equal(
      ok.stderr(),
      "Passphrase for profile alice: \nwrong passphrase, try again\n" +
        "Passphrase for profile alice: \n",
    );

    const bad = ttyContext(home, "a\rb\rc\rright one\r");
    await assert.rejects(
      () => unlockIdentity(bad.ctx, s),
      (e: unknown) =>
        e instanceof WrongPassphraseError && e.message === "wrong passphrase for profile alice",
    );
    assert.equal(bad.stderr().match(/Passphrase for profile alice/g)?.length, 3);

    // CHAT_PASSPHRASE wins over the terminal (scripts started from a terminal).
    const c = captureIo({ home, stdinTty: true, env: { CHAT_PASSPHRASE: "right one" } });
    const ctx: Context = { io: c.io, profile: "alice", verbose: false, color: false };
    assert.deepEqual((await unlockIdentity(ctx, s)).publicKey, kp.publicKey);
    assert.deepEqual(c.rawModes, []);

    // An unprotected identity is never asked for.
    const plain = new ProfileStore({ home, profile: "bob" });
    plain.saveIdentity(kp);
    const p = ttyContext(home, "");
    assert.deepEqual((await unlockIdentity(p.ctx, plain)).secretKey, kp.secretKey);
    assert.equal(p.stderr(), "");
  });
});
