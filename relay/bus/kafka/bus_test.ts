/**
 * The bus contract against a real Kafka broker (scripts/services.sh), plus what only Kafka has:
 * batching, broker restart (publish fails, then recovers on the same bus; the consumer comes
 * back), a throwing handler. Ignored without the services; failing under CI=true.
 *
 * Sanitizers are off for these tests: kafkajs keeps internal timers and sockets (request queue
 * checks, retry sleeps, socket teardown) alive for a moment after disconnect() resolves.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { busContract, waitFor } from "../contract.ts";
import { KafkaBus, type KafkaBusOptions, PACKED_KEY } from "./bus.ts";
import { BackendUnavailableError } from "../../ports/errors.ts";
import {
  requireManaged,
  runId,
  runServicesScript,
  servicesForSuite,
  servicesTest,
} from "../../../tests/services.ts";

const RUN = runId();
const topics: string[] = [];
let made = 0;
const quiet = { warn: () => {}, error: () => {} };
const NO_SANITIZERS = { sanitizeOps: false, sanitizeResources: false };

function newTopic(): string {
  const t = `chat-test-${RUN}-${made++}`;
  topics.push(t);
  return t;
}

async function buses(n: number, brokers: string[], extra: Partial<KafkaBusOptions> = {}) {
  const topic = newTopic();
  const out: KafkaBus[] = [];
  try {
    for (let i = 0; i < n; i++) {
      out.push(
        await KafkaBus.connect({ brokers, topic, partitions: 4, logger: quiet, ...extra }),
      );
    }
  } catch (e) {
    for (const b of out) await b.close();
    throw e;
  }
  return out;
}

const suite = await servicesForSuite();

busContract(
  "kafka",
  (n) => {
    if (suite.failure) return Promise.reject(suite.failure);
    return buses(n, suite.services!.kafkaBrokers);
  },
  { testOptions: { ...suite.testOptions, ...NO_SANITIZERS } },
);

await servicesTest(
  "kafka bus: creates its topic with the configured partitions",
  async ({ kafkaBrokers }) => {
    const [bus] = await buses(1, kafkaBrokers, { partitions: 7 });
    const admin = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
    try {
      await admin.connect();
      const meta = await admin.fetchTopicMetadata({ topics: [bus.topic] });
      assert.equal(meta.topics[0].partitions.length, 7);
      assert.equal(bus.groupId, `chat-relay-${bus.instanceId}`);
    } finally {
      await admin.disconnect();
      await bus.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "kafka bus: publishes from one event-loop turn go out in one request",
  async ({ kafkaBrokers }) => {
    const [a, b] = await buses(2, kafkaBrokers);
    try {
      const got: string[] = [];
      await b.subscribe((mb, raw) => got.push(`${mb}:${raw}`));
      await a.publish("warm", "up");
      await waitFor(() => got.length === 1, 20_000, "warm-up");
      const before = { ...a.stats };
      const sent = Array.from({ length: 50 }, (_, i) => `e${i}`);
      await Promise.all(sent.map((raw, i) => a.publish(`mb${i % 5}`, raw)));
      assert.equal(a.stats.batches - before.batches, 1, "one produce request");
      assert.equal(a.stats.messages - before.messages, 50);
      await waitFor(() => got.length === 51, 20_000, "50 announcements");
      // Keyed by mailbox: per-mailbox order holds even across partitions.
      for (let k = 0; k < 5; k++) {
        const mine = got.filter((g) => g.startsWith(`mb${k}:`)).map((g) => g.split(":")[1]);
        assert.deepEqual(mine, sent.filter((_, i) => i % 5 === k));
      }
    } finally {
      await a.close();
      await b.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "kafka bus: a batch is packed one record per partition, in the mailbox's partition; " +
    "plain records (older relays) and odd text still arrive",
  async ({ kafkaBrokers }) => {
    const [a, b] = await buses(2, kafkaBrokers);
    const kafka = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
    const reader = kafka.consumer({ groupId: `chat-test-reader-${crypto.randomUUID()}` });
    // Configured as the bus's own producer was before packing (murmur2 on the key).
    const raw = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    try {
      const got: string[] = [];
      await b.subscribe((mb, r) => got.push(`${mb}|${r}`));
      const records: Array<{ partition: number; key: string; value: string }> = [];
      await reader.connect();
      await reader.subscribe({ topics: [a.topic], fromBeginning: true });
      await reader.run({
        eachMessage: ({ partition, message }) => {
          records.push({
            partition,
            key: message.key!.toString(),
            value: message.value!.toString(),
          });
          return Promise.resolve();
        },
      });
      const sent = Array.from({ length: 40 }, (_, i) => [`mb${i % 8}`, `{"n":${i}}`]);
      await Promise.all(sent.map(([mb, r]) => a.publish(mb, r)));
      // A newline cannot be packed: that whole batch goes plain, in order.
      const odd = [["mb0", '{"n":"x"}'], ["mb0", '{"n":"two\nlines"}'], ["mb0", '{"n":"y"}']];
      await Promise.all(odd.map(([mb, r]) => a.publish(mb, r)));
      sent.push(...odd);
      await raw.connect();
      // Plain records, as an older relay (or any keyed producer) writes them: kafkajs's default
      // partitioner puts each in its mailbox's partition.
      const plain = ["mb0", "mb1", "mb2", "mb3", "mb4", "mb5", "mb6", "mb7", "mb9"];
      await raw.send({
        topic: a.topic,
        messages: plain.map((mb) => ({ key: mb, value: '{"old":1}' })),
      });
      await waitFor(() => got.length === 43 + plain.length, 20_000, "every announcement");
      const lines = () =>
        records.filter((r) => r.key === PACKED_KEY).reduce(
          (n, r) => n + r.value.split("\n").length,
          0,
        );
      await waitFor(
        () => lines() === 40 && records.filter((r) => r.key !== PACKED_KEY).length === 12,
        20_000,
        "every record on the topic",
      );
      const packed = records.filter((r) => r.key === PACKED_KEY);
      assert.ok(packed.length >= 1 && packed.length <= 4, `${packed.length} packed records`);
      for (const r of packed) {
        for (const line of r.value.split("\n")) {
          const mb = line.split("\t")[0];
          // Where the default partitioner sends a record keyed by that mailbox.
          assert.equal(r.partition, records.find((x) => x.key === mb)?.partition, mb);
        }
      }
      for (const [, r] of odd) {
        assert.ok(records.some((x) => x.key === "mb0" && x.value === r), `${r} as a plain record`);
      }
      for (let k = 0; k < 8; k++) {
        assert.deepEqual(
          got.filter((g) => g.startsWith(`mb${k}|`) && !g.includes("old")).map((g) =>
            g.slice(g.indexOf("|") + 1)
          ),
          sent.filter(([mb]) => mb === `mb${k}`).map(([, r]) => r),
          `order of mb${k}`,
        );
      }
      assert.ok(got.includes('mb9|{"old":1}'), "a plain record from an older relay");
    } finally {
      await reader.disconnect();
      await raw.disconnect();
      await a.close();
      await b.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "kafka bus: the consumer's position is committed within the commit interval, also when quiet",
  async ({ kafkaBrokers }) => {
    const [a, b] = await buses(2, kafkaBrokers);
    const admin = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
    try {
      const got: string[] = [];
      await b.subscribe((_mb, raw) => got.push(raw));
      await Promise.all(Array.from({ length: 20 }, (_, i) => a.publish(`mb${i % 4}`, `e${i}`)));
      await waitFor(() => got.length === 20, 20_000, "20 announcements");
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(a.topic);
      // Nothing else arrives: only the timer can commit what b has read.
      const committedAtEnd = async () => {
        const [t] = await admin.fetchOffsets({ groupId: b.groupId, topics: [a.topic] });
        return t.partitions.every((p) =>
          p.offset === ends.find((e) => e.partition === p.partition)!.high
        );
      };
      const end = Date.now() + 15_000;
      while (!(await committedAtEnd())) {
        if (Date.now() > end) throw new Error("positions not committed within 15 s");
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await admin.disconnect();
      await a.close();
      await b.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "kafka bus: a throwing handler does not stop delivery",
  async ({ kafkaBrokers }) => {
    const [a] = await buses(1, kafkaBrokers);
    try {
      const got: string[] = [];
      await a.subscribe((_mb, raw) => {
        got.push(raw);
        if (raw === "boom") throw new Error("handler bug");
      });
      await a.publish("x", "boom");
      await a.publish("x", "after");
      await waitFor(() => got.length === 2, 20_000, "both");
      assert.deepEqual(got, ["boom", "after"]);
      await a.close();
      await assert.rejects(a.publish("x", "closed"), BackendUnavailableError);
    } finally {
      await a.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "kafka bus: an unreachable broker rejects with BackendUnavailableError",
  async () => {
    const t0 = Date.now();
    await assert.rejects(
      KafkaBus.connect({ brokers: ["127.0.0.1:1"], logger: quiet, publishTimeoutMs: 3000 }),
      BackendUnavailableError,
    );
    assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
    const bus = new KafkaBus({ brokers: ["127.0.0.1:1"], logger: quiet, publishTimeoutMs: 2000 });
    try {
      await assert.rejects(bus.publish("x", "y"), BackendUnavailableError);
      assert.equal((await bus.check()).ok, false);
    } finally {
      await bus.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "kafka bus: broker restart: publish rejects, then the same buses recover and deliver",
  async (services, t) => {
    const { kafkaBrokers } = services;
    if (!requireManaged(services, "the Kafka restart test")) return;
    const [a, b] = await buses(2, kafkaBrokers, { publishTimeoutMs: 4000 });
    try {
      const got: string[] = [];
      await b.subscribe((_mb, raw) => got.push(raw));
      await a.publish("alice", "before");
      await waitFor(() => got.includes("before"), 20_000, "announcement before the restart");

      await runServicesScript(["down", "kafka"]);
      try {
        await t.step("while down: publish rejects, check fails, nothing crashes", async () => {
          const t0 = Date.now();
          await assert.rejects(a.publish("alice", "during"), BackendUnavailableError);
          assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
          assert.equal((await a.check()).ok, false);
        });
      } finally {
        await runServicesScript(["up", "kafka"]);
      }

      await t.step("after restart: publish works and the consumer delivers again", async () => {
        const end = Date.now() + 60_000;
        for (let i = 0;; i++) {
          try {
            await a.publish("alice", `after-${i}`);
            break;
          } catch (e) {
            if (Date.now() > end) throw e;
            await new Promise((r) => setTimeout(r, 500));
          }
        }
        // The consumer was restarted by itself; a fresh announcement reaches it.
        await waitFor(
          () => got.some((g) => g.startsWith("after-")),
          60_000,
          "delivery after restart",
        );
        assert.equal((await a.check()).ok, true);
      });
    } finally {
      await a.close();
      await b.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest("kafka bus: remove this run's test topics", async ({ kafkaBrokers }) => {
  const admin = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    const existing = new Set(await admin.listTopics());
    const mine = topics.filter((t) => existing.has(t));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.disconnect();
  }
}, NO_SANITIZERS);
