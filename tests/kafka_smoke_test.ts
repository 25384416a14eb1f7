/**
 * kafkajs 2.2.4 (maintenance mode, written before Kafka 4.0 removed old protocol versions in
 * KIP-896) against the broker started by scripts/services.sh: the exact calls the relay makes.
 * If this fails, pin an older broker (CHAT_KAFKA_VERSION) and record it in docs/SERVICES.md.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel, Partitioners } from "kafkajs";
import { runId, servicesTest } from "./services.ts";

await servicesTest(
  "kafkajs: create topic, idempotent acks=-1 produce, consumer-group consume",
  async ({ kafkaBrokers }) => {
    const id = runId();
    const topic = `chat-smoke-${id}`;
    const kafka = new Kafka({
      clientId: `smoke-${id}`,
      brokers: kafkaBrokers,
      // Retriable errors (coordinator loading right after start) are logged at ERROR by kafkajs;
      // real failures surface as rejections, so its log is off.
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 100 },
    });
    const admin = kafka.admin();
    const producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const consumer = kafka.consumer({ groupId: `smoke-group-${id}`, sessionTimeout: 10_000 });
    try {
      await admin.connect();
      const versions = await admin.describeCluster();
      assert.ok(versions.brokers.length >= 1, "metadata lists a broker");

      assert.equal(
        await admin.createTopics({
          topics: [{ topic, numPartitions: 3, replicationFactor: 1 }],
          waitForLeaders: true,
        }),
        true,
      );
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      assert.equal(meta.topics[0].partitions.length, 3, "explicit partition count");

      const received: { key: string; value: string; partition: number }[] = [];
      let done: () => void = () => {};
      const all = new Promise<void>((r) => (done = r));
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ message, partition }) => {
          received.push({
            key: message.key?.toString() ?? "",
            value: message.value?.toString() ?? "",
            partition,
          });
          if (received.length === 30) done();
          return Promise.resolve();
        },
      });

      await producer.connect();
      const messages = Array.from({ length: 30 }, (_, i) => ({
        key: `mailbox-${i % 3}`,
        value: `envelope-${i}`,
      }));
      const result = await producer.send({ topic, acks: -1, messages });
      assert.ok(result.length >= 1, "produce acknowledged");
      assert.equal(result[0].errorCode, 0);

      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        all,
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`only ${received.length}/30 messages consumed in 30 s`)),
            30_000,
          );
        }),
      ]).finally(() => clearTimeout(timer));

      // Per-key order holds: each key's values appear in produce order, all on one partition.
      for (const k of ["mailbox-0", "mailbox-1", "mailbox-2"]) {
        const mine = received.filter((m) => m.key === k);
        assert.equal(mine.length, 10);
        assert.deepEqual(
          mine.map((m) => m.value),
          messages.filter((m) => m.key === k).map((m) => m.value),
        );
        assert.equal(new Set(mine.map((m) => m.partition)).size, 1);
      }
    } finally {
      await consumer.disconnect().catch(() => {});
      await producer.disconnect().catch(() => {});
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect().catch(() => {});
    }
  },
  // kafkajs keeps internal timers (request queue, heartbeat) past disconnect() for a tick.
  { sanitizeOps: false, sanitizeResources: false },
);
