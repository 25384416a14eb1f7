import assert from "node:assert/strict";
import { join } from "node:path";
import { toBase64 } from "@chat-p2p/protocol";
import { ProfileStore, WrongPassphraseError } from "@chat-p2p/client";
import { runInProcess, withHome } from "../testing.ts";

const OLD = "the old passphrase", NEW = "the new passphrase";

Deno.test("passphrase: set, change and remove keep the same key pair; the file stays 0600", async () => {
  await withHome(async (home) => {
    const s = new ProfileStore({ home, profile: "default" });
    assert.equal((await runInProcess(["init"], { home })).code, 0);
    const before = await s.loadIdentity();

    const set = await runInProcess(["passphrase"], { home, env: { CHAT_NEW_PASSPHRASE: OLD } });
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stderr, /^passphrase set for profile default: secret key encrypted \(scrypt/);
    assert.equal(set.stdout, "");
    assert.equal(s.isProtected(), true);
    assert.deepEqual((await s.loadIdentity(OLD)).secretKey, before.secretKey);
    assert.equal(Deno.statSync(s.identityPath).mode! & 0o777, 0o600);
    assert.ok(!Deno.readTextFileSync(s.identityPath).includes(toBase64(before.secretKey)));

    const changed = await runInProcess(["passphrase"], {
      home,
      env: { CHAT_PASSPHRASE: OLD, CHAT_NEW_PASSPHRASE: NEW },
    });
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stderr, /^passphrase changed for profile default/);
    await assert.rejects(() => s.loadIdentity(OLD), WrongPassphraseError);
    assert.deepEqual((await s.loadIdentity(NEW)).secretKey, before.secretKey);

    const removed = await runInProcess(["passphrase", "--remove"], {
      home,
      env: { CHAT_PASSPHRASE: NEW },
    });
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stderr, /^passphrase removed: .* stored unencrypted in .*identity\.json/);
    assert.equal(s.isProtected(), false);
    assert.deepEqual((await s.loadIdentity()).secretKey, before.secretKey);

    const again = await runInProcess(["passphrase", "--remove"], { home });
    assert.equal(again.code, 1);
    assert.match(
      again.stderr,
      /^error: the identity of profile default has no passphrase; nothing/,
    );
  });
});

Deno.test("passphrase: a wrong current passphrase or no way to ask changes nothing", async () => {
  await withHome(async (home) => {
    const s = new ProfileStore({ home, profile: "default" });
    const init = await runInProcess(["init", "--passphrase"], {
      home,
      env: { CHAT_PASSPHRASE: OLD },
    });
    assert.equal(init.code, 0, init.stderr);
    const file = Deno.readTextFileSync(s.identityPath);

    const wrong = await runInProcess(["passphrase"], {
      home,
      env: { CHAT_PASSPHRASE: "not it", CHAT_NEW_PASSPHRASE: NEW },
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^error: wrong passphrase for profile default$/m);

    const noNew = await runInProcess(["passphrase"], { home, env: { CHAT_PASSPHRASE: OLD } });
    assert.equal(noNew.code, 1);
    assert.equal(
      noNew.stderr,
      "error: passphrase: stdin is not a terminal, so put the passphrase in CHAT_NEW_PASSPHRASE\n",
    );
    assert.equal(Deno.readTextFileSync(s.identityPath), file, "identity.json untouched");

    Deno.mkdirSync(join(home, "empty"));
    const none = await runInProcess(["passphrase"], { home: join(home, "empty") });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no identity for profile default/);
  });
});

Deno.test("passphrase on a terminal: current once, new twice, nothing echoed", async () => {
  await withHome(async (home) => {
    const s = new ProfileStore({ home, profile: "default" });
    await runInProcess(["init", "--passphrase"], { home, env: { CHAT_PASSPHRASE: OLD } });
    const r = await runInProcess(["passphrase"], {
      home,
      stdinTty: true,
      stdin: `${OLD}\r${NEW}\r${NEW}\r`,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^Passphrase for profile default: \n/);
    assert.match(r.stderr, /New passphrase for profile default \(not shown as you type\): \n/);
    assert.ok(!r.stderr.includes(OLD) && !r.stderr.includes(NEW), "no echo");
    assert.deepEqual(r.rawModes, [true, false, true, false, true, false]);
    assert.equal((await s.loadIdentity(NEW)).publicKey.length, 32);
  });
});
