/**
 * Kafka `Bus` for scaled mode, on @platformatic/kafka (pure TypeScript, maintained; chosen over
 * kafkajs by the numbers in docs/SERVICES.md): "mailbox X has envelope E" announcements on one
 * topic, each mailbox's in one partition, in order.
 *
 * Producing: idempotent, acks=-1, publishes of one event-loop turn batched into one produce
 * request, packed one record per partition (format in docs/SERVICES.md). Failures reject with
 * {@linkcode BackendUnavailableError}; nothing is thrown outside a returned promise.
 *
 * Every record carries an `origin` header, a random token of this bus instance, and the bus skips
 * the records it finds its own: the relay pushes its own announcements to its sockets itself.
 *
 * Consuming: no consumer group. Every relay must read every partition anyway (the recipient's
 * socket may be on any relay), so a group only added a coordinator, a join, heartbeats and offset
 * commits. The bus reads the end offsets when it subscribes and then fetches every partition
 * from the positions it keeps in memory, with one fetch request per partition leader in flight.
 * When Kafka goes away it retries every {@linkcode FETCH_RETRY_MS} from the same positions, so
 * sockets that stayed connected still get what was published during the outage, and live
 * delivery resumes with the first fetch that succeeds.
 *
 * @module
 */
import { Admin, Consumer, ListOffsetTimestamps, murmur2, Producer } from "@platformatic/kafka";
import { Buffer } from "node:buffer";
import { setImmediate } from "node:timers";
import {
  Batcher,
  deadline,
  delay,
  isTimeoutError,
  retry,
  RetryError,
} from "@chat-p2p/protocol/async";
import type { Bus, BusHandler } from "../../ports/bus.ts";
import { HOUR_MS, roundDown } from "../../ports/mailbox.ts";
import type { AdapterLogger } from "../../infra/log.ts";
import { type BackendStatus, BackendUnavailableError, errorMessage } from "../../ports/errors.ts";

/** Where the adapter reports trouble. */
export type KafkaBusLogger = AdapterLogger;

/** Options for {@linkcode KafkaBus}. */
export interface KafkaBusOptions {
  /** Bootstrap brokers, `host:port`. */
  brokers: string[];
  /** Topic for announcements (default `chat-envelopes`). */
  topic?: string;
  /**
   * Partitions when this relay creates the topic (default 1). Every relay reads every partition,
   * so more partitions add no reader; they spread the topic over brokers, and each one costs every
   * fetch (docs/SERVICES.md, "Partitions").
   */
  partitions?: number;
  /** Replication factor when this relay creates the topic (default: min(3, brokers in cluster)). */
  replicationFactor?: number;
  /** Client id prefix (default `chat-relay`); the broker sees `<clientId>-<instanceId>`. */
  clientId?: string;
  /** Names this relay to the brokers (default: a random UUID). */
  instanceId?: string;
  /**
   * A publish rejects after this long without an acknowledgement (default 750 ms: while Kafka is
   * away a send is answered `unavailable` within a second), and so do those queued behind it.
   */
  publishTimeoutMs?: number;
  /**
   * `connect` rejects when the topic and the producer are not ready after this, and `subscribe`
   * when the end offsets are not read (default 30 s).
   */
  subscribeTimeoutMs?: number;
  /** Trouble goes here (default: JSON lines on stderr). */
  logger?: KafkaBusLogger;
}

/**
 * Record key of a packed record: announcements for one partition, one per line,
 * `<mailbox id>\t<envelope JSON>`. Not base64, so never a mailbox id.
 */
export const PACKED_KEY = "chat-p2p:announcements/1";

/**
 * Record header naming the bus instance that produced a record (a random token per `KafkaBus`,
 * not the instance id an operator may have set twice by mistake); its own records are skipped.
 */
const ORIGIN_KEY = Buffer.from("origin");

/** Largest batch of announcements in one produce request. */
const MAX_BATCH_MESSAGES = 500;
const MAX_BATCH_BYTES = 1024 * 1024;
/** Topic `max.message.bytes` when the relay creates the topic: room for a 1 MiB ciphertext. */
const TOPIC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Pause between fetch attempts while Kafka does not answer. */
export const FETCH_RETRY_MS = 250;
/** A record batch of control records (transaction markers), which carry no announcement. */
const IS_CONTROL = 0x20;

