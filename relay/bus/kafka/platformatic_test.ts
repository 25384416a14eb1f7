/**
 * The bus contract and the Kafka-only behaviour (batching, packed records in the mailbox's
 * partition, broker restart) for the @platformatic/kafka adapter, against a real broker
 * (scripts/services.sh), plus interoperation with the kafkajs adapter on one topic. Ignored
 * without the services; failing under CI=true.
 *
 * Sanitizers are off: the clients keep sockets and timers alive for a moment after close().
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { busContract, waitFor } from "../contract.ts";
import { KafkaBus, PACKED_KEY } from "./bus.ts";
import { PlatformaticKafkaBus } from "./platformatic.ts";
import { BackendUnavailableError } from "../../ports/errors.ts";
import type { KafkaBusOptions } from "./bus.ts";
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
  const t = `chat-test-pk-${RUN}-${made++}`;
  topics.push(t);
  return t;
}

async function buses(n: number, brokers: string[], extra: Partial<KafkaBusOptions> = {}) {
  const topic = newTopic();
  const out: PlatformaticKafkaBus[] = [];
  try {
    for (let i = 0; i < n; i++) {
      out.push(
        await PlatformaticKafkaBus.connect({
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
  "kafka (platformatic)",
  (n) => {
    if (suite.failure) return Promise.reject(suite.failure);
    return buses(n, suite.services!.kafkaBrokers);
  },
  { testOptions: { ...suite.testOptions, ...NO_SANITIZERS } },
);

await servicesTest(
  "platformatic bus: publishes from one event-loop turn go out in one request",
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
  "platformatic bus: shares a topic with kafkajs relays both ways; packed records land in " +
    "the mailbox's partition; plain records and odd text still arrive",
  async ({ kafkaBrokers }) => {
    const [a] = await buses(1, kafkaBrokers);
    const old = await KafkaBus.connect({
      brokers: kafkaBrokers,
      topic: a.topic,
      logger: quiet,
    });
    const kafka = new Kafka({ brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
    const reader = kafka.consumer({ groupId: `chat-test-reader-${crypto.randomUUID()}` });
    const raw = kafka.producer();
    try {
      const viaOld: string[] = [], viaNew: string[] = [];
      await old.subscribe((mb, r) => viaOld.push(`${mb}|${r}`));
      await a.subscribe((mb, r) => viaNew.push(`${mb}|${r}`));
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
      const odd = [["mb0", '{"n":"x"}'], ["mb0", '{"n":"two\nlines"}'], ["mb0", '{"n":"y"}']];
      await Promise.all(odd.map(([mb, r]) => a.publish(mb, r)));
      sent.push(...odd);
      await Promise.all(["mb1", "mb2"].map((mb) => old.publish(mb, '{"from":"kafkajs"}')));
      await raw.connect();
      await raw.send({
        topic: a.topic,
        messages: ["mb3", "mb9"].map((mb) => ({ key: mb, value: '{"old":1}' })),
      });
      const total = sent.length + 2 + 2;
      await waitFor(() => viaNew.length === total, 20_000, "every announcement (platformatic)");
      await waitFor(() => viaOld.length === total, 20_000, "every announcement (kafkajs)");
      assert.deepEqual([...viaNew].sort(), [...viaOld].sort());
      for (let k = 0; k < 8; k++) {
        assert.deepEqual(
          viaNew.filter((g) => g.startsWith(`mb${k}|{"n"`)).map((g) => g.slice(g.indexOf("|") + 1)),
          sent.filter(([mb]) => mb === `mb${k}`).map(([, r]) => r),
          `order of mb${k}`,
        );
      }
      await waitFor(() => records.length >= 8, 20_000, "records on the topic");
      // Where kafkajs's default partitioner (murmur2, as Java's) put a plain record keyed by mb.
      const partitionOf = (mb: string) => records.find((x) => x.key === mb)?.partition;
      for (const r of records.filter((x) => x.key === PACKED_KEY)) {
        for (const line of r.value.split("\n")) {
          const mb = line.split("\t")[0];
          const want = partitionOf(mb);
          if (want !== undefined) assert.equal(r.partition, want, mb);
        }
      }
      for (const [, r] of odd) {
        assert.ok(records.some((x) => x.key === "mb0" && x.value === r), `${r} as a plain record`);
      }
    } finally {
      await reader.disconnect();
      await raw.disconnect();
      await old.close();
      await a.close();
    }
  },
  NO_SANITIZERS,
);

await servicesTest(
  "platformatic bus: a throwing handler does not stop delivery; closed rejects",
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
  "platformatic bus: an unreachable broker rejects with BackendUnavailableError",
  async () => {
    await assert.rejects(
      PlatformaticKafkaBus.connect({
        brokers: ["127.0.0.1:1"],
        logger: quiet,
        publishTimeoutMs: 3000,
        subscribeTimeoutMs: 3000,
      }),
      BackendUnavailableError,
    );
    const bus = new PlatformaticKafkaBus({
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
  "platformatic bus: broker restart: publish rejects, then the same buses recover and deliver " +
    "what was published while the fetcher was away",
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
          await assert.rejects(a.publish("alice", "during"), BackendUnavailableError);
          assert.equal((await a.check()).ok, false);
        });
      } finally {
        await runServicesScript(["up", "kafka"]);
      }

      await t.step("after restart: publish works and the fetcher delivers again", async () => {
        const end = Date.now() + 60_000;
        for (let i = 0;; i++) {
          try {
            await a.publish("alice", `after-${i}`);
            break;
          } catch (e) {
            if (Date.now() > end) throw e;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
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

await servicesTest("platformatic bus: remove this run's test topics", async ({ kafkaBrokers }) => {
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
