/**
 * Kafka `Bus` for scaled mode: "mailbox X has envelope E" announcements on one topic, keyed by
 * mailbox id so announcements for one recipient stay in one partition, in order.
 *
 * Every relay must see every announcement (the recipient's socket may be on any relay), so each
 * relay instance reads the whole topic in a consumer group of its own, `chat-relay-<instanceId>`,
 * starting at the end of the topic when it subscribes. Announcements a relay misses while it is
 * down are harmless: on connect a client gets everything pending from its mailbox (the mailbox,
 * not the bus, is the source of truth). See docs/SERVICES.md.
 *
 * Producer: acks=-1 (all in-sync replicas), idempotent, one request in flight; concurrent
 * publishes are batched into one produce request. Failures reject with
 * {@linkcode BackendUnavailableError}; kafkajs reconnects by itself and a crashed consumer is
 * restarted. Nothing here throws asynchronously outside a returned promise.
 *
 * @module
 */
import {
  type Admin,
  type Consumer,
  Kafka,
  type KafkaMessage,
  logLevel,
  type Message,
  Partitioners,
  type Producer,
} from "kafkajs";
import type { Bus, BusHandler } from "../../ports/bus.ts";
import { type AdapterLogger, routeRuntimeWarnings } from "../../infra/log.ts";
import { type BackendStatus, BackendUnavailableError, errorMessage } from "../../ports/errors.ts";
import {
  backoffDelay,
  Batcher,
  deadline,
  isTimeoutError,
  retry,
  RetryError,
} from "@chat-p2p/protocol/async";

/** Where the adapter reports trouble. */
export type KafkaBusLogger = AdapterLogger;

/** Options for {@linkcode KafkaBus}. */
export interface KafkaBusOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  /** Topic for announcements (default `chat-envelopes`). */
  topic?: string;
  /** Partitions when this relay creates the topic (default 12). */
  partitions?: number;
  /** Replication factor when this relay creates the topic (default: min(3, brokers in cluster)). */
  replicationFactor?: number;
  /** kafkajs client id (default `chat-relay`). */
  clientId?: string;
  /**
   * Unique per live relay process; names the consumer group `chat-relay-<instanceId>`
   * (default: a random UUID). Two live relays must never share one.
   */
  instanceId?: string;
  /** A publish rejects after this long without an acknowledgement (default 10 s). */
  publishTimeoutMs?: number;
  /** `subscribe` rejects when the consumer has not joined and fetched after this (default 30 s). */
  subscribeTimeoutMs?: number;
  /** Trouble goes here (default: JSON lines on stderr). */
  logger?: KafkaBusLogger;
}

const MAX_BATCH_MESSAGES = 500;
/** How often the consumer commits its position (see #startConsumer). */
const COMMIT_INTERVAL_MS = 5000;
const MAX_BATCH_BYTES = 1024 * 1024;
/**
 * Record key of a packed record: announcements for one partition, one per line,
 * `<mailbox id>\t<envelope JSON>`. Not base64, so never a mailbox id.
 */
export const PACKED_KEY = "chat-p2p:announcements/1";
/** Topic `max.message.bytes` when the relay creates the topic: room for a 1 MiB ciphertext. */
const TOPIC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

const stderrLogger: KafkaBusLogger = {
  warn: (msg, fields) => console.error(JSON.stringify({ level: "warn", msg, ...fields })),
  error: (msg, fields) => console.error(JSON.stringify({ level: "error", msg, ...fields })),
};

// kafkajs logs every failed request attempt at ERROR; the outcome reaches us through promises and
// CRASH events, which the adapter reports once per outage. These per-attempt lines are dropped.
const NOISE: [namespace: string, message: RegExp][] = [
  ["Connection", /^(Response |Connection error|Connection timeout)/],
  ["BrokerPool", /^Failed to connect to seed broker/],
  ["Consumer", /^(Crash|Restarting the consumer)/],
  ["Runner", /./],
  ["Producer", /^Failed to send messages/],
];

