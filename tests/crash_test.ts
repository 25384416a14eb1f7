/**
 * Crash safety: kill -9 of the relay while clients send (every accepted envelope is delivered,
 * once, after restart), kill -9 of the CLI during writes (history and identity still parse and
 * nothing acknowledged is lost), and graceful shutdown on SIGTERM.
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

Deno.test("crash: kill -9 of the CLI during sync, over and over, loses and duplicates nothing", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-crash-home-" });
  const dataDir = await Deno.makeTempDir({ prefix: "chat-crash-" });
  const bob: CliOptions = { home, profile: "bob" };
  await runCli(["init"], bob);
  const bobKey = (await runCli(["id"], bob)).stdout.split("\n")[0];
  const alice = generateKeyPair();
  await runCli(["add-contact", "alice", toBase64(alice.publicKey)], bob);
  await using relay = await RelayProcess.start({ dataDir, env: NO_LIMITS });

  // 3000 messages wait for bob: sync stores them in batches (one append and one fsync per batch,
  // acks after it), so kills land before, inside and between batches.
  const sent = Array.from(
    { length: 3000 },
    (_, i) =>
      sealEnvelope(
        { v: 1, kind: "message", text: `crash ${i}`, sent_at: new Date().toISOString() },
        alice,
        bobKey,
      ),
  );
  {
    await using a = await RawClient.authed(relay.url, alice);
    for (const e of sent) a.send({ v: 1, type: "send", envelope: e });
    for (let i = 0; i < sent.length; i++) await a.next("accepted", 20_000);
  }

  // sync, killed at varied moments, until one run finishes; note how far each killed run got
  let kills = 0;
  const progress: number[] = [];
  const historyLines = async () => {
    let n = 0;
    try {
      for await (const f of Deno.readDir(join(home, ".chat-bob", "messages"))) {
        n += (await Deno.readTextFile(join(home, ".chat-bob", "messages", f.name))).split("\n")
          .filter((l) => l.includes('"t":"msg"')).length;
      }
    } catch { /* no history yet */ }
    return n;
  };
  for (let round = 0; round < 60; round++) {
    const p = spawnCli(["sync", relay.url, "--json"], bob);
    const delay = 150 + ((round * 97) % 1000);
    const timer = setTimeout(() => {
      try {
        p.child.kill("SIGKILL");
      } catch { /* finished */ }
    }, delay);
    const r = await p.result();
    clearTimeout(timer);
    if (r.code === 0) break;
    kills++;
    progress.push(await historyLines());
  }
  const final = await runCli(["sync", relay.url, "--json"], bob);
  assert.equal(final.code, 0, final.stderr);
  assert.ok(
    progress.some((n) => n > 0 && n < sent.length),
    `no kill landed while messages were being stored: ${progress.join(",")}`,
  );

  // everything is in bob's history exactly once, in order, and the relay holds nothing more
  const hist = await runCli(["history", "alice", "--json"], bob);
  assert.equal(hist.code, 0, hist.stderr);
  const lines = hist.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((m) => m.id), sent.map((e) => e.id));
  assert.deepEqual(await drainAll(relay.url, generateKeyPair()), []);

  // the files themselves parse: identity and contacts as JSON, history line by line
  const dir = join(home, ".chat-bob");
  JSON.parse(await Deno.readTextFile(join(dir, "identity.json")));
  JSON.parse(await Deno.readTextFile(join(dir, "contacts.json")));
  for await (const f of Deno.readDir(join(dir, "messages"))) {
    const text = await Deno.readTextFile(join(dir, "messages", f.name));
    const rows = text.split("\n").filter((l) => l.trim());
    let torn = 0;
    for (const l of rows) {
      try {
        JSON.parse(l);
      } catch {
        torn++;
      }
    }
    assert.ok(torn <= kills, `${torn} unparseable lines after ${kills} kills`);
  }
  console.log(`CLI killed ${kills} times during sync (stored after each: ${progress.join(",")})`);
  await Deno.remove(home, { recursive: true });
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