/** Latency knobs, for the bench's measurements of the latency floor (defaults are the relay's). */
export interface KafkaBusTuning {
  /** Fetch long-poll: the broker answers after this long when nothing arrives (default 500). */
  maxWaitTimeMs?: number;
  /** The broker answers a fetch once this many bytes are ready (default 1). */
  minBytes?: number;
  /** Wait this long to collect publishes into one produce request (default 0: one loop turn). */
  lingerMs?: number;
}

const stderrLogger: KafkaBusLogger = {
  warn: (msg, fields) => console.error(JSON.stringify({ level: "warn", msg, ...fields })),
  error: (msg, fields) => console.error(JSON.stringify({ level: "error", msg, ...fields })),
};

/**
 * What went wrong, in words: the last attempt's error for a retry, the first of the client's
 * retried errors, "no answer in time" for a deadline.
 */
function describe(e: unknown): string {
  if (e instanceof RetryError) return describe(e.cause);
  if (e instanceof AggregateError && e.errors.length > 0) return describe(e.errors[0]);
  return isTimeoutError(e) ? "no answer in time" : errorMessage(e);
}

function unavailable(what: string, e: unknown): BackendUnavailableError {
  if (e instanceof BackendUnavailableError) return e;
  return new BackendUnavailableError(`Kafka unavailable: ${what}: ${describe(e)}`, { cause: e });
}