/** What went wrong, in words: the last attempt's error for a retry, "no answer" for a deadline. */
function describe(e: unknown): string {
  if (e instanceof RetryError) return describe(e.cause);
  return isTimeoutError(e) ? "no answer in time" : errorMessage(e);
}

function unavailable(what: string, e: unknown): BackendUnavailableError {
  if (e instanceof BackendUnavailableError) return e;
  return new BackendUnavailableError(`Kafka unavailable: ${what}: ${describe(e)}`, { cause: e });
}

/** One announcement waiting for a produce request. */
interface Announcement {
  mailboxId: string;
  raw: string;
  /** Upper bound of its size in a request, for the batch's byte cap. */
  bytes: number;
}

/** The bus between relays, on an Apache Kafka topic. */
export class KafkaBus implements Bus {
  readonly kind = "kafka";
  readonly topic: string;
  readonly groupId: string;
  readonly instanceId: string;
  /** Produce requests sent and messages in them (for metrics and the batching test). */
  readonly stats = { batches: 0, messages: 0 };
  #opts: Required<Omit<KafkaBusOptions, "replicationFactor" | "logger">> & {
    replicationFactor?: number;
  };
  #log: KafkaBusLogger;
  #kafka: Kafka;
  #admin?: Admin;
  #adminConnected?: Promise<void>;
  #topicReady?: Promise<void>;
  #producer?: Producer;
  #producerConnected?: Promise<void>;
  #producerBroken = false;
  #consumer?: Consumer;
  #handler?: BusHandler;
  /**
   * Publishes from one event-loop turn go out together, one produce request at a time, capped
   * per request. Batcher schedules with setImmediate, not setTimeout(0): a Deno timer waits
   * 1-2 ms (bench/README.md, finding 1).
   */
  #publishes = new Batcher<Announcement, void>((batch) => this.#produce(batch), {
    maxItems: MAX_BATCH_MESSAGES,
    maxWeight: MAX_BATCH_BYTES,
    weigh: (a) => a.bytes,
  });
  /** Partitions of the topic (read when it was found ready) and where each mailbox goes. */
  #partitions = 0;
  #partitionOf = new Map<string, number>();
  #partitioner = Partitioners.DefaultPartitioner();
  /** Next offset to read per partition, not yet committed, and the timer that commits them. */
  #positions = new Map<number, string>();
  #commitTimer?: ReturnType<typeof setInterval>;
  #restartTimer?: ReturnType<typeof setTimeout>;
  /** Consumer restarts since the last successful fetch (for the backoff). */
  #restarts = 0;
  #closed = false;
  #down = false;
  #cleanups: Promise<unknown>[] = [];

  constructor(options: KafkaBusOptions) {
    if (options.brokers.length === 0) throw new TypeError("KafkaBus needs at least one broker");
    this.#opts = {
      brokers: options.brokers,
      topic: options.topic ?? "chat-envelopes",
      partitions: options.partitions ?? 12,
      replicationFactor: options.replicationFactor,
      clientId: options.clientId ?? "chat-relay",
      instanceId: options.instanceId ?? crypto.randomUUID(),
      publishTimeoutMs: options.publishTimeoutMs ?? 10_000,
      subscribeTimeoutMs: options.subscribeTimeoutMs ?? 30_000,
    };
    this.topic = this.#opts.topic;
    this.instanceId = this.#opts.instanceId;
    this.groupId = `chat-relay-${this.instanceId}`;
    this.#log = options.logger ?? stderrLogger;
    const log = this.#log;
    routeRuntimeWarnings(log);
    this.#kafka = new Kafka({
      clientId: this.#opts.clientId,
      brokers: this.#opts.brokers,
      connectionTimeout: 3000,
      requestTimeout: 10_000,
      retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 5 },
      logLevel: logLevel.ERROR,
      logCreator: () => ({ namespace, level, log: entry }) => {
        if (level > logLevel.ERROR) return;
        const { message, timestamp: _t, logger: _l, stack: _s, ...rest } = entry;
        if (NOISE.some(([ns, re]) => namespace === ns && re.test(message))) return;
        log.error(`kafkajs: ${message}`, { kind: "kafka", namespace, ...rest });
      },
    });
  }

  /** Makes a bus, creates the topic if absent and connects the producer. */
  static async connect(options: KafkaBusOptions): Promise<KafkaBus> {
    const bus = new KafkaBus(options);
    try {
      await bus.#ensureTopic();
      await bus.#getProducer();
    } catch (e) {
      await bus.close();
      throw unavailable("connect", e);
    }
    return bus;
  }

  #markDown(what: string, e: unknown): void {
    if (this.#down || this.#closed) return;
    this.#down = true;
    this.#log.warn("kafka unavailable", { kind: "kafka", op: what, err: describe(e) });
  }

  #markUp(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#log.warn("kafka available again", { kind: "kafka" });
  }

  async #getAdmin(): Promise<Admin> {
    if (!this.#admin) {
      this.#admin = this.#kafka.admin();
      this.#adminConnected = this.#admin.connect();
    }
    try {
      await deadline(this.#adminConnected!, this.#opts.publishTimeoutMs);
    } catch (e) {
      // Start over next time; kafkajs would otherwise keep the failed connect promise.
      const a = this.#admin;
      this.#admin = undefined;
      this.#track(a.disconnect());
      throw e;
    }
    return this.#admin;
  }

  #ensureTopic(): Promise<void> {
    this.#topicReady ??= (async () => {
      const admin = await this.#getAdmin();
      const existing = await admin.listTopics();
      if (!existing.includes(this.topic)) await this.#createTopic(admin);
      // Ready means every partition has a leader that answers ListOffsets. Right after creation
      // (ours or another relay's) a partition can still say "not the leader" for a moment, even
      // with waitForLeaders; the consumer's first step is exactly that request. About 15 s of
      // attempts, 100 ms apart at first, then every second.
      const offsets = await retry(() => admin.fetchTopicOffsets(this.topic), {
        minTimeout: 100,
        maxTimeout: 1000,
        jitter: 0,
        maxAttempts: 18,
      });
      this.#partitions = offsets.length;
    })();
    this.#topicReady.catch(() => (this.#topicReady = undefined));
    return this.#topicReady;
  }

  async #createTopic(admin: Admin): Promise<void> {
    const cluster = await admin.describeCluster();
    const replicationFactor = this.#opts.replicationFactor ??
      Math.max(1, Math.min(3, cluster.brokers.length));
    try {
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{
          topic: this.topic,
          numPartitions: this.#opts.partitions,
          replicationFactor,
          configEntries: [
            { name: "max.message.bytes", value: String(TOPIC_MAX_MESSAGE_BYTES) },
            { name: "min.insync.replicas", value: String(Math.min(2, replicationFactor)) },
          ],
        }],
      });
    } catch (e) {
      // Another relay created it between listTopics and createTopics.
      if (!(await admin.listTopics()).includes(this.topic)) throw e;
    }
  }

  async #getProducer(): Promise<Producer> {
    if (this.#producer && this.#producerBroken) {
      // After a failed send the idempotent producer's sequence numbers are in an unknown state;
      // a new producer gets a new producer id, so a later message can never be mistaken for a
      // retry of the failed one.
      const old = this.#producer;
      this.#producer = undefined;
      this.#track(old.disconnect());
    }
    if (!this.#producer) {
      this.#producerBroken = false;
      this.#producer = this.#kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
        // Bounded, so a publish fails while Kafka is away instead of retrying forever (the
        // idempotent default); see #producerBroken for why that stays safe.
        retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 5 },
      });
      this.#producerConnected = this.#producer.connect();
    }
    const p = this.#producer;
    try {
      await deadline(this.#producerConnected!, this.#opts.publishTimeoutMs);
    } catch (e) {
      this.#producerBroken = true;
      throw e;
    }
    return p;
  }

  publish(mailboxId: string, raw: string): Promise<void> {
    if (this.#closed) return Promise.reject(new BackendUnavailableError("Kafka bus is closed"));
    const bytes = raw.length * 3 + mailboxId.length; // upper bound of UTF-8 size, no encoding
    return this.#publishes.add({ mailboxId, raw, bytes });
  }

  /**
   * The partition of a mailbox: murmur2 of its id modulo the partition count, exactly where
   * kafkajs's (and Java's) default partitioner puts a record keyed by it. Cached: the hash and
   * the partitioner's per-message work were a sixth of a publish's CPU.
   */
  #partition(mailboxId: string): number {
    let p = this.#partitionOf.get(mailboxId);
    if (p === undefined) {
      const meta = Array.from({ length: this.#partitions }, (_, i) => ({
        partitionId: i,
        leader: 0,
        partitionErrorCode: 0,
        replicas: [0],
        isr: [0],
      }));
      p = this.#partitioner({
        topic: this.topic,
        partitionMetadata: meta,
        message: { key: mailboxId, value: null },
      });
      if (this.#partitionOf.size >= 100_000) this.#partitionOf.clear();
      this.#partitionOf.set(mailboxId, p);
    }
    return p;
  }

  /**
   * One record per partition per batch: kafkajs encodes records one by one (a fresh buffer and
   * several small ones each, and a quadratic grouping step), so 500 announcements as 500 records
   * cost most of the bus's CPU. Packed, they are a dozen records. A batch with an announcement
   * that could not be split back (a tab or newline where the format needs none) goes as plain
   * records, one per announcement keyed by its mailbox, as before packing, so order still holds.
   */
  #records(batch: Announcement[]): Message[] {
    const plain = this.#partitions === 0 ||
      batch.some((q) =>
        q.mailboxId.includes("\t") || q.mailboxId.includes("\n") || q.raw.includes("\n")
      );
    if (plain) return batch.map((q) => ({ key: q.mailboxId, value: q.raw }));
    const byPartition = new Map<number, string[]>();
    for (const q of batch) {
      const p = this.#partition(q.mailboxId);
      let lines = byPartition.get(p);
      if (!lines) byPartition.set(p, lines = []);
      lines.push(`${q.mailboxId}\t${q.raw}`);
    }
    return [...byPartition].map(([partition, lines]) => ({
      partition,
      key: PACKED_KEY,
      value: lines.join("\n"),
    }));
  }

  /** Sends one batch in one produce request; rejects with BackendUnavailableError. */
  async #produce(batch: Announcement[]): Promise<void[]> {
    if (this.#closed) throw new BackendUnavailableError("Kafka bus is closed");
    try {
      await this.#ensureTopic();
      const producer = await this.#getProducer();
      const messages = this.#records(batch);
      try {
        const sent = await deadline(
          producer.send({ topic: this.topic, acks: -1, messages }),
          this.#opts.publishTimeoutMs,
        );
        // kafkajs leaves out, without an error, records for a partition its metadata does not
        // have (the topic was recreated with fewer): fail loudly and read the count again.
        const acked = new Set(sent.map((r) => r.partition));
        const lost = messages.find((m) => m.partition !== undefined && !acked.has(m.partition));
        if (lost) {
          this.#topicReady = undefined;
          this.#partitionOf.clear();
          throw new Error(`partition ${lost.partition} of ${this.topic} is not known to Kafka`);
        }
      } catch (e) {
        this.#producerBroken = true;
        throw e;
      }
      this.stats.batches++;
      this.stats.messages += batch.length;
      this.#markUp();
      return [];
    } catch (e) {
      this.#markDown("publish", e);
      throw unavailable("publish", e);
    }
  }

  async subscribe(handler: BusHandler): Promise<void> {
    if (this.#closed) throw new BackendUnavailableError("Kafka bus is closed");
    this.#handler = handler;
    if (this.#consumer) return;
    try {
      await this.#ensureTopic();
      await this.#forgetOldOffsets();
      await this.#startConsumer(true);
    } catch (e) {
      this.#markDown("subscribe", e);
      throw unavailable("subscribe", e);
    }
  }

  /**
   * A relay starts at the end of the topic. With a stable instanceId the group may hold offsets
   * from an earlier run; deleting the (empty) group makes the new consumer start at the end.
   */
  async #forgetOldOffsets(): Promise<void> {
    const admin = await this.#getAdmin();
    try {
      await admin.deleteGroups([this.groupId]);
    } catch (e) {
      const codes = JSON.stringify((e as { groups?: unknown }).groups ?? errorMessage(e));
      if (/GROUP_ID_NOT_FOUND|does not exist/i.test(codes)) return;
      if (/NON_EMPTY_GROUP|not empty/i.test(codes)) {
        // Either this relay restarted within the session timeout (its old member is still
        // listed; it will be evicted), or another live relay uses the same instance id, which
        // would split the partitions between them: say so loudly, but keep starting.
        this.#log.warn("consumer group still has members", {
          kind: "kafka",
          group: this.groupId,
          hint: "normal right after a restart; otherwise two relays share one instance id",
        });
        return;
      }
      this.#log.warn("could not reset the consumer group", { kind: "kafka", err: codes });
    }
  }

  /**
   * Starts consuming. The first start (`atEnd`) begins at the end of the topic and then commits
   * that position for every partition, so that a restart after a crash (by kafkajs, or here)
   * resumes where this relay was instead of at the then-current end: announcements published
   * while the consumer was down are still delivered to sockets that stayed connected.
   */
  async #startConsumer(atEnd: boolean): Promise<void> {
    // End offsets before joining: at most the positions the consumer will resolve, so committing
    // them can only repeat an announcement after a restart, never skip one.
    const ends = atEnd ? await (await this.#getAdmin()).fetchTopicOffsets(this.topic) : undefined;
    const consumer = this.#kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: 10_000,
      heartbeatInterval: 3000,
      // Short long-poll: subscribe() waits for the first fetch; delivery latency is unaffected
      // (a fetch returns as soon as a record arrives).
      maxWaitTimeInMs: 250,
      allowAutoTopicCreation: false,
      retry: {
        initialRetryTime: 300,
        maxRetryTime: 5000,
        retries: 8,
        restartOnFailure: () => Promise.resolve(!this.#closed),
      },
    });
    this.#consumer = consumer;
    consumer.on(consumer.events.CRASH, (ev) => {
      if (this.#closed || this.#consumer !== consumer) return;
      this.#markDown("consume", ev.payload.error);
      // kafkajs restarts the consumer itself after retriable errors (restart: true). Otherwise
      // start a new consumer, with backoff.
      if (!ev.payload.restart) this.#scheduleConsumerRestart(consumer);
    });
    consumer.on(consumer.events.FETCH, () => {
      if (this.#consumer === consumer) {
        this.#restarts = 0;
        this.#markUp();
      }
    });
    const firstFetch = new Promise<void>((resolve) => {
      const off = consumer.on(consumer.events.FETCH, () => {
        off();
        resolve();
      });
    });
    try {
      await deadline(consumer.connect(), this.#opts.subscribeTimeoutMs);
      await consumer.subscribe({ topics: [this.topic], fromBeginning: false });
      await consumer.run({
        eachBatchAutoResolve: true,
        // kafkajs's autoCommit sends an OffsetCommit after every batch, and waits for it before
        // the next fetch: one more round trip per announcement at low rates. The position is
        // committed by a timer every COMMIT_INTERVAL_MS instead (#commitPositions); a consumer
        // restarted by kafkajs replays at most that much, which clients drop as ids they have.
        autoCommit: false,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          let next: string | undefined;
          for (const message of batch.messages) {
            if (!isRunning() || isStale()) break;
            this.#deliver(message);
            resolveOffset(message.offset);
            next = String(BigInt(message.offset) + 1n);
          }
          if (next !== undefined) this.#positions.set(batch.partition, next);
          await heartbeat();
        },
      });
      clearInterval(this.#commitTimer);
      this.#commitTimer = setInterval(() => this.#commitPositions(consumer), COMMIT_INTERVAL_MS);
      // After the first fetch the consumer's positions are fixed (end of topic, resolved before
      // this point), so anything published after subscribe() resolves is delivered.
      await deadline(firstFetch, this.#opts.subscribeTimeoutMs);
      if (ends) {
        await consumer.commitOffsets(
          ends.map((p) => ({ topic: this.topic, partition: p.partition, offset: p.high })),
        );
      }
    } catch (e) {
      if (this.#consumer === consumer) this.#consumer = undefined;
      clearInterval(this.#commitTimer);
      this.#track(consumer.disconnect());
      throw e;
    }
  }

  /** Commits the positions read since the last commit (see #startConsumer). */
  #commitPositions(consumer: Consumer): void {
    if (this.#closed || this.#consumer !== consumer || this.#positions.size === 0) return;
    const batch = [...this.#positions];
    this.#positions.clear();
    consumer.commitOffsets(
      batch.map(([partition, offset]) => ({ topic: this.topic, partition, offset })),
    ).catch(() => {
      // Rebalancing or Kafka away: keep them for the next tick, unless newer ones came since.
      for (const [partition, offset] of batch) {
        if (!this.#positions.has(partition)) this.#positions.set(partition, offset);
      }
    });
  }

  #scheduleConsumerRestart(old: Consumer): void {
    if (this.#closed || this.#restartTimer !== undefined) return;
    const delay = backoffDelay(this.#restarts++, {
      minTimeout: 500,
      maxTimeout: 30_000,
      jitter: 0,
    });
    this.#restartTimer = setTimeout(async () => {
      this.#restartTimer = undefined;
      if (this.#closed || this.#consumer !== old) return;
      this.#consumer = undefined;
      await old.disconnect().catch(() => {});
      try {
        await this.#startConsumer(false);
      } catch (e) {
        this.#markDown("consume", e);
        if (!this.#closed) {
          // Retry with a placeholder so only one restart is ever pending.
          this.#consumer = old;
          this.#scheduleConsumerRestart(old);
        }
      }
    }, delay);
  }

  #deliver(message: KafkaMessage): void {
    if (this.#closed || !this.#handler || !message.key || !message.value) return;
    const key = message.key.toString("utf8"), value = message.value.toString("utf8");
    if (key !== PACKED_KEY) return this.#handle(key, value);
    for (const line of value.split("\n")) {
      const tab = line.indexOf("\t");
      if (tab > 0) this.#handle(line.slice(0, tab), line.slice(tab + 1));
    }
  }

  #handle(mailboxId: string, raw: string): void {
    try {
      this.#handler!(mailboxId, raw);
    } catch (e) {
      this.#log.error("bus handler failed", { kind: "kafka", err: errorMessage(e) });
    }
  }

  async check(): Promise<BackendStatus> {
    if (this.#closed) return { ok: false, detail: "closed" };
    try {
      const admin = await deadline(this.#getAdmin(), 3000);
      const cluster = await deadline(admin.describeCluster(), 3000);
      return { ok: true, detail: `${cluster.brokers.length} broker(s), topic ${this.topic}` };
    } catch (e) {
      return { ok: false, detail: `Kafka unavailable: ${describe(e)}` };
    }
  }

  #track(p: Promise<unknown>): void {
    this.#cleanups.push(p.catch(() => {}));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler = undefined;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#commitTimer);
    this.#restartTimer = this.#commitTimer = undefined;
    this.#publishes.clear(new BackendUnavailableError("Kafka bus is closed"));
    await this.#publishes.idle();
    const consumer = this.#consumer;
    this.#consumer = undefined;
    await consumer?.disconnect().catch(() => {});
    await this.#producer?.disconnect().catch(() => {});
    if (consumer && this.#admin) {
      // The group was this process's alone: remove its offsets rather than leave them to expire.
      await deadline(this.#admin.deleteGroups([this.groupId]), 3000).catch(() => {});
    }
    await this.#admin?.disconnect().catch(() => {});
    await Promise.all(this.#cleanups);
  }
}
