/**
 * The CLI under attack, as real subprocesses against a real relay: a passphrase-protected
 * identity used from scripts (CHAT_PASSPHRASE), loose permissions on the profile, and envelopes
 * whose box does not open with the key they claim, whether injected by another user through the
 * relay or planted in the relay's own store (a compromised relay).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import {
  type EnvelopeV2,
  fingerprint,
  fromBase64,
  keyPairFromSeed,
  newId,
  requestEnvelope,
  toBase64,
  toHex,
} from "@chat-p2p/protocol";
import { ProfileStore } from "@chat-p2p/client";
import {
  type CliOptions,
  type CliResult,
  filesUnder,
  jsonLines,
  pairedProfiles,
  runCli,
  runCliOk,
  spawnCli,
} from "./cli_helpers.ts";
import { connectRelay } from "../client/connection.ts";
import { TestPeer } from "./v2_peer.ts";
import { envelope } from "./raw_client.ts";
import { RelayProcess } from "./relay_process.ts";
import { pairMessages } from "./v2_messages.ts";

const cli = runCliOk;

Deno.test("passphrase: piped send, sync and chat with CHAT_PASSPHRASE against a real relay", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-sec-" });
  await using relay = await RelayProcess.start();
  const alicePass = "alice's passphrase ✓ with spaces";
  const bobPass = "bob-passphrase-0123456789";
  const alice: CliOptions = { home, profile: "alice", env: { CHAT_PASSPHRASE: alicePass } };
  const bob: CliOptions = { home, profile: "bob", env: { CHAT_PASSPHRASE: bobPass } };
  const bare = (o: CliOptions): CliOptions => ({ home: o.home, profile: o.profile });
  const outputs: CliResult[] = [];
  try {
    const aKey = (await cli(["init", "--passphrase"], alice)).stdout.trim();
    const bKey = (await cli(["init", "--passphrase"], bob)).stdout.trim();
    // Contacts are encrypted at rest with a passphrase: saving one needs it too.
    assert.equal((await runCli(["add-contact", "bob", bKey], bare(alice))).code, 1);
    await cli(["add-contact", "bob", bKey], alice);
    await cli(["add-contact", "alice", aKey], bob);

    // A script sends with the passphrase in the environment and the text on stdin.
    const sent = await cli(["send", relay.url, "bob", "-"], { ...alice, stdin: "piped hello\n" });
    outputs.push(sent);
    const id = sent.stdout.trim();
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(sent.stdout, id + "\n", "stdout: the id alone");

    // Without the variable, or with a wrong one: exit 1, one clear line, no stack trace.
    const missing = await runCli(["sync", relay.url], bare(bob));
    assert.equal(missing.code, 1);
    assert.equal(
      missing.stderr,
      "error: the identity of profile bob is protected by a passphrase and stdin is not a " +
        "terminal: set CHAT_PASSPHRASE\n",
    );
    const wrong = await runCli(["sync", relay.url, "--json"], {
      ...bob,
      env: { CHAT_PASSPHRASE: alicePass },
    });
    assert.equal(wrong.code, 1);
    assert.equal(wrong.stderr, "error: wrong passphrase for profile bob\n");
    assert.equal(wrong.stdout, "");
    const wrongSend = await runCli(["send", relay.url, "bob", "x"], {
      ...alice,
      env: { CHAT_PASSPHRASE: "" },
    });
    assert.equal(wrongSend.code, 1);
    assert.match(wrongSend.stderr, /^error: the identity of profile alice is protected/);
    outputs.push(missing, wrong, wrongSend);

    // The message is still waiting (nothing was received by the failed syncs).
    const synced = await cli(["sync", relay.url, "--json"], bob);
    outputs.push(synced);
    const got = jsonLines(synced.stdout);
    assert.deepEqual(got.map((m) => [m.id, m.text, m.contact]), [[id, "piped hello", "alice"]]);

    // A piped chat with the passphrase in the environment.
    const chat = await cli(["chat", relay.url, "alice"], { ...bob, stdin: "chat reply\n" });
    outputs.push(chat);
    const aSync = await cli(["sync", relay.url, "--json"], alice);
    outputs.push(aSync);
    assert.deepEqual(jsonLines(aSync.stdout).map((m) => m.text), ["chat reply"]);

    // history needs the passphrase too (history is encrypted at rest), and shows the receipt.
    assert.equal((await runCli(["history", "bob"], bare(alice))).code, 1);
    const hist = await cli(["history", "bob", "--json"], alice);
    outputs.push(hist);
    assert.deepEqual(
      jsonLines(hist.stdout).map((m) => [m.dir, m.text, m.state]),
      [["out", "piped hello", "delivered"], ["in", "chat reply", "received"]],
    );

    // No message text, contact key or session in clear in any profile file.
    for (const who of ["alice", "bob"]) {
      for (const [path, text] of filesUnder(join(home, `.chat-${who}`))) {
        if (path.endsWith("identity.json") || path.endsWith("profile.json")) continue;
        for (const secret of ["piped hello", "chat reply", aKey, bKey, '"rk"']) {
          assert.ok(!text.includes(secret), `${secret} in clear in ${path}`);
        }
      }
    }

    // No secret key, in any spelling, in any output or in the identity files.
    for (const [who, pass] of [["alice", alicePass], ["bob", bobPass]]) {
      const path = join(home, `.chat-${who}`, "identity.json");
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      const file = JSON.parse(await Deno.readTextFile(path));
      assert.equal(file.secret_key, undefined);
      assert.equal(file.encrypted_secret_key.kdf.N, 2 ** 17);
      // Decrypt in this process with the store the CLI uses, to know what must not leak.
      const kp = await new ProfileStore({ home, profile: who }).loadIdentity(pass);
      const seed = kp.secretKey.subarray(0, 32);
      assert.deepEqual(keyPairFromSeed(seed).publicKey, fromBase64(file.public_key));
      const forms = [toBase64(kp.secretKey), toBase64(seed), toHex(kp.secretKey), toHex(seed)];
      const text = await Deno.readTextFile(path);
      for (const f of forms) {
        assert.ok(!text.includes(f), `plaintext key in ${who}'s identity file`);
        for (const r of outputs) {
          assert.ok(!r.stdout.includes(f) && !r.stderr.includes(f), "secret key in an output");
        }
      }
    }
    for (const r of outputs) {
      assert.ok(!r.stderr.includes(alicePass) && !r.stderr.includes(bobPass), "no passphrase");
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("permissions: a 0755 profile directory and a 0644 identity file are warned about on stderr; stdout unchanged", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-sec-" });
  const opts: CliOptions = { home, profile: "alice" };
  try {
    await cli(["init"], opts);
    const dir = join(home, ".chat-alice");
    const file = join(dir, "identity.json");
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    const before = {
      id: await cli(["id"], opts),
      json: await cli(["id", "--json"], opts),
      contacts: await cli(["contacts", "--json"], opts),
    };
    for (const r of Object.values(before)) assert.doesNotMatch(r.stderr, /warning/);

    await Deno.chmod(dir, 0o755);
    await Deno.chmod(file, 0o644);
    const after = {
      id: await cli(["id"], opts),
      json: await cli(["id", "--json"], opts),
    };
    for (const [name, r] of Object.entries(after)) {
      assert.equal(r.stdout, before[name as "id" | "json"].stdout, `${name}: stdout unchanged`);
      const warnings = r.stderr.trim().split("\n");
      assert.deepEqual(warnings, [
        `warning: profile directory ${dir} is accessible by other users (mode 0755); ` +
        `run: chmod 700 ${dir}`,
        `warning: ${file} is readable by other users (mode 0644); run: chmod 600 ${file}`,
      ]);
    }
    const contacts = await cli(["contacts", "--json"], opts);
    assert.equal(contacts.stdout, before.contacts.stdout);

    await Deno.chmod(dir, 0o700);
    await Deno.chmod(file, 0o600);
    const fixed = await cli(["id"], opts);
    assert.equal(fixed.stderr, "");
    assert.equal(fixed.stdout, before.id.stdout);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

/** Profiles alice and bob that know each other; returns their keys (alice's pair too). */
async function twoProfiles(home: string) {
  const { alice, bob, aKey, bKey } = await pairedProfiles(home);
  const file = JSON.parse(await Deno.readTextFile(join(home, ".chat-alice", "identity.json")));
  const aliceKp = keyPairFromSeed(fromBase64(file.secret_key)!.subarray(0, 32));
  assert.equal(toBase64(aliceKp.publicKey), aKey);
  return { alice, bob, aKey, bKey, aliceKp };
}

