/**
 * Failures of the scaled backends while clients send: Redis restarted, the Kafka broker restarted,
 * and the relay itself killed with SIGKILL in Redis mode. Every envelope that got `accepted` ends
 * up in the recipient's history exactly once; sends during an outage fail loudly (`unavailable`),
 * never silently; live sockets stay open and the relay serves again when the service is back.
 */
import assert from "node:assert/strict";
import { generateKeyPair, type KeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { type CliOptions, runCli } from "./cli_helpers.ts";
import { drainAll, sendThenKill } from "./crash_helpers.ts";
import { type Frame, RawClient } from "./raw_client.ts";
import { RelayProcess } from "./relay_process.ts";
import {
  requireManaged,
  runId,
  runServicesScript,
  type Services,
  servicesTest,
} from "./services.ts";

const NO_LIMITS = { RELAY_FRAME_RATE: "0", RELAY_SEND_RATE: "0" };

function relayEnv(svc: Services): Record<string, string> {
  return {
    ...NO_LIMITS,
    KAFKA_BROKERS: svc.kafkaBrokers.join(","),
    REDIS_URL: svc.redisUrl,
    KAFKA_TOPIC: `chat-fault-${runId()}`,
    KAFKA_PARTITIONS: "3",
  };
}

/** A CLI profile for bob with alice (a raw key pair) as a contact. */
async function bobProfile(alice: KeyPair): Promise<{ bob: CliOptions; bobKey: string }> {
  const home = await Deno.makeTempDir({ prefix: "chat-fault-" });
  const bob: CliOptions = { home, profile: "bob" };
  assert.equal((await runCli(["init"], bob)).code, 0);
  const bobKey = (await runCli(["id"], bob)).stdout.split("\n")[0];
  assert.equal((await runCli(["add-contact", "alice", toBase64(alice.publicKey)], bob)).code, 0);
  return { bob, bobKey };
}

/**
 * Sends one envelope at a time from `a` to `to`, waiting for each answer, while `during` runs
 * (it stops and restarts a service). Keeps sending until `after` more are accepted once `during`
 * is over. Returns the accepted ids and the error frames.
 */
async function sendThrough(
  a: RawClient,
  alice: KeyPair,
  to: string,
  during: () => Promise<void>,
  before = 20,
  after = 20,
): Promise<{ accepted: string[]; errors: Frame[] }> {
  const accepted: string[] = [], errors: Frame[] = [];
  const one = async (i: number) => {
    const e = sealEnvelope({ v: 1, kind: "message", text: `f${i}`, sent_at: "" }, alice, to);
    a.send({ v: 1, type: "send", envelope: e });
    for (;;) {
      const f = await a.next(undefined, 60_000);
      if (f.type === "accepted" && f.id === e.id) return accepted.push(e.id);
      if (f.type === "error" && f.id === e.id) return errors.push(f);
    }
  };
  let i = 0;
  while (accepted.length < before) await one(i++);
  let done = false;
  const outage = during().finally(() => done = true);
  while (!done) {
    await one(i++);
    await new Promise((r) => setTimeout(r, 50));
  }
  await outage;
  const target = accepted.length + after;
  const deadline = Date.now() + 120_000;
  while (accepted.length < target) {
    if (Date.now() > deadline) {
      throw new Error(`not serving again after the outage: ${JSON.stringify(errors.slice(-3))}`);
    }
    await one(i++);
  }
  return { accepted, errors };
}

/** bob syncs through the CLI; returns the ids in his history with alice, in order. */
async function syncedHistory(url: string, bob: CliOptions): Promise<string[]> {
  const s = await runCli(["sync", url, "--json"], bob);
  assert.equal(s.code, 0, s.stderr);
  const h = await runCli(["history", "alice", "--json"], bob);
  assert.equal(h.code, 0, h.stderr);
  return h.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l).id);
}

/**
 * Log hygiene through an outage: every line the relay wrote (stdout and stderr, its libraries'
 * included) is one JSON object, and the refused sends are reported as one outage with their count,
 * not one line each.
 */
function assertOutageLogged(logs: string[], refused: number) {
  for (const line of logs) {
    assert.doesNotThrow(() => JSON.parse(line), `not a JSON line: ${line}`);
  }
  const lines = logs.map((l) => JSON.parse(l)).filter((l) => l.msg.startsWith("sends refused"));
  assert.ok(lines.length <= 3, `${lines.length} lines for ${refused} refused sends`);
  const over = lines.find((l) => l.msg === "sends refused: backend unavailable: over");
  assert.equal(over?.count, refused, JSON.stringify(lines));
}

function assertExactlyOnce(history: string[], accepted: string[]) {
  assert.equal(new Set(history).size, history.length, "no message twice in history");
  const have = new Set(history);
  const lost = accepted.filter((id) => !have.has(id));
  assert.deepEqual(lost, [], "every accepted envelope is in the history");
}

