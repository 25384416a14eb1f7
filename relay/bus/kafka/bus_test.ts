/**
 * The bus contract against a real Kafka broker (scripts/services.sh), plus what only Kafka has:
 * the topic it creates, batching, packed records in the mailbox's partition beside plain records
 * (as relays before packing wrote them), a throwing handler, an unreachable broker, a broker
 * restart. Ignored without the services; failing under CI=true.
 *
 * Sanitizers are off: the clients keep sockets and timers alive for a moment after close().
 */
import assert from "node:assert/strict";
import {
  Admin,
  compatibilityPartitioner,
  ConfigResourceTypes,
  Consumer,
  Producer,
  stringDeserializers,
  stringSerializers,
} from "@platformatic/kafka";
import { retry } from "@chat-p2p/protocol/async";
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
        await KafkaBus.connect({
          brokers,
          topic,
          partitions: 4,
          logger: quiet,
          ...extra,
        }),
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
  "kafka bus: creates its topic with the configured partitions and the records' own times",
  async ({ kafkaBrokers }) => {
    const [bus] = await buses(1, kafkaBrokers, { partitions: 7 });
    const admin = new Admin({ clientId: "chat-test", bootstrapBrokers: kafkaBrokers });
    try {
      const meta = await admin.metadata({ topics: [bus.topic] });
      assert.equal(meta.topics.get(bus.topic)?.partitionsCount, 7);
      const [described] = await admin.describeConfigs({
        resources: [{
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: bus.topic,
          configurationKeys: ["message.timestamp.type"],
        }],
      });
      assert.deepEqual(
        described.configs.map((c) => [c.name, c.value]),
        [["message.timestamp.type", "CreateTime"]],
        "the records' own hour-coarse times, whatever the broker's default",
      );
    } finally {
      await admin.close();
      await bus.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "kafka bus: a batch is packed one record per partition, in the mailbox's partition; " +
    "plain records (older relays) and odd text still arrive, in order",
  async ({ kafkaBrokers }) => {
    const [a, b] = await buses(2, kafkaBrokers);
    const base = { clientId: "chat-test", bootstrapBrokers: kafkaBrokers };
    const reader = new Consumer({
      ...base,
      groupId: `chat-test-reader-${crypto.randomUUID()}`,
      deserializers: stringDeserializers,
    });
    // As relays before packing wrote: keyed by mailbox, murmur2 partitioner (Java's, kafkajs's).
    const raw = new Producer({
      ...base,
      serializers: stringSerializers,
      partitioner: compatibilityPartitioner,
    });
    try {
      const got: string[] = [];
      await b.subscribe((mb, r) => got.push(`${mb}|${r}`));
      const records: Array<{ partition: number; key: string; value: string; timestamp: bigint }> =
        [];
      const stream = await reader.consume({
        topics: [a.topic],
        mode: "earliest",
        autocommit: false,
      });
      stream.on(
        "data",
        (m) =>
          records.push({
            partition: m.partition,
            key: m.key,
            value: m.value,
            timestamp: m.timestamp,
          }),
      );
      const sent = Array.from({ length: 40 }, (_, i) => [`mb${i % 8}`, `{"n":${i}}`]);
      await Promise.all(sent.map(([mb, r]) => a.publish(mb, r)));
      // A newline cannot be packed: that whole batch goes plain, in order.
      const odd = [["mb0", '{"n":"x"}'], ["mb0", '{"n":"two\nlines"}'], ["mb0", '{"n":"y"}']];
      await Promise.all(odd.map(([mb, r]) => a.publish(mb, r)));
      sent.push(...odd);
      const plain = ["mb0", "mb1", "mb2", "mb3", "mb4", "mb5", "mb6", "mb7", "mb9"];
      await raw.send({
        messages: plain.map((mb) => ({ topic: a.topic, key: mb, value: '{"old":1}' })),
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
      await stream.close();
      const packed = records.filter((r) => r.key === PACKED_KEY);
      assert.ok(packed.length >= 1 && packed.length <= 4, `${packed.length} packed records`);
      for (const r of packed) {
        for (const line of r.value.split("\n")) {
          const mb = line.split("\t")[0];
          // Where the murmur2 partitioner put the plain record keyed by that mailbox.
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
      for (const r of records.filter((x) => x.value !== '{"old":1}')) {
        assert.equal(
          r.timestamp % 3_600_000n,
          0n,
          `the bus's records keep the hour only: ${r.timestamp}`,
        );
      }
    } finally {
      await reader.close(true);
      await raw.close();
      await a.close();
      await b.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "kafka bus: a throwing handler does not stop delivery; closed rejects",
  async ({ kafkaBrokers }) => {
    const [a, b] = await buses(2, kafkaBrokers);
    try {
      const got: string[] = [];
      await b.subscribe((_mb, raw) => {
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
      await b.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "kafka bus: an unreachable broker rejects with BackendUnavailableError",
  async () => {
    const t0 = Date.now();
    await assert.rejects(
      KafkaBus.connect({
        brokers: ["127.0.0.1:1"],
        logger: quiet,
        publishTimeoutMs: 3000,
        subscribeTimeoutMs: 3000,
      }),
      BackendUnavailableError,
    );
    assert.ok(Date.now() - t0 < 15_000, `took ${Date.now() - t0} ms`);
    const bus = new KafkaBus({
      brokers: ["127.0.0.1:1"],
      logger: quiet,
      publishTimeoutMs: 2000,
    });
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

      await t.step("after restart: publish works and the fetcher delivers again", async () => {
        let i = 0;
        // Every 200 ms for up to a minute.
        await retry(() => a.publish("alice", `after-${i++}`), {
          minTimeout: 200,
          multiplier: 1,
          jitter: 0,
          maxAttempts: 300,
        });
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
    // The bus reads without a consumer group, so neither the restart nor close() leaves one (or
    // committed offsets) on the broker.
    const admin = new Admin({ clientId: "chat-test", bootstrapBrokers: kafkaBrokers });
    try {
      const left = [...(await admin.listGroups()).keys()].filter((g) =>
        g.includes(a.instanceId) || g.includes(b.instanceId)
      );
      assert.deepEqual(left, []);
    } finally {
      await admin.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest("kafka bus: remove this run's test topics", async ({ kafkaBrokers }) => {
  const admin = new Admin({ clientId: "chat-test", bootstrapBrokers: kafkaBrokers });
  try {
    const existing = new Set(await admin.listTopics());
    const mine = topics.filter((t) => existing.has(t));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.close();
  }
}, NO_SANITIZERS);