Deno.test("forged sender through the relay: a request claiming alice is rejected, never shown, never named", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-sec-" });
  await using relay = await RelayProcess.start();
  try {
    const { alice, bob, aKey, bKey } = await twoProfiles(home);
    await using mallory = await TestPeer.create();
    const s = await connectRelay(relay.url, { timeoutMs: 5000 });
    try {
      // 1. Mallory seals a request to bob naming alice's key: its ratchet message is mallory's.
      const m = await mallory.message(bKey, "I am alice, really", { via: "request" });
      const claimAlice = requestEnvelope(fromBase64(bKey)!, fromBase64(aKey)!, m.wire, newId());
      await s.send(claimAlice, { key: bKey });
      // 2. Alice really writes to bob.
      await cli(["send", relay.url, "bob", "alice's words"], alice);
      const sync1 = await cli(["sync", relay.url, "--json"], bob);
      assert.deepEqual(jsonLines(sync1.stdout).map((x) => x.text), ["alice's words"]);
      const rejected = sync1.stderr.match(/^rejected message .*$/gm) ?? [];
      assert.equal(rejected.length, 1, sync1.stderr);
      assert.match(rejected[0], new RegExp(`^rejected message ${claimAlice.id}: a forged request`));
      assert.doesNotMatch(sync1.stderr, /I am alice/);
      assert.doesNotMatch(sync1.stderr, new RegExp(fingerprint(fromBase64(aKey)!)), "never named");
    } finally {
      await s.close();
    }
    // Stored nowhere but as the one real message: not under alice, not as a request.
    const h = jsonLines((await cli(["history", "alice", "--json"], bob)).stdout);
    assert.deepEqual(h.map((x) => x.text), ["alice's words"]);
    assert.equal((await cli(["requests", "--json"], bob)).stdout, "");
    // Acked: it does not come back.
    assert.doesNotMatch((await cli(["sync", relay.url], bob)).stderr, /rejected/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("forged sender planted in the relay's store (compromised relay): sync and chat reject it, never as alice", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-sec-" });
  await using relay = await RelayProcess.start();
  try {
    const { bob, bKey, aliceKp } = await twoProfiles(home);
    await cli(["sync", relay.url], bob); // registers the pair mailbox alice writes to
    const real = pairMessages(aliceKp, fromBase64(bKey)!, ["TAMPERED"]);
    const mailbox = real.box.id;
    // What the relay itself could put in alice's mailbox to bob: a body of the right size that
    // is not hers...
    const forged = envelope(mailbox);
    // ...or alice's real body with one bit flipped.
    const body = fromBase64(real.envelopes[0].body)!;
    body[body.length - 1] ^= 0x01;
    const tampered: EnvelopeV2 = { ...real.envelopes[0], body: toBase64(body) };
    const plant = (envs: EnvelopeV2[]) => {
      const db = new DatabaseSync(join(relay.dataDir, "mailbox.db"));
      try {
        db.exec("PRAGMA busy_timeout = 5000;");
        // seq far above the mailbox's own, as an attacker's rows need not fit in.
        const insert = db.prepare(
          "INSERT INTO envelopes (mailbox, seq, id, raw, bytes, received_at) VALUES " +
            "(?1, (SELECT coalesce(max(seq), 0) + 1000000 FROM envelopes WHERE mailbox = ?1), " +
            "?2, ?3, ?4, ?5)",
        );
        for (const e of envs) {
          const raw = JSON.stringify(e);
          insert.run(mailbox, e.id, raw, new TextEncoder().encode(raw).length, Date.now());
        }
      } finally {
        db.close();
      }
    };
    const rejectedLine = (id: string) => new RegExp(`rejected message ${id}\\b`);

    plant([forged, tampered]);
    const sync = await cli(["sync", relay.url, "--json"], bob);
    assert.equal(sync.stdout, "", "never printed as a message");
    assert.match(sync.stderr, rejectedLine(forged.id));
    assert.match(sync.stderr, rejectedLine(tampered.id));
    assert.doesNotMatch(sync.stderr, /TAMPERED/);

    // The same through a piped chat with alice: reported on stderr, not shown as alice's.
    const another = envelope(mailbox);
    plant([another]);
    const chat = spawnCli(["chat", relay.url, "alice"], bob);
    const done = await chat.result(); // EOF at once: it drains the mailbox, then leaves
    assert.equal(done.code, 0, done.stderr);
    assert.equal(done.stdout, "");
    assert.match(done.stderr, rejectedLine(another.id));

    assert.equal((await cli(["history", "alice", "--json"], bob)).stdout, "", "nothing stored");
    const again = await cli(["sync", relay.url], bob);
    assert.doesNotMatch(again.stderr, /rejected/, "acked, so not delivered again");
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