await servicesTest(
  "faults: Redis restarted while sending: loud failures, nothing accepted lost",
  async (svc) => {
    if (!requireManaged(svc, "the Redis fault test")) return;
    const alice = generateKeyPair();
    const { bob, bobKey } = await bobProfile(alice);
    await using relay = await RelayProcess.start({ env: relayEnv(svc) });
    await using a = await RawClient.authed(relay.url, alice);
    await a.next("synced");
    const { accepted, errors } = await sendThrough(a, alice, bobKey, async () => {
      await runServicesScript(["down", "redis"]);
      await new Promise((r) => setTimeout(r, 1500)); // sends keep coming while it is down
      const r = await fetch(`http://127.0.0.1:${relay.port}/readyz`);
      assert.equal(r.status, 503, "readyz reports the outage");
      const body = await r.json();
      assert.equal(body.mailbox.ok, false);
      assert.match(body.reason, /^mailbox \(redis\): /);
      const h = await fetch(`http://127.0.0.1:${relay.port}/healthz`);
      assert.equal(h.status, 200, "the relay itself is alive: no restart would help");
      await h.body?.cancel();
      await runServicesScript(["up", "redis"]);
    });
    assert.ok(errors.length > 0, "sends during the outage were refused");
    assert.ok(errors.every((e) => e.code === "unavailable"), JSON.stringify(errors));
    assert.equal(a.closeCode, undefined, "the sender's socket stayed open");
    assertOutageLogged(relay.logs, errors.length);
    assertExactlyOnce(await syncedHistory(relay.url, bob), accepted);
    const r = await fetch(`http://127.0.0.1:${relay.port}/readyz`);
    assert.equal(r.status, 200);
    await r.body?.cancel();
  },
  { sanitizeOps: false, sanitizeResources: false },
);

await servicesTest(
  "faults: Kafka broker restarted while sending: loud failures, live delivery resumes",
  async (svc) => {
    if (!requireManaged(svc, "the Kafka fault test")) return;
    const alice = generateKeyPair();
    const { bob, bobKey } = await bobProfile(alice);
    await using relay = await RelayProcess.start({ env: relayEnv(svc) });
    await using a = await RawClient.authed(relay.url, alice);
    await a.next("synced");
    const { accepted, errors } = await sendThrough(a, alice, bobKey, async () => {
      await runServicesScript(["down", "kafka"]);
      await new Promise((r) => setTimeout(r, 1500));
      await runServicesScript(["up", "kafka"]);
    });
    assert.ok(errors.length > 0, "sends during the outage were refused");
    assert.ok(errors.every((e) => e.code === "unavailable"), JSON.stringify(errors));
    assert.equal(a.closeCode, undefined, "the sender's socket stayed open");
    assertOutageLogged(relay.logs, errors.length);

    // live delivery works again: a listener for a fresh key gets a new message pushed
    const carol = generateKeyPair();
    await using c = await RawClient.authed(relay.url, carol);
    await c.next("synced");
    const deadline = Date.now() + 60_000;
    const sentToCarol = new Set<string>();
    for (let got = false; !got;) {
      const e = sealEnvelope(
        { v: 1, kind: "message", text: "live", sent_at: "" },
        alice,
        toBase64(carol.publicKey),
      );
      a.send({ v: 1, type: "send", envelope: e });
      sentToCarol.add(e.id);
      if (c.closeCode !== undefined) throw new Error(`carol's socket closed: ${c.closeCode}`);
      const f = await c.next("deliver", 5_000).catch((err) => {
        if (c.closeCode !== undefined) throw err;
        return undefined; // not yet: the consumer may still be rejoining its group
      });
      // Any of them counts: once the consumer is back, the earlier ones arrive first.
      got = f !== undefined && sentToCarol.has(f.envelope.id);
      if (!got && Date.now() > deadline) {
        const tail = relay.logs.filter((l) => !l.includes("FETCH_START")).slice(-40);
        throw new Error(`live pushes never resumed after the broker restart:\n${tail.join("\n")}`);
      }
    }
    assertExactlyOnce(await syncedHistory(relay.url, bob), accepted);
  },
  { sanitizeOps: false, sanitizeResources: false },
);

await servicesTest(
  "faults: kill -9 of a Redis-mode relay mid-burst loses no accepted envelope",
  async (svc) => {
    const env = relayEnv(svc);
    const alice = generateKeyPair(), bob = generateKeyPair();
    const first = await RelayProcess.start({ env });
    const accepted = await sendThenKill(first, alice, bob, 600, 150);
    await using second = await RelayProcess.start({ env });
    const got = await drainAll(second.url, bob);
    assert.equal(new Set(got).size, got.length, "no envelope delivered twice");
    for (const id of accepted) assert.ok(got.includes(id), `accepted ${id} was lost`);
    assert.deepEqual(await drainAll(second.url, bob), [], "acked envelopes are gone from Redis");
  },
  { sanitizeOps: false, sanitizeResources: false },
);
