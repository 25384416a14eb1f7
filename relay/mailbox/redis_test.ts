/**
 * The mailbox contract against a real Redis (scripts/services.sh), plus what only Redis has:
 * surviving a server restart, failing fast while it is down, and storing nothing but the
 * envelope text. Ignored without the services; failing under CI=true.
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { delay } from "@chat-p2p/protocol/async";
import { mailboxContract } from "./contract.ts";
import { DEFAULT_MAILBOX_LIMITS } from "../ports/mailbox.ts";
import { BackendUnavailableError } from "../ports/errors.ts";
import { redisClientOptions, RedisMailbox } from "./redis.ts";
import {
  generateKeyPair,
  newMessageId,
  newPeerSessions,
  padPayloadV2,
  pairEnvelope,
  pairMailbox,
  peerEncrypt,
  serializeEnvelopeV2,
  toBase64,
} from "@chat-p2p/protocol";
import {
  requireManaged,
  runId,
  runServicesScript,
  servicesForSuite,
  servicesTest,
} from "../../tests/services.ts";
import { redisCli } from "../../tests/services_inspect.ts";

const RUN = runId();
let made = 0;
const suite = await servicesForSuite();

mailboxContract(
  "redis",
  (limits) => {
    if (suite.failure) return Promise.reject(suite.failure);
    return RedisMailbox.connect(suite.services!.redisUrl, limits, {
      prefix: `chat-test-${RUN}-${made++}:`,
    });
  },
  { testOptions: suite.testOptions },
);

const quiet = { warn: () => {}, error: () => {} };

const redisCliRaw = async (url: string, args: string[]): Promise<string[]> =>
  (await redisCli(url, ...args)).split("\n").filter((l) => l !== "");

async function eventually<T>(what: string, ms: number, fn: () => Promise<T>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw new Error(`${what}: still failing after ${ms} ms`, { cause: e });
      await delay(200);
    }
  }
}

await servicesTest(
  "redis mailbox: Redis holds only the envelope text, nothing else",
  async ({ redisUrl }) => {
    const prefix = `chat-test-${RUN}-raw:`;
    const m = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, { prefix });
    try {
      const alice = generateKeyPair();
      const bob = generateKeyPair();
      const secret = "the plaintext must never reach the relay";
      const plaintext = padPayloadV2({
        v: 2,
        kind: "message",
        id: newMessageId(),
        text: secret,
        sent_at: new Date().toISOString(),
      });
      const sent = peerEncrypt(newPeerSessions(alice.publicKey, bob.publicKey), plaintext, alice);
      const e = pairEnvelope(pairMailbox(alice, bob.publicKey, "send", 0), sent.message);
      const to = e.to;
      const raw = serializeEnvelopeV2(e);
      await m.register(to, "pair");
      assert.equal(await m.put(to, { id: e.id, raw }), "stored");

      const keys = (await redisCliRaw(redisUrl, ["--scan", "--pattern", `${prefix}*`])).sort();
      const v2 = `${prefix}v2:`;
      const b = `${v2}mb:${to}:`;
      assert.deepEqual(
        keys,
        [`${b}age`, `${b}env`, `${b}meta`, `${b}reg`, `${b}seq`, `${v2}index`, `${v2}registry`]
          .sort(),
      );

      // Every string Redis holds for this run: the envelope text, its id, the mailbox id, the
      // mailbox's kind, numbers.
      const strings: string[] = [];
      strings.push(...await redisCliRaw(redisUrl, ["HGETALL", `${b}env`]));
      strings.push(...await redisCliRaw(redisUrl, ["HGETALL", `${b}meta`]));
      strings.push(...await redisCliRaw(redisUrl, ["GET", `${b}reg`]));
      for (const z of [`${b}seq`, `${b}age`, `${v2}index`, `${v2}registry`]) {
        strings.push(...await redisCliRaw(redisUrl, ["ZRANGE", z, "0", "-1", "WITHSCORES"]));
      }
      const allowed = new Set([raw, e.id, to, "seq", "bytes", "exp", "pair"]);
      for (const s of strings) {
        assert.ok(
          allowed.has(s) || /^\d+$/.test(s),
          `unexpected value stored in Redis: ${s.slice(0, 80)}`,
        );
      }
      assert.ok(strings.includes(raw), "the exact envelope JSON is stored");
      const keyTexts = [alice, bob].map((k) => toBase64(k.publicKey));
      for (const s of strings) {
        assert.ok(!s.includes(secret), "no plaintext");
        for (const k of keyTexts) assert.ok(!s.includes(k), "no identity key");
      }
      // The stored text is the canonical v2 envelope and carries only its four fields.
      const stored = JSON.parse((await redisCliRaw(redisUrl, ["HGET", `${b}env`, e.id]))[0]);
      assert.deepEqual(Object.keys(stored), ["v", "id", "to", "body"]);
      // Times are kept to the hour (arrival) and the day (open), and nothing finer: the scores
      // and the keys' expiry times.
      const [, hour] = await redisCliRaw(redisUrl, ["ZRANGE", `${b}age`, "0", "-1", "WITHSCORES"]);
      assert.equal(Number(hour) % 3_600_000, 0);
      const [, day] = await redisCliRaw(redisUrl, [
        "ZRANGE",
        `${v2}registry`,
        "0",
        "0",
        "WITHSCORES",
      ]);
      assert.equal(Number(day) % 86_400_000, 0);
      for (const k of keys) {
        const at = Number((await redisCliRaw(redisUrl, ["PEXPIRETIME", k]))[0]);
        if (k.endsWith("registry")) {
          assert.equal(at, -1, `${k} does not expire`);
          continue;
        }
        assert.ok(at > Date.now(), `${k} expires at ${at}`);
        assert.ok(at <= Date.now() + DEFAULT_MAILBOX_LIMITS.maxAgeMs + 3 * 86_400_000, `${k}`);
        assert.equal(at % 3_600_000, 0, `${k} expires at a whole hour`);
      }
      assert.equal(await m.ack(to, [e.id]), 1);
    } finally {
      await m.close();
    }
  },
);

await servicesTest(
  "redis mailbox: a live put waits holdMs; acked meanwhile, Redis never sees it; close writes the rest",
  async ({ redisUrl }) => {
    const prefix = `chat-test-${RUN}-hold:`;
    const envKey = `${prefix}v2:mb:alice:env`;
    const inRedis = async (id: string) =>
      (await redisCliRaw(redisUrl, ["HEXISTS", envKey, id]))[0] === "1";
    const raw = (id: string) => JSON.stringify({ v: 2, id, to: "alice", body: "AAAA" });
    const m = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, {
      prefix,
      holdMs: 60_000,
    });
    let closed = false;
    try {
      await m.register("alice", "pair");
      const withdrawn = m.put("alice", { id: "id-1", raw: raw("id-1") }, { live: true });
      assert.equal(await m.ack("alice", ["id-1"]), 1);
      assert.equal(await withdrawn, "stored");
      assert.equal(m.stats.withdrawn, 1);
      // A resend held while its first copy is in Redis: the ack withdraws the one, deletes the
      // other, and counts the id once, however often it names it.
      assert.equal(await m.put("alice", { id: "id-4", raw: raw("id-4") }), "stored");
      const resend = m.put("alice", { id: "id-4", raw: raw("id-4") }, { live: true });
      assert.equal(await m.ack("alice", ["id-4", "id-4"]), 1);
      assert.equal(await resend, "stored");
      assert.ok(!(await inRedis("id-4")), "the first copy is deleted");
      assert.equal(m.stats.withdrawn, 2);
      const held = m.put("alice", { id: "id-2", raw: raw("id-2") }, { live: true });
      await delay(100);
      assert.ok(!(await inRedis("id-1")), "withdrawn: never written");
      assert.ok(!(await inRedis("id-2")), "held for holdMs (a minute here)");
      await m.close();
      closed = true;
      assert.equal(await held, "stored", "written at close");
      assert.ok(await inRedis("id-2"));
      assert.equal(m.stats.withdrawn, 2);
    } finally {
      if (!closed) await m.close();
    }
    // With a short hold and no ack, the put is written once the hold is over.
    const short = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, {
      prefix,
      holdMs: 20,
    });
    try {
      assert.equal(
        await short.put("alice", { id: "id-3", raw: raw("id-3") }, { live: true }),
        "stored",
      );
      assert.ok(await inRedis("id-3"));
      assert.equal(short.stats.withdrawn, 0);
    } finally {
      await short.close();
    }
  },
);

await servicesTest(
  "redis mailbox: what a protocol-v1 relay left under the prefix is removed at connect, with one log line",
  async ({ redisUrl }) => {
    const prefix = `chat-test-${RUN}-v1:`;
    const key = toBase64(generateKeyPair().publicKey);
    const v1 = `${prefix}mb:${key}:`;
    for (let i = 0; i < 3; i++) {
      await redisCli(redisUrl, "HSET", `${v1}env`, `id-${i}`, `{"v":1,"from":"${key}"}`);
      await redisCli(redisUrl, "ZADD", `${v1}seq`, String(i), `id-${i}`);
    }
    await redisCli(redisUrl, "HSET", `${v1}meta`, "seq", "3");
    await redisCli(redisUrl, "ZADD", `${prefix}index`, "1", key);
    const logs: Array<[string, Record<string, unknown> | undefined]> = [];
    const logger = {
      warn: (msg: string, f?: Record<string, unknown>) => logs.push([msg, f]),
      error: (msg: string, f?: Record<string, unknown>) => logs.push([msg, f]),
    };
    const m = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, { prefix, logger });
    try {
      assert.deepEqual(logs, [[
        "protocol v1 envelopes dropped: v2 clients cannot read them",
        { kind: "redis", count: 3 },
      ]]);
      assert.deepEqual(await redisCliRaw(redisUrl, ["--scan", "--pattern", `${prefix}*`]), []);
    } finally {
      await m.close();
    }
    const again = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, { prefix, logger });
    await again.close();
    assert.equal(logs.length, 1, "nothing to say when there is nothing left");
  },
);

await servicesTest(
  "redis mailbox: restart of Redis fails fast, then recovers on the same adapter, data kept (AOF)",
  async (services, t) => {
    const { redisUrl } = services;
    if (!requireManaged(services, "the Redis restart test")) return;
    const m = new RedisMailbox(redisUrl, DEFAULT_MAILBOX_LIMITS, {
      prefix: `chat-test-${RUN}-restart:`,
      logger: quiet,
    });
    try {
      await m.register("alice", "pair");
      assert.equal(await m.put("alice", { id: "id-before", raw: '{"id":"id-before"}' }), "stored");
      await runServicesScript(["down", "redis"]);
      try {
        await t.step("while down: put rejects quickly with BackendUnavailableError", async () => {
          const t0 = Date.now();
          await assert.rejects(
            m.put("alice", { id: "id-during", raw: "{}" }),
            BackendUnavailableError,
          );
          assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
          await assert.rejects(m.pending("alice"), BackendUnavailableError);
          const s = await m.check();
          assert.equal(s.ok, false);
        });
      } finally {
        await runServicesScript(["up", "redis"]);
      }
      await t.step("after restart: the same adapter works again and kept the data", async () => {
        const r = await eventually(
          "put after restart",
          20_000,
          () => m.put("alice", { id: "id-after", raw: '{"id":"id-after"}' }),
        );
        assert.equal(r, "stored");
        assert.deepEqual((await m.pending("alice")).map((e) => e.id), ["id-before", "id-after"]);
        assert.equal((await m.check()).ok, true);
      });
    } finally {
      await m.close();
    }
  },
);

await servicesTest(
  "redis mailbox: a command timeout is BackendUnavailableError and a retry of the id is safe",
  async ({ redisUrl }) => {
    const m = new RedisMailbox(redisUrl, DEFAULT_MAILBOX_LIMITS, {
      prefix: `chat-test-${RUN}-pause:`,
      commandTimeoutMs: 300,
      logger: quiet,
    });
    try {
      await m.register("alice", "pair");
      await m.put("alice", { id: "id-warmup", raw: "{}" });
      await redisCli(redisUrl, "CLIENT", "PAUSE", "1200", "WRITE");
      await assert.rejects(m.put("alice", { id: "id-paused", raw: "{}" }), BackendUnavailableError);
      // The outcome of a timed-out put is unknown (it may run once the server resumes); the
      // sender retries the same id, which is stored at most once.
      const r = await eventually(
        "put after pause",
        10_000,
        () => m.put("alice", { id: "id-paused", raw: "{}" }),
      );
      assert.ok(r === "stored" || r === "duplicate");
      assert.equal((await m.pending("alice")).filter((e) => e.id === "id-paused").length, 1);
    } finally {
      await redisCli(redisUrl, "CLIENT", "UNPAUSE").catch(() => {});
      await m.close();
    }
  },
);

await servicesTest("redis mailbox: an unreachable Redis never crashes the process", async () => {
  // A port nothing listens on.
  const url = "redis://127.0.0.1:1";
  await assert.rejects(
    RedisMailbox.connect(url, DEFAULT_MAILBOX_LIMITS, { logger: quiet, connectTimeoutMs: 500 }),
    BackendUnavailableError,
  );
  const m = new RedisMailbox(url, DEFAULT_MAILBOX_LIMITS, { logger: quiet });
  try {
    await assert.rejects(m.put("alice", { id: "id-000001", raw: "{}" }), BackendUnavailableError);
    await assert.rejects(m.depth("alice"), BackendUnavailableError);
    assert.equal((await m.check()).ok, false);
  } finally {
    await m.close();
  }
});

await servicesTest(
  "redis mailbox: works with a caller-owned client, which close() leaves open",
  async ({ redisUrl }) => {
    const client = new Redis(redisUrl, redisClientOptions());
    client.on("error", () => {});
    const m = new RedisMailbox(client, DEFAULT_MAILBOX_LIMITS, { prefix: `chat-test-${RUN}-own:` });
    try {
      await m.register("alice", "pair");
      assert.equal(await m.put("alice", { id: "id-000001", raw: "{}" }), "stored");
      await m.close();
      assert.equal(await client.ping(), "PONG");
      await assert.rejects(m.put("alice", { id: "id-000002", raw: "{}" }), BackendUnavailableError);
    } finally {
      await client.quit();
    }
  },
);

await servicesTest(
  "redis mailbox: at maxmemory, check() is down with the reason while puts are refused",
  async ({ redisUrl }) => {
    const m = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, {
      prefix: `chat-test-${RUN}-oom:`,
      logger: quiet,
    });
    const used = Number(/used_memory:(\d+)/.exec(await redisCli(redisUrl, "INFO", "memory"))![1]);
    try {
      await m.register("alice", "pair");
      assert.deepEqual(await m.check(), { ok: true, detail: "connected" });
      await redisCli(redisUrl, "CONFIG", "SET", "maxmemory", String(used + 256 * 1024));
      const big = "x".repeat(32 * 1024);
      let refused: unknown;
      for (let i = 0; i < 100 && !refused; i++) {
        await m.put("alice", { id: `id-oom-${i}`, raw: big }).catch((e) => refused = e);
      }
      assert.ok(refused instanceof BackendUnavailableError, `puts were not refused: ${refused}`);
      assert.match(refused.message, /out of memory/);
      const down = await m.check();
      assert.equal(down.ok, false);
      assert.match(down.detail, /maxmemory/);
    } finally {
      await redisCli(redisUrl, "CONFIG", "SET", "maxmemory", "0");
    }
    try {
      assert.deepEqual(await m.check(), { ok: true, detail: "connected" });
    } finally {
      await m.close();
    }
  },
);

await servicesTest(
  "redis mailbox: commands waiting for a connection share one listener, not one each",
  async () => {
    // A server that accepts and never answers: the client stays in its connecting state.
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const c of silent) held.push(c);
    })();
    const client = new Redis(`redis://127.0.0.1:${silent.addr.port}`, redisClientOptions());
    client.on("error", () => {});
    const m = new RedisMailbox(client, DEFAULT_MAILBOX_LIMITS, { logger: quiet });
    try {
      client.connect().catch(() => {});
      const puts = Array.from(
        { length: 30 },
        (_, i) => m.put("alice", { id: `id-wait-${i}`, raw: "{}" }).catch((e) => e),
      );
      await delay(100);
      assert.ok(client.listenerCount("ready") <= 5, `${client.listenerCount("ready")} listeners`);
      for (const r of await Promise.all(puts)) assert.ok(r instanceof BackendUnavailableError);
    } finally {
      await m.close();
      client.disconnect();
      silent.close();
      for (const c of held) c.close();
      await accepting.catch(() => {});
    }
  },
  { sanitizeOps: false, sanitizeResources: false },
);

await servicesTest(
  "redis mailbox: acks of one moment share one script call; reads and close() send waiting acks first; an ack never overtakes a put",
  async ({ redisUrl }) => {
    const prefix = `chat-test-${RUN}-acks:`;
    const m = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, { prefix });
    const watcher = new Redis(redisUrl, redisClientOptions());
    watcher.on("error", () => {});
    const monitor = await watcher.monitor();
    const scripts: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (/^eval/i.test(args[0]) && args.some((a) => a.startsWith(prefix))) scripts.push(args);
    });
    try {
      const boxes = Array.from({ length: 10 }, (_, i) => `box${i}`);
      for (const mb of boxes) {
        await m.register(mb, "pair");
        for (const n of [0, 1]) await m.put(mb, { id: `id-${mb}-${n}`, raw: `{"n":${n}}` });
      }
      await delay(200); // the monitor has seen the puts
      scripts.length = 0;
      const removed = await Promise.all(boxes.map((mb) => m.ack(mb, [`id-${mb}-0`, `id-${mb}-1`])));
      assert.deepEqual(removed, boxes.map(() => 2));
      await delay(200);
      assert.equal(scripts.length, 1, `${scripts.length} script calls for 10 acks`);
      for (const mb of boxes) assert.deepEqual(await m.depth(mb), { count: 0, bytes: 0 });

      // A mailbox emptied by acks gets new envelope keys on its next put: they expire too.
      await m.put("box0", { id: "id-again", raw: "{}" });
      const b = `${prefix}v2:mb:box0:`;
      for (const k of ["env", "seq", "age", "meta"]) {
        const at = Number((await redisCliRaw(redisUrl, ["PEXPIRETIME", `${b}${k}`]))[0]);
        assert.ok(at > Date.now() && at % 3_600_000 === 0, `${k} expires at ${at}`);
      }

      // A read issued after an ack, before the ack is answered, sees it.
      const acked = m.ack("box0", ["id-again"]);
      assert.deepEqual(await m.pending("box0"), []);
      assert.equal(await acked, 1);

      // An ack made right after a put of that id, both unanswered, is applied after the put,
      // even when a read sends the ack at once: a put goes out at once, never behind an ack.
      const put = m.put("box2", { id: "id-fresh", raw: "{}" });
      const ackedFresh = m.ack("box2", ["id-fresh"]);
      assert.deepEqual(await m.pending("box2"), []);
      assert.equal(await put, "stored");
      assert.equal(await ackedFresh, 1);

      // close() sends the acks still waiting rather than drop them.
      await m.put("box1", { id: "id-last", raw: "{}" });
      const last = m.ack("box1", ["id-last"]);
      await m.close();
      assert.equal(await last, 1);
      const again = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, { prefix });
      try {
        assert.deepEqual(await again.pending("box1"), []);
      } finally {
        await again.close();
      }
    } finally {
      await m.close();
      monitor.disconnect();
      watcher.disconnect();
    }
  },
  { sanitizeOps: false, sanitizeResources: false },
);

await servicesTest(
  "redis mailbox: an ack that overtakes its put (through another relay) leaves it unstored",
  async ({ redisUrl }) => {
    const prefix = `chat-test-${RUN}-early:`;
    // Two relays on one Redis: the reader's acks through one, the sender's puts through the other.
    const readers = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, { prefix });
    const senders = await RedisMailbox.connect(redisUrl, DEFAULT_MAILBOX_LIMITS, { prefix });
    try {
      await readers.register("box", "pair");
      // The reader got "first" live and acked it before Redis applied the sender relay's put.
      assert.equal(await readers.ack("box", ["first"]), 0);
      assert.equal(await senders.put("box", { id: "first", raw: '{"n":1}' }), "duplicate");
      assert.deepEqual(await readers.pending("box"), [], "acked, so not stored");
      // Remembered once: a later put of that id (a sender's retry) is stored again.
      assert.equal(await senders.put("box", { id: "first", raw: '{"n":1}' }), "stored");
      assert.equal(await readers.ack("box", ["first"]), 1);
      // Other ids are stored as ever; one acked twice in one call is deleted, not remembered.
      assert.equal(await senders.put("box", { id: "second", raw: '{"n":2}' }), "stored");
      assert.deepEqual((await readers.pending("box")).map((e) => e.id), ["second"]);
      assert.equal(await readers.ack("box", ["second", "second"]), 1);
      assert.equal(await senders.put("box", { id: "second", raw: '{"n":2}' }), "stored");
      assert.deepEqual((await readers.pending("box")).map((e) => e.id), ["second"]);

      // Bounded: the last 64 such ids, and the key goes within two minutes, on a whole minute
      // (no finer time of a read is kept).
      await readers.ack("box", Array.from({ length: 100 }, (_, i) => `never-${i}`));
      const early = `${prefix}v2:mb:box:early`;
      assert.equal(Number((await redisCliRaw(redisUrl, ["LLEN", early]))[0]), 64);
      const at = Number((await redisCliRaw(redisUrl, ["PEXPIRETIME", early]))[0]);
      assert.ok(at > Date.now() + 55_000 && at <= Date.now() + 120_000, `expires at ${at}`);
      assert.equal(at % 60_000, 0, "a whole minute");
    } finally {
      await readers.close();
      await senders.close();
    }
  },
);
