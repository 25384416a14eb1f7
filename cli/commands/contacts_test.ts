/** remove-contact, rename-contact, verify, and how contacts shows verification. */
import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { safetyNumber } from "@chat-p2p/client";
import { runInProcess, withHome } from "../testing.ts";

const newKey = () => toBase64(generateKeyPair().publicKey);

async function contactsJson(home: string, profile?: string) {
  const r = await runInProcess(["contacts", "--json"], { home, profile });
  return r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

Deno.test("remove-contact and rename-contact: Unicode names, the history stays under the key", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    const key = newKey();
    assert.equal((await runInProcess(["add-contact", "Zoe\u0308", key], { home })).code, 0);
    const renamed = await runInProcess(["rename-contact", "Zoë", "Zoë Smith"], { home });
    assert.equal(renamed.code, 0, renamed.stderr);
    assert.equal(renamed.stderr, "renamed Zoë to Zoë Smith\n");
    assert.deepEqual((await contactsJson(home)).map((c) => c.name), ["Zoë Smith"]);
    const bad = await runInProcess(["rename-contact", "Zoë Smith", "evil\u202e"], { home });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid contact name.*U\+202E/);
    const removed = await runInProcess(["remove-contact", "Zoë Smith"], { home });
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(
      removed.stderr,
      /^removed Zoë Smith \(fingerprint ([0-9a-f ]{24})\); the history stays: chat-p2p history "\1"\n$/,
    );
    assert.deepEqual(await contactsJson(home), []);
    const again = await runInProcess(["remove-contact", "Zoë Smith"], { home });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /unknown contact "Zoë Smith"; no contacts saved yet/);
  });
});

Deno.test("verify: the safety number both sides compute; y marks verified, anything else does not", async () => {
  await withHome(async (home) => {
    const me = (await runInProcess(["init"], { home, profile: "alice" })).stdout.trim();
    const bob = (await runInProcess(["init"], { home, profile: "bob" })).stdout.trim();
    await runInProcess(["add-contact", "bob", bob], { home, profile: "alice" });
    await runInProcess(["add-contact", "alice", me], { home, profile: "bob" });
    const digits = safetyNumber(me, bob);
    const rows = digits.match(/.{20}/g)!.map((r) => r.match(/.{5}/g)!.join(" "));

    // Without a terminal: shown (the number on stdout), not marked.
    const shown = await runInProcess(["verify", "bob"], { home, profile: "alice" });
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout, rows.join("\n") + "\n");
    assert.match(shown.stderr, /not marked verified: compare the numbers, then run with --yes/);
    // bob computes the same number.
    const theirs = await runInProcess(["verify", "alice"], { home, profile: "bob" });
    assert.equal(theirs.stdout, shown.stdout);

    // At the terminal: "n" refuses (exit 1), "y" marks verified.
    const no = await runInProcess(["verify", "bob"], {
      home,
      profile: "alice",
      stdinTty: true,
      stdin: "n\n",
    });
    assert.equal(no.code, 1);
    assert.match(no.stderr, /Do the numbers match\? \[y\/N\] error: bob is not marked verified/);
    assert.equal((await contactsJson(home, "alice"))[0].verified, false);
    const yes = await runInProcess(["verify", "bob"], {
      home,
      profile: "alice",
      stdinTty: true,
      stdin: "y\n",
    });
    assert.equal(yes.code, 0, yes.stderr);
    assert.match(yes.stderr, /bob is verified/);
    const json = await runInProcess(["verify", "bob", "--json"], { home, profile: "alice" });
    const o = JSON.parse(json.stdout);
    assert.equal(o.safety_number, digits);
    assert.equal(o.verified, true);
    assert.match(o.verified_at, /^\d{4}-\d\d-\d\dT/);

    const qr = await runInProcess(["verify", "alice", "--qr", "--yes"], { home, profile: "bob" });
    assert.equal(qr.code, 0, qr.stderr);
    assert.match(qr.stdout, /[█▀▄]/);
  });
});

Deno.test("contacts: verified state shown; a verified key is not replaced without --force, then warned", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    const k1 = newKey();
    await runInProcess(["add-contact", "bob", k1], { home });
    await runInProcess(["add-contact", "carol", newKey()], { home });
    assert.equal((await runInProcess(["verify", "bob", "--yes"], { home })).code, 0);
    const listed = await runInProcess(["contacts"], { home });
    assert.match(listed.stdout, /^bob {4}[0-9a-f ]{24} {2}✓ verified {5}/m);
    assert.match(listed.stdout, /^carol {2}[0-9a-f ]{24} {2}unverified {5}/m);
    let json = await contactsJson(home);
    assert.deepEqual(json.map((c) => [c.name, c.verified, c.key_changed]), [
      ["bob", true, false],
      ["carol", false, false],
    ]);

    const k2 = newKey();
    const refused = await runInProcess(["add-contact", "bob", k2], { home });
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /error: bob is saved with a verified key \(verified .*\); this is another key\. A new key means a new install, or someone between you\. Do not trust it until you have compared safety numbers .*--force saves it, unverified/,
    );
    assert.equal((await contactsJson(home))[0].public_key, k1);
    const plain = await runInProcess(["add-contact", "carol", k2], { home });
    assert.match(
      plain.stderr,
      /a contact named carol already exists with another key; --force replaces it/,
    );

    const forced = await runInProcess(["add-contact", "bob", k2, "--force"], { home });
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(
      forced.stderr,
      /warning: bob's verified key \(fingerprint .*\) is replaced by an unverified one/,
    );
    const after = await runInProcess(["contacts"], { home });
    assert.match(
      after.stderr,
      /warning: bob's key changed since you verified it .*chat-p2p verify "bob"/,
    );
    assert.match(after.stdout, /^bob {4}[0-9a-f ]{24} {2}⚠ key changed {2}/m);
    json = await contactsJson(home);
    assert.deepEqual([json[0].public_key, json[0].verified, json[0].key_changed], [
      k2,
      false,
      true,
    ]);
  });
});