type FetchResponse = Awaited<ReturnType<Consumer["fetch"]>>;

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
  readonly instanceId: string;
  /** Produce requests sent and messages in them (for metrics and the batching test). */
  readonly stats = { batches: 0, messages: 0, fetches: 0 };
  #opts: Required<Omit<KafkaBusOptions, "replicationFactor" | "logger">> & {
    replicationFactor?: number;
  };
  #tuning: Required<KafkaBusTuning>;
  #log: KafkaBusLogger;
  #admin: Admin;
  #consumer: Consumer;
  #producer?: Producer<Buffer, Buffer, Buffer, Buffer>;
  #producerBroken = false;
  #topicReady?: Promise<void>;
  #partitions = 0;
  #partitionOf = new Map<string, number>();
  #publishes: Batcher<Announcement, void>;
  #handler?: BusHandler;
  /** This instance's `origin` header value. */
  #origin = Buffer.from(crypto.randomUUID());
  #headers = new Map([[ORIGIN_KEY, this.#origin]]);
  /** Next offset to fetch, per partition; set by subscribe(). */
  #positions: bigint[] = [];
  #fetching?: Promise<void>;
  #closed = false;
  #down = false;

  constructor(options: KafkaBusOptions, tuning: KafkaBusTuning = {}) {
    if (options.brokers.length === 0) throw new TypeError("KafkaBus needs at least one broker");
    this.#opts = {
      brokers: options.brokers,
      topic: options.topic ?? "chat-envelopes",
      partitions: options.partitions ?? 1,
      replicationFactor: options.replicationFactor,
      clientId: options.clientId ?? "chat-relay",
      instanceId: options.instanceId ?? crypto.randomUUID(),
      publishTimeoutMs: options.publishTimeoutMs ?? 750,
      subscribeTimeoutMs: options.subscribeTimeoutMs ?? 30_000,
    };
    this.#tuning = { maxWaitTimeMs: 500, minBytes: 1, lingerMs: 0, ...tuning };
    this.topic = this.#opts.topic;
    this.instanceId = this.#opts.instanceId;
    this.#log = options.logger ?? stderrLogger;
    const base = {
      clientId: `${this.#opts.clientId}-${this.instanceId}`,
      bootstrapBrokers: this.#opts.brokers,
      connectTimeout: 3000,
      // Admin requests (topic creation, metadata) are not on a send's path: the publish timeout
      // does not bound them; check() and connect() put their own deadlines on them.
      timeout: 10_000,
      retries: 2,
      retryDelay: 100,
    };
    this.#admin = new Admin(base);
    this.#consumer = new Consumer({
      ...base,
      // Required by the client; never joined (see the module doc).
      groupId: `chat-relay-${this.instanceId}`,
      maxWaitTime: this.#tuning.maxWaitTimeMs,
      minBytes: this.#tuning.minBytes,
      // A fetch waits up to maxWaitTime; the request must be allowed longer than that.
      timeout: this.#tuning.maxWaitTimeMs + 5000,
      retries: 0,
    });
    const linger = this.#tuning.lingerMs;
    this.#publishes = new Batcher((batch) => this.#produce(batch), {
      maxItems: MAX_BATCH_MESSAGES,
      maxWeight: MAX_BATCH_BYTES,
      weigh: (a) => a.bytes,
      // Publishes of one event-loop turn go out together; setImmediate, not setTimeout(0): a
      // Deno timer waits 1-2 ms (bench/README.md).
      schedule: linger > 0 ? (f) => void setTimeout(f, linger) : (f) => void setImmediate(f),
    });
  }

  /** Makes a bus, creates the topic if absent and connects the producer. */
  static async connect(
    options: KafkaBusOptions,
    tuning?: KafkaBusTuning,
  ): Promise<KafkaBus> {
    const bus = new KafkaBus(options, tuning);
    try {
      await deadline(bus.#ensureTopic(), bus.#opts.subscribeTimeoutMs);
      // Startup, not a send: the producer's first connection gets the longer bound.
      await deadline(bus.#getProducer().initIdempotentProducer({}), bus.#opts.subscribeTimeoutMs);
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

  #ensureTopic(): Promise<void> {
    this.#topicReady ??= (async () => {
      const topics = await this.#admin.listTopics();
      if (!topics.includes(this.topic)) await this.#createTopic();
      // Ready means every partition has a leader that answers ListOffsets; right after creation
      // a partition can still say "not the leader" for a moment. Tried for about 15 s.
      const ends = await retry(() => this.#endOffsets(), {
        minTimeout: 100,
        maxTimeout: 1000,
        jitter: 0,
        maxAttempts: 18,
      });
      this.#partitions = ends.length;
    })();
    this.#topicReady.catch(() => (this.#topicReady = undefined));
    return this.#topicReady;
  }

  async #createTopic(): Promise<void> {
    const brokers = (await this.#admin.metadata({ topics: [] })).brokers.size;
    const replicas = this.#opts.replicationFactor ?? Math.max(1, Math.min(3, brokers));
    try {
      await this.#admin.createTopics({
        topics: [this.topic],
        partitions: this.#opts.partitions,
        replicas,
        configs: [
          { name: "max.message.bytes", value: String(TOPIC_MAX_MESSAGE_BYTES) },
          { name: "min.insync.replicas", value: String(Math.min(2, replicas)) },
          // The records' own (hour-coarse) times, whatever the broker's default says.
          { name: "message.timestamp.type", value: "CreateTime" },
        ],
      });
    } catch (e) {
      // Another relay created it between listTopics and createTopics.
      if (!(await this.#admin.listTopics()).includes(this.topic)) throw e;
    }
  }

  /** The end offset of every partition, in partition order. */
  async #endOffsets(): Promise<bigint[]> {
    const offsets = await this.#consumer.listOffsets({
      topics: [this.topic],
      timestamp: ListOffsetTimestamps.LATEST,
    });
    const ends = offsets.get(this.topic);
    if (!ends || ends.length === 0) throw new Error(`no partitions for ${this.topic}`);
    return ends;
  }

  #getProducer(): Producer<Buffer, Buffer, Buffer, Buffer> {
    if (this.#producer && this.#producerBroken) {
      // After a failed send the idempotent producer's sequence numbers are in an unknown state;
      // a new producer gets a new producer id, so a later message can never be mistaken for a
      // retry of the failed one.
      const old = this.#producer;
      this.#producer = undefined;
      old.close(true).catch(() => {});
    }
    if (!this.#producer) {
      this.#producerBroken = false;
      this.#producer = new Producer({
        clientId: `${this.#opts.clientId}-${this.instanceId}`,
        bootstrapBrokers: this.#opts.brokers,
        connectTimeout: 3000,
        timeout: Math.min(10_000, this.#opts.publishTimeoutMs),
        // Bounded, so a publish fails while Kafka is away instead of retrying for long.
        retries: 2,
        retryDelay: 100,
        idempotent: true,
        acks: -1,
        autocreateTopics: false,
      });
    }
    return this.#producer;
  }

  publish(mailboxId: string, raw: string): Promise<void> {
    if (this.#closed) return Promise.reject(new BackendUnavailableError("Kafka bus is closed"));
    const bytes = raw.length * 3 + mailboxId.length; // upper bound of UTF-8 size, no encoding
    return this.#publishes.add({ mailboxId, raw, bytes });
  }

  /** murmur2 of the mailbox id modulo the partitions: where a record keyed by it would go. */
  #partition(mailboxId: string): number {
    let p = this.#partitionOf.get(mailboxId);
    if (p === undefined) {
      p = (murmur2(Buffer.from(mailboxId)) & 0x7fffffff) % this.#partitions;
      if (this.#partitionOf.size >= 100_000) this.#partitionOf.clear();
      this.#partitionOf.set(mailboxId, p);
    }
    return p;
  }

  /** One record per partition (or plain records when an announcement cannot be packed). */
  #records(batch: Announcement[]) {
    // The broker stores each record's time: the hour is enough (issue 10: no finer times in
    // storage); the topic's retention still works in hours.
    const timestamp = BigInt(roundDown(Date.now(), HOUR_MS));
    const plain = this.#partitions === 0 ||
      batch.some((q) =>
        q.mailboxId.includes("\t") || q.mailboxId.includes("\n") || q.raw.includes("\n")
      );
    if (plain) {
      return batch.map((q) => ({
        topic: this.topic,
        key: Buffer.from(q.mailboxId),
        value: Buffer.from(q.raw),
        headers: this.#headers,
        partition: this.#partitions > 0 ? this.#partition(q.mailboxId) : undefined,
        timestamp,
      }));
    }
    const byPartition = new Map<number, string[]>();
    for (const q of batch) {
      const p = this.#partition(q.mailboxId);
      let lines = byPartition.get(p);
      if (!lines) byPartition.set(p, lines = []);
      lines.push(`${q.mailboxId}\t${q.raw}`);
    }
    const key = Buffer.from(PACKED_KEY);
    return [...byPartition].map(([partition, lines]) => ({
      topic: this.topic,
      partition,
      key,
      value: Buffer.from(lines.join("\n")),
      headers: this.#headers,
      timestamp,
    }));
  }

  async #produce(batch: Announcement[]): Promise<void[]> {
    if (this.#closed) throw new BackendUnavailableError("Kafka bus is closed");
    try {
      await this.#ensureTopic();
      const producer = this.#getProducer();
      try {
        await deadline(
          producer.send({ messages: this.#records(batch) }),
          this.#opts.publishTimeoutMs,
        );
      } catch (e) {
        this.#producerBroken = true;
        // A partition the topic no longer has (recreated with fewer): read the count again.
        if (/partition/i.test(describe(e))) {
          this.#topicReady = undefined;
          this.#partitionOf.clear();
        }
        throw e;
      }
      this.stats.batches++;
      this.stats.messages += batch.length;
      this.#markUp();
      return [];
    } catch (e) {
      this.#markDown("publish", e);
      const err = unavailable("publish", e);
      // Those queued behind this batch would wait as long for their own attempt: fail them now.
      this.#publishes.clear(err);
      throw err;
    }
  }

  async subscribe(handler: BusHandler): Promise<void> {
    if (this.#closed) throw new BackendUnavailableError("Kafka bus is closed");
    this.#handler = handler;
    if (this.#fetching) return;
    try {
      await deadline(
        (async () => {
          await this.#ensureTopic();
          // From the end: older announcements are in the mailboxes already.
          this.#positions = await this.#endOffsets();
          this.#consumer.topics.track(this.topic);
        })(),
        this.#opts.subscribeTimeoutMs,
      );
    } catch (e) {
      this.#markDown("subscribe", e);
      throw unavailable("subscribe", e);
    }
    // Everything published from now on is at or after these positions: delivered.
    this.#fetching = this.#fetchLoop();
  }

  /** Fetches forever from the kept positions; one request per partition leader at a time. */
  async #fetchLoop(): Promise<void> {
    while (!this.#closed) {
      try {
        const meta = await this.#consumer.metadata({ topics: [this.topic] });
        const t = meta.topics.get(this.topic);
        if (!t) throw new Error(`topic ${this.topic} has no metadata`);
        while (this.#positions.length < t.partitionsCount) this.#positions.push(0n);
        const byLeader = new Map<number, number[]>();
        t.partitions.forEach((p, i) => {
          const list = byLeader.get(p.leader) ?? [];
          list.push(i);
          byLeader.set(p.leader, list);
        });
        // One loop per leader; all of them end at the first failure, then metadata is read again.
        const stop = { now: false };
        await Promise.all(
          [...byLeader].map(([node, partitions]) =>
            this.#fetchFrom(node, t.id, partitions, stop).finally(() => stop.now = true)
          ),
        );
      } catch (e) {
        if (this.#closed) return;
        this.#markDown("consume", e);
        await delay(FETCH_RETRY_MS);
        // The topic was truncated or recreated: go on from its end (the mailboxes hold the rest).
        if (/OFFSET_OUT_OF_RANGE|out of range/i.test(describe(e))) {
          this.#positions = await this.#endOffsets().catch(() => this.#positions);
        }
      }
    }
  }

  async #fetchFrom(
    node: number,
    topicId: string,
    partitions: number[],
    stop: { now: boolean },
  ): Promise<void> {
    while (!this.#closed && !stop.now) {
      const response = await this.#consumer.fetch({
        node,
        topics: [{
          topicId,
          partitions: partitions.map((partition) => ({
            partition,
            fetchOffset: this.#positions[partition],
            partitionMaxBytes: 8 * 1024 * 1024,
            currentLeaderEpoch: -1,
            lastFetchedEpoch: -1,
          })),
        }],
      });
      this.stats.fetches++;
      this.#markUp();
      this.#take(response, partitions);
    }
  }

  /** Hands every announcement of a fetch response to the handler and advances the positions. */
  #take(response: FetchResponse, asked: number[]): void {
    for (const topic of response.responses) {
      for (const p of topic.partitions) {
        const i = p.partitionIndex;
        if (!asked.includes(i)) continue;
        if (p.errorCode !== 0) throw new Error(`fetch of partition ${i}: error ${p.errorCode}`);
        const from = this.#positions[i];
        for (const batch of p.records ?? []) {
          const next = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
          if (!(batch.attributes & IS_CONTROL)) {
            for (const r of batch.records) {
              if (batch.firstOffset + BigInt(r.offsetDelta) < from) continue;
              if (r.key && r.value && !this.#mine(r.headers)) {
                this.#deliver(r.key.toString(), r.value.toString());
              }
            }
          }
          if (next > this.#positions[i]) this.#positions[i] = next;
        }
      }
    }
  }

  /** Whether a record's headers name this instance as its origin. */
  #mine(headers: readonly [Buffer | null, Buffer | null][]): boolean {
    for (const [k, v] of headers) {
      if (k !== null && v !== null && k.equals(ORIGIN_KEY) && v.equals(this.#origin)) return true;
    }
    return false;
  }

  #deliver(key: string, value: string): void {
    if (this.#closed || !this.#handler) return;
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
      this.#log.error("bus handler failed", { kind: "kafka", err: describe(e) });
    }
  }

  async check(): Promise<BackendStatus> {
    if (this.#closed) return { ok: false, detail: "closed" };
    try {
      const meta = await deadline(
        this.#admin.metadata({ topics: [this.topic], forceUpdate: true }),
        3000,
      );
      return { ok: true, detail: `${meta.brokers.size} broker(s), topic ${this.topic}` };
    } catch (e) {
      return { ok: false, detail: `Kafka unavailable: ${describe(e)}` };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handler = undefined;
    this.#publishes.clear(new BackendUnavailableError("Kafka bus is closed"));
    await this.#publishes.idle();
    await Promise.all([
      this.#consumer.close(true).catch(() => {}),
      this.#producer?.close(true).catch(() => {}),
      this.#admin.close().catch(() => {}),
    ]);
    await this.#fetching?.catch(() => {});
  }
}
