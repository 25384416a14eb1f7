/**
 * Failures of the scaled backends while clients send: Redis restarted, the Kafka broker restarted,
 * and the relay itself killed with SIGKILL in Redis mode. Every envelope that got `accepted` is
 * in the recipient's mailbox exactly once; sends during an outage fail loudly (`unavailable`),
 * never silently; live sockets stay open and the relay serves again when the service is back.
 */
import assert from "node:assert/strict";
import { drainAll, sendThenKill } from "./crash_helpers.ts";
import { envelope, type Frame, pairBox, RawClient, type TestMailbox } from "./raw_client.ts";
import { RelayProcess } from "./relay_process.ts";
import {
  requireManaged,
  runServicesScript,
  scaledRelayEnv,
  type Services,
  servicesTest,
} from "./services.ts";

const NO_LIMITS = { RELAY_FRAME_RATE: "0", RELAY_SEND_RATE: "0" };

function relayEnv(svc: Services): Record<string, string> {
  return {
    ...NO_LIMITS,
    ...scaledRelayEnv(svc, "fault"),
  };
}

/**
 * Sends one envelope at a time from `a` to `to`, waiting for each answer, while `during` runs
 * (it stops and restarts a service). Keeps sending until `after` more are accepted once `during`
 * is over. Returns the accepted ids and the error frames.
 */
async function sendThrough(
  a: RawClient,
  to: TestMailbox,
  during: () => Promise<void>,
  before = 20,
  after = 20,
): Promise<{ accepted: string[]; errors: Frame[] }> {
  const accepted: string[] = [], errors: Frame[] = [];
  const one = async () => {
    const e = envelope(to);
    a.sendEnvelope(e);
    for (;;) {
      const f = await a.next(undefined, 60_000);
      if (f.type === "accepted" && f.id === e.id) return accepted.push(e.id);
      if (f.type === "error" && f.id === e.id) return errors.push(f);
    }
  };
  while (accepted.length < before) await one();
  let done = false;
  const outage = during().finally(() => done = true);
  while (!done) {
    await one();
    await new Promise((r) => setTimeout(r, 50));
  }
  await outage;
  const target = accepted.length + after;
  const deadline = Date.now() + 120_000;
  while (accepted.length < target) {
    if (Date.now() > deadline) {
      throw new Error(`not serving again after the outage: ${JSON.stringify(errors.slice(-3))}`);
    }
    await one();
  }
  return { accepted, errors };
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

function assertExactlyOnce(held: string[], accepted: string[]) {
  assert.equal(new Set(held).size, held.length, "no envelope twice in the mailbox");
  const have = new Set(held);
  const lost = accepted.filter((id) => !have.has(id));
  assert.deepEqual(lost, [], "every accepted envelope is in the mailbox");
}

await servicesTest(
  "faults: Redis restarted while sending: loud failures, nothing accepted lost",
  async (svc) => {
    if (!requireManaged(svc, "the Redis fault test")) return;
    await using relay = await RelayProcess.start({ env: relayEnv(svc) });
    const bob = pairBox();
    await RawClient.register(relay.url, bob);
    await using a = await RawClient.connect(relay.url);
    const { accepted, errors } = await sendThrough(a, bob, async () => {
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
    assertExactlyOnce(await drainAll(relay.url, bob), accepted);
    const r = await fetch(`http://127.0.0.1:${relay.port}/readyz`);
    assert.equal(r.status, 200);
    await r.body?.cancel();
  },
  { sanitizeOps: false, sanitizeResources: false },
);

await servicesTest(
  "faults: Kafka broker restarted while sending: loud failures, live delivery across relays resumes",
  async (svc) => {
    if (!requireManaged(svc, "the Kafka fault test")) return;
    // Two relays, whose sends need the bus; and one alone (its own topic, so no other relay's
    // lease), whose sends do not: it publishes nothing and keeps accepting.
    const env = relayEnv(svc);
    await using relay = await RelayProcess.start({ env });
    await using other = await RelayProcess.start({ env });
    await using solo = await RelayProcess.start({ env: relayEnv(svc) });
    const bob = pairBox(), dave = pairBox();
    await RawClient.register(relay.url, bob);
    await RawClient.register(solo.url, dave);
    await using a = await RawClient.connect(relay.url);
    await using d = await RawClient.connect(solo.url);
    const soloAnswers: string[] = [];
    const toDave = async () => soloAnswers.push((await d.sendAndWait(envelope(dave))).type);
    await toDave(); // its first put finds it alone
    const { accepted, errors } = await sendThrough(a, bob, async () => {
      await runServicesScript(["down", "kafka"]);
      await new Promise((r) => setTimeout(r, 1500));
      for (let i = 0; i < 5; i++) await toDave();
      const ready = async (r: RelayProcess) =>
        await (await fetch(`http://127.0.0.1:${r.port}/readyz`)).json();
      const [alone, shared] = [await ready(solo), await ready(relay)];
      assert.deepEqual([alone.ready, alone.bus.ok], [true, false], "alone: ready without Kafka");
      assert.deepEqual([shared.ready, shared.bus.ok], [false, false], "shared: not ready");
      await runServicesScript(["up", "kafka"]);
    });
    assert.deepEqual(soloAnswers, Array(6).fill("accepted"), "the relay alone kept accepting");
    assert.ok(errors.length > 0, "sends during the outage were refused");
    assert.ok(errors.every((e) => e.code === "unavailable"), JSON.stringify(errors));
    assert.equal(a.closeCode, undefined, "the sender's socket stayed open");
    assertOutageLogged(relay.logs, errors.length);

    // live delivery works again: a reader of a fresh mailbox on the other relay gets a new
    // message pushed through Kafka
    const carol = pairBox();
    await using c = await RawClient.reader(other.url, carol);
    const deadline = Date.now() + 60_000;
    const sentToCarol = new Set<string>();
    for (let got = false; !got;) {
      const e = envelope(carol);
      a.sendEnvelope(e);
      sentToCarol.add(e.id);
      if (c.closeCode !== undefined) throw new Error(`carol's socket closed: ${c.closeCode}`);
      const f = await c.next("deliver", 5_000).catch((err) => {
        if (c.closeCode !== undefined) throw err;
        return undefined; // not yet: the consumer may still be rejoining its group
      });
      // Any of them counts: once the consumer is back, the earlier ones arrive first.
      got = f !== undefined && sentToCarol.has(f.envelope.id);
      if (!got && Date.now() > deadline) {
        const tail = other.logs.filter((l) => !l.includes("FETCH_START")).slice(-40);
        throw new Error(`live pushes never resumed after the broker restart:\n${tail.join("\n")}`);
      }
    }
    assertExactlyOnce(await drainAll(relay.url, bob), accepted);
  },
  { sanitizeOps: false, sanitizeResources: false },
);

await servicesTest(
  "faults: kill -9 of a Redis-mode relay mid-burst loses no accepted envelope",
  async (svc) => {
    const env = relayEnv(svc);
    const bob = pairBox();
    const first = await RelayProcess.start({ env });
    const accepted = await sendThenKill(first, bob, 600, 150);
    await using second = await RelayProcess.start({ env });
    const got = await drainAll(second.url, bob);
    assert.equal(new Set(got).size, got.length, "no envelope delivered twice");
    for (const id of accepted) assert.ok(got.includes(id), `accepted ${id} was lost`);
    assert.deepEqual(await drainAll(second.url, bob), [], "acked envelopes are gone from Redis");
  },
  { sanitizeOps: false, sanitizeResources: false },
);
