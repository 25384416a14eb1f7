/**
 * A profile made by chat-p2p 1 (tests/fixtures/v1_profiles, written by the v1 store) upgrades in
 * place on first use: history, contacts and passphrase kept, its files encrypted at rest once the
 * passphrase is given, and the message it left queued sent through v2, once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type CliOptions,
  filesUnder,
  jsonLines,
  PROJECT_ROOT,
  runCli,
  runCliOk,
} from "./cli_helpers.ts";
import { startFakeRelay } from "./fake_relay.ts";

const FIXTURE = join(PROJECT_ROOT, "tests", "fixtures", "v1_profiles");
const PASSPHRASE = "v1 passphrase";

async function copyProfile(name: string, home: string): Promise<void> {
  const to = join(home, `.chat-${name}`);
  await Deno.mkdir(join(to, "messages"), { recursive: true, mode: 0o700 });
  await Deno.chmod(to, 0o700);
  for (const [path, text] of filesUnder(join(FIXTURE, name))) {
    const dest = join(to, path.slice(join(FIXTURE, name).length + 1));
    await Deno.writeTextFile(dest, text, { mode: 0o600 });
  }
}

Deno.test("upgrade: a v1 profile keeps history, contacts and passphrase; files get encrypted; the queued message goes out through v2", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-upgrade-" });
  await using relay = startFakeRelay();
  try {
    await copyProfile("alice", home);
    await copyProfile("bob", home);
    const alice: CliOptions = { home, profile: "alice", env: { CHAT_PASSPHRASE: PASSPHRASE } };
    const bob: CliOptions = { home, profile: "bob" };

    // The passphrase is the one chat-p2p 1 set: a wrong one is refused, nothing changes.
    const wrong = await runCli(["history", "bob"], { ...alice, env: { CHAT_PASSPHRASE: "no" } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /wrong passphrase for profile alice/);
    const id = await runCliOk(["id", "--json"], { home, profile: "alice" });
    assert.equal(JSON.parse(id.stdout).encrypted_at_rest, true);

    // First use: everything is there, in order, with its state.
    const h = jsonLines((await runCliOk(["history", "bob", "--json"], alice)).stdout);
    assert.deepEqual(h.map((m) => [m.id, m.dir, m.text, m.state]), [
      ["0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a", "out", "v1 hello bob (delivered)", "delivered"],
      ["0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "in", "v1 reply from bob", "received"],
      ["0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "out", "v1 queued, never sent", "sending"],
      ["0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d", "out", "v1 failed once", "failed"],
    ]);
    assert.deepEqual(
      jsonLines((await runCliOk(["contacts", "--json"], alice)).stdout).map((c) => c.name),
      ["bob"],
    );
    // ...and now encrypted at rest: no text, no contact key in any file but identity.json.
    const bobKey = JSON.parse(Deno.readTextFileSync(join(home, ".chat-bob", "identity.json")))
      .public_key;
    for (const [path, text] of filesUnder(join(home, ".chat-alice"))) {
      if (path.endsWith("identity.json") || path.endsWith("profile.json")) continue;
      for (const secret of ["v1 hello", "v1 reply", "v1 queued", bobKey]) {
        assert.ok(!text.includes(secret), `${secret} in clear in ${path}`);
      }
    }

    // The queued v1 message goes out through v2 before the new one, once; the failed one stays
    // failed (resend queues it).
    const sent = await runCliOk(["send", relay.url, "bob", "first v2 message"], alice);
    assert.match(sent.stderr, /sending 1 queued message to bob first/);
    const after = jsonLines((await runCliOk(["history", "bob", "--json"], alice)).stdout);
    assert.deepEqual(after.map((m) => m.state), [
      "delivered",
      "received",
      "accepted",
      "failed",
      "accepted",
    ]);

    // Bob (a v1 profile without a passphrase) reads through v2: both, once, in order.
    const got = jsonLines((await runCliOk(["sync", relay.url, "--json"], bob)).stdout);
    assert.deepEqual(got.map((m) => [m.id, m.text]), [
      ["0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "v1 queued, never sent"],
      [after[4].id, "first v2 message"],
    ]);
    const bobHistory = jsonLines((await runCliOk(["history", "alice", "--json"], bob)).stdout);
    assert.deepEqual(bobHistory.map((m) => m.text), [
      "v1 hello bob (delivered)",
      "v1 reply from bob",
      "v1 queued, never sent",
      "first v2 message",
    ]);
    // Bob has no passphrase: his files stay in clear, as id says.
    assert.match((await runCliOk(["id"], bob)).stdout, /NOT encrypted at rest/);
    assert.ok(
      [...filesUnder(join(home, ".chat-bob", "messages")).values()].join("").includes(
        "first v2 message",
      ),
    );
    // Nothing of v1 left to send again.
    const again = await runCliOk(["send", relay.url, "bob", "second"], alice);
    assert.doesNotMatch(again.stderr, /queued message/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
