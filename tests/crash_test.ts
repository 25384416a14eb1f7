/**
 * Crash safety: kill -9 of the relay while clients send (every accepted envelope is delivered,
 * once, after restart), kill -9 of the CLI during add-contact (the file always parses), and
 * graceful shutdown on SIGTERM. The CLI killed at every step of sending and receiving is in
 * client_crash_test.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateKeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { type CliOptions, runCli, spawnCli } from "./cli_helpers.ts";
import { RawClient } from "./raw_client.ts";
import { drainAll, sendThenKill } from "./crash_helpers.ts";
import { RelayProcess } from "./relay_process.ts";

const NO_LIMITS = { RELAY_FRAME_RATE: "0", RELAY_SEND_RATE: "0" };

Deno.test("crash: kill -9 of the embedded relay mid-burst loses no accepted envelope and duplicates none", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-crash-" });
  const alice = generateKeyPair(), bob = generateKeyPair();
  const first = await RelayProcess.start({ dataDir, env: NO_LIMITS });
  const port = first.port;
  const accepted = await sendThenKill(first, alice, bob, 600, 150);
  assert.ok(accepted.size >= 150);

  await using second = await RelayProcess.start({ dataDir, port, env: NO_LIMITS });
  const got = await drainAll(second.url, bob);
  assert.equal(new Set(got).size, got.length, "no envelope delivered twice");
  for (const id of accepted) assert.ok(got.includes(id), `accepted ${id} was lost`);
  assert.deepEqual(await drainAll(second.url, bob), [], "acked envelopes are gone");
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("crash: SIGTERM closes sockets with 1001, finishes, and keeps what was accepted", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-crash-" });
  const alice = generateKeyPair(), bob = generateKeyPair();
  const relay = await RelayProcess.start({ dataDir, env: NO_LIMITS });
  const a = await RawClient.authed(relay.url, alice);
  const listener = await RawClient.authed(relay.url, bob);
  const e = sealEnvelope(
    { v: 1, kind: "message", text: "x", sent_at: "" },
    alice,
    toBase64(bob.publicKey),
  );
  a.send({ v: 1, type: "send", envelope: e });
  await a.next("accepted");
  const status = await relay.stop("SIGTERM");
  assert.equal(status.code, 0, relay.logs.join("\n"));
  assert.equal(await a.closed, 1001);
  assert.equal(await listener.closed, 1001);
  assert.ok(relay.logs.some((l) => l.includes('"msg":"stopped"')));
  await using again = await RelayProcess.start({ dataDir, env: NO_LIMITS });
  assert.deepEqual(await drainAll(again.url, bob), [e.id], "held envelope survives shutdown");
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("crash: kill -9 during add-contact never leaves a broken contacts file", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-crash-home-" });
  const me: CliOptions = { home, profile: "me" };
  await runCli(["init"], me);
  const added: string[] = [];
  for (let i = 0; i < 12; i++) {
    const p = spawnCli(["add-contact", `friend${i}`, toBase64(generateKeyPair().publicKey)], me);
    const timer = setTimeout(() => {
      try {
        p.child.kill("SIGKILL");
      } catch { /* finished */ }
    }, 100 + ((i * 53) % 400));
    const r = await p.result();
    clearTimeout(timer);
    if (r.code === 0) added.push(`friend${i}`);
  }
  const file = join(home, ".chat-me", "contacts.json");
  const raw = await Deno.readTextFile(file).catch(() => "{}");
  JSON.parse(raw); // parses, whatever moment the kills hit
  const list = await runCli(["contacts", "--json"], me);
  assert.equal(list.code, 0, list.stderr);
  for (const name of added) {
    assert.ok(list.stdout.includes(name), `${name} was confirmed but is gone`);
  }
  JSON.parse(await Deno.readTextFile(join(home, ".chat-me", "identity.json")));
  await Deno.remove(home, { recursive: true });
});
