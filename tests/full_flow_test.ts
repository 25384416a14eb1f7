/**
 * The seed's test_full_flow.sh as real subprocesses: a relay on a free port, alice and bob as CLI
 * processes under a temp HOME, messages sent while bob is offline, the relay restarted in the
 * middle, bob syncing everything in order and once, a piped `chat` reply, matching histories, and
 * no plaintext, and neither party's public key in any encoding, anywhere the relay writes (its
 * data directory, SQLite WAL included, and its logs). Set CHAT_P2P_BIN to drive a compiled
 * executable.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fromBase64 } from "@chat-p2p/protocol";
import { type CliOptions, runCliOk } from "./cli_helpers.ts";
import { encodings, readTree } from "./relay_harness.ts";
import { RelayProcess } from "./relay_process.ts";

const cli = runCliOk;

Deno.test("full flow: offline messages survive a relay restart, arrive in order once, chat replies, histories match", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-home-" });
  const dataDir = await Deno.makeTempDir({ prefix: "chat-relay-" });
  const alice: CliOptions = { home, profile: "alice" };
  const bob: CliOptions = { home, profile: "bob" };
  const marker = `PLAINTEXT-MARKER-${crypto.randomUUID()}`;

  await cli(["init"], alice);
  await cli(["init"], bob);
  const aliceKey = (await cli(["id"], alice)).stdout.split("\n")[0];
  const bobKey = (await cli(["id"], bob)).stdout.split("\n")[0];
  assert.match(aliceKey, /^[A-Za-z0-9+/]{43}=$/);
  assert.notEqual(aliceKey, bobKey);
  await cli(["add-contact", "bob", bobKey], alice);
  await cli(["add-contact", "alice", aliceKey], bob);

  const texts = [`${marker} one`, `${marker} two`, `${marker} three`, "emoji ✓ 😀 and quotes \" '"];
  const ids: string[] = [];
  let port: number;
  {
    await using relay = await RelayProcess.start({ dataDir });
    port = relay.port;
    for (const t of texts) {
      const r = await cli(["send", relay.url, "bob", t], alice);
      ids.push(r.stdout.trim());
    }
    assert.ok(ids.every((id) => /^[0-9a-f]{32}$/.test(id)), `ids: ${ids}`);
    assert.equal(new Set(ids).size, ids.length);
    await relay.stop("SIGTERM");
    const logs = relay.logs.join("\n");
    assert.ok(!logs.includes(marker), "relay logs hold no plaintext");
  }

  // The relay's files, at rest, between the two runs: ciphertext only.
  const atRest = await readTree(dataDir);
  assert.ok(atRest.length > 0, "the relay stored something");
  assert.ok(!atRest.includes(marker), "relay data directory holds no plaintext");
  assert.ok(!atRest.includes("three"), "not even fragments of the text");

  await using relay = await RelayProcess.start({ dataDir, port });
  const url = relay.url;

  // bob comes online after the restart and gets everything, in order
  const synced = await cli(["sync", url, "--json"], bob);
  const got = synced.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(got.map((m) => m.text), texts);
  assert.deepEqual(got.map((m) => m.id), ids);
  assert.ok(got.every((m) => m.from === aliceKey && m.contact === "alice"));

  // a second sync finds nothing: the relay forgot what bob acked
  const again = await cli(["sync", url, "--json"], bob);
  assert.equal(again.stdout.trim(), "");

  // bob replies through a piped chat session, which ends at EOF
  const reply = `reply from bob ${marker}`;
  await cli(["chat", url, "alice"], { ...bob, stdin: `${reply}\n/quit\n` });

  // alice syncs: bob's reply plus bob's delivery receipts
  const aliceSync = await cli(["sync", url, "--json"], alice);
  const aliceGot = aliceSync.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  assert.deepEqual(aliceGot.map((m) => m.text), [reply]);

  const aliceHistory = (await cli(["history", "bob", "--json"], alice)).stdout.trim().split("\n")
    .map((l) => JSON.parse(l));
  const bobHistory = (await cli(["history", "alice", "--json"], bob)).stdout.trim().split("\n")
    .map((l) => JSON.parse(l));
  const view = (h: Array<{ id: string; text: string; from: string }>) =>
    h.map((m) => `${m.id}|${m.from}|${m.text}`);
  assert.deepEqual(view(aliceHistory), view(bobHistory), "both sides hold the same conversation");
  assert.equal(aliceHistory.length, texts.length + 1, "each message once");
  assert.deepEqual(aliceHistory.slice(0, 4).map((m) => m.dir), ["out", "out", "out", "out"]);
  assert.equal(aliceHistory[4].dir, "in");
  assert.ok(
    aliceHistory.slice(0, 4).every((m) => m.state === "delivered"),
    `alice sees bob's receipts: ${JSON.stringify(aliceHistory.map((m) => m.state))}`,
  );

  // nothing the relay ever wrote or logged holds plaintext, a message id, or either public key
  await relay.stop("SIGTERM");
  const everything = (await readTree(dataDir)) + relay.logs.join("\n");
  assert.ok(!everything.includes(marker));
  for (const id of ids) assert.ok(!everything.includes(id), "message ids travel encrypted only");
  for (const [who, key] of [["alice", aliceKey], ["bob", bobKey]]) {
    for (const form of encodings(fromBase64(key)!)) {
      assert.ok(
        !everything.includes(form),
        `${who}'s public key (${form.slice(0, 12)}…) at the relay`,
      );
    }
  }

  // key material never leaves the profile: not in any output
  const secret = JSON.parse(await Deno.readTextFile(join(home, ".chat-alice", "identity.json")));
  const secretB64 = secret.secret_key ?? secret.secretKey;
  assert.ok(
    typeof secretB64 === "string" && secretB64.length > 40,
    "identity file holds the secret key",
  );
  for (
    const args of [["id"], ["id", "--json"], ["contacts", "--json"], ["history", "bob", "--json"]]
  ) {
    const r = await cli(args, alice);
    assert.ok(!r.stdout.includes(secretB64) && !r.stderr.includes(secretB64), `secret in ${args}`);
  }
  const mode = (await Deno.stat(join(home, ".chat-alice", "identity.json"))).mode! & 0o777;
  assert.equal(mode, 0o600);
  assert.equal((await Deno.stat(join(home, ".chat-alice"))).mode! & 0o777, 0o700);

  await Deno.remove(home, { recursive: true });
  await Deno.remove(dataDir, { recursive: true });
});
