/**
 * What the throughput grid and bench/ab.ts measure: chat-p2p relays (embedded, or scaled on Kafka
 * + Redis, one or two), the bare forwarder, and Centrifugo nodes (memory or Redis engine, one or
 * two). Each spec starts its servers afresh and stops them again.
 *
 * @module
 */
import { join } from "node:path";
import type { TargetSpec } from "../scenarios/grid.ts";
import { CENTRIFUGO_VERSION, startCentrifugo, startPlainRedis } from "./centrifugo.ts";
import { servicePid } from "../../tests/services.ts";
import { BENCH_RELAY_ENV, run, type Server, startServer } from "./proc.ts";

/** Where targets keep their data, and which relay code they run. */
export interface TargetContext {
  work: string;
  /** relay/main.ts of the checkout under test. */
  relayScript: string;
}

let dirN = 0;

/** Starts one relay (`deno run -A relay/main.ts`) with the bench's environment. */
export function startRelay(
  ctx: TargetContext,
  name: string,
  env: Record<string, string> = {},
  cpuProfDir?: string,
): Promise<Server> {
  const dataDir = join(ctx.work, `${name}-${++dirN}`);
  return startServer({
    name,
    script: ctx.relayScript,
    args: ["--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir],
    env: { ...BENCH_RELAY_ENV, ...env },
    cpuProfDir,
    timeoutMs: 90_000,
  }).then((s) => ({ ...s, dataDir }));
}

/** What the embedded relay promises. */
export const EMBEDDED_PROMISE = "accepted = in SQLite, fsync'd (synchronous=FULL)";

/** The embedded relay (SQLite, no services). */
export function embeddedTarget(
  ctx: TargetContext,
  name = "chat-p2p embedded",
  env: Record<string, string> = {},
): TargetSpec {
  return {
    name,
    promise: EMBEDDED_PROMISE,
    async start() {
      const r = await startRelay(ctx, "relay", env);
      return {
        target: { name, senderUrl: r.url, receiverUrl: r.url, pids: [r.pid] },
        stop: () => r.stop(),
      };
    },
  };
}

/** The bare Deno forwarder (bench/bare_forwarder.ts). */
export function forwarderTarget(): TargetSpec {
  const name = "bare Deno forwarder";
  return {
    name,
    promise: "nothing stored, nothing checked",
    async start() {
      const f = await startServer({
        name: "bare-forwarder",
        script: "bench/bare_forwarder.ts",
        args: ["--port", "0"],
      });
      return {
        target: { name, senderUrl: f.url, receiverUrl: f.url, pids: [f.pid] },
        stop: () => f.stop(),
      };
    },
  };
}

/** Kafka and Redis of a scaled run, and their processes (for CPU). */
export interface ScaledServices {
  brokers: string;
  redisUrl: string;
  /** redis-server and Kafka JVM pids, when known. */
  backendPids?: number[];
}

/** Sets Redis's `appendfsync` (the bench's private Redis; restored to `always` after). */
export async function setAppendfsync(redisUrl: string, mode: string): Promise<void> {
  const r = await run("redis-cli", ["-u", redisUrl, "CONFIG", "SET", "appendfsync", mode]);
  if (r.code !== 0 || !/OK/.test(r.stdout)) {
    throw new Error(`redis-cli CONFIG SET appendfsync ${mode}: ${r.stdout}${r.stderr}`);
  }
}

/** Options of a scaled-mode target. */
export interface ScaledOptions {
  name: string;
  relays: 1 | 2;
  services: ScaledServices;
  /** Kafka topic (created by the first relay if absent); the caller deletes it. */
  topic: string;
  /** Redis `appendfsync` while this target runs (default "always", the services' setting). */
  appendfsync?: "always" | "everysec";
  env?: Record<string, string>;
}

/** Scaled mode: relays on Kafka + Redis; with two, senders on the first, receivers on the other. */
export function scaledTarget(ctx: TargetContext, o: ScaledOptions): TargetSpec {
  const fsync = o.appendfsync ?? "always";
  return {
    name: o.name,
    promise: `accepted = in Redis (appendfsync ${fsync}${
      fsync === "always" ? ": fsync'd" : ": up to 1 s lost on power loss"
    })${
      o.relays === 1
        // finding 12: a relay alone holds a live reader's put, and the reader's ack withdraws it
        ? ", or acked by its reader first, and pushed (a relay alone publishes nothing on Kafka)"
        : " and announced on Kafka (acks=all)"
    }`,
    async start() {
      if (fsync !== "always") await setAppendfsync(o.services.redisUrl, fsync);
      const env = (i: number) => ({
        KAFKA_BROKERS: o.services.brokers,
        REDIS_URL: o.services.redisUrl,
        KAFKA_TOPIC: o.topic,
        RELAY_INSTANCE_ID: `${o.topic}-${i}-${crypto.randomUUID().slice(0, 8)}`,
        ...o.env,
      });
      const relays: Server[] = [];
      try {
        for (let i = 0; i < o.relays; i++) {
          relays.push(await startRelay(ctx, `relay-k${i}`, env(i)));
        }
      } catch (e) {
        for (const r of relays) await r.stop();
        if (fsync !== "always") await setAppendfsync(o.services.redisUrl, "always");
        throw e;
      }
      const [a, b = a] = relays;
      return {
        target: {
          name: o.name,
          senderUrl: a.url,
          receiverUrl: b.url,
          pids: relays.map((r) => r.pid),
          backendPids: o.services.backendPids,
        },
        async stop() {
          for (const r of relays) await r.stop();
          if (fsync !== "always") await setAppendfsync(o.services.redisUrl, "always");
        },
      };
    },
  };
}

/** Options of a Centrifugo target. */
export interface CentrifugoOptions {
  name: string;
  bin: string;
  engine: "memory" | "redis";
  nodes: 1 | 2;
}

/**
 * Centrifugo nodes. The Redis engine gets a redis-server of its own, started fresh each round
 * with Redis's default persistence, whose CPU is counted with the nodes'.
 */
export function centrifugoTarget(ctx: TargetContext, o: CentrifugoOptions): TargetSpec {
  return {
    name: o.name,
    promise: o.engine === "memory"
      ? `Centrifugo ${CENTRIFUGO_VERSION}: history in process memory, nothing on disk`
      : `Centrifugo ${CENTRIFUGO_VERSION}: history in Redis (default persistence: RDB snapshots, ` +
        `no AOF, no fsync per message)`,
    async start() {
      const dir = join(ctx.work, `${o.name.replaceAll(/\W+/g, "-")}-${++dirN}`);
      const secret = crypto.randomUUID();
      const started: Server[] = [];
      const stop = async () => {
        for (const s of started.reverse()) await s.stop();
      };
      try {
        const redis = o.engine === "redis" ? await startPlainRedis(join(dir, "redis")) : undefined;
        if (redis) started.push(redis);
        const nodes: Server[] = [];
        for (let i = 0; i < o.nodes; i++) {
          const n = await startCentrifugo({
            bin: o.bin,
            dir,
            name: `centrifugo-${i}`,
            secret,
            redisUrl: redis?.url,
          });
          started.push(n);
          nodes.push(n);
        }
        const [a, b = a] = nodes;
        return {
          target: {
            name: o.name,
            senderUrl: a.url,
            receiverUrl: b.url,
            pids: nodes.map((n) => n.pid),
            backendPids: redis ? [redis.pid] : undefined,
            protocol: "centrifugo" as const,
            secret,
          },
          stop,
        };
      } catch (e) {
        await stop();
        throw e;
      }
    },
  };
}

/** The Kafka JVM of scripts/services.sh, if it runs one. */
export function kafkaPid(): number | undefined {
  return servicePid("kafka");
}

/**
 * The redis-server and Kafka JVM of `scripts/services.sh` (pid files under CHAT_SERVICES_DIR,
 * default `.services`), whose CPU is counted with the scaled relays'.
 */
export function servicesPids(): number[] | undefined {
  const pids = [servicePid("redis"), kafkaPid()].filter((p): p is number => !!p);
  return pids.length ? pids : undefined;
}
