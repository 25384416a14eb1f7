/**
 * Kafka rows: the relay's bus alone (bench/kafka_bus.ts) against Kafka's own perf tools from the
 * kafka-tools jar of the broker's version (ProducerPerformance, EndToEndLatency).
 *
 * @module
 */
import { join } from "node:path";
import { ROOT, run } from "../lib/proc.ts";

/** Finds the broker's jar folder (the services script's cache) holding kafka-tools. */
export async function kafkaLibs(
  log: (s: string) => void,
): Promise<{ libs: string; version: string }> {
  const home = Deno.env.get("HOME") ?? "/root";
  const cacheRoot = join(Deno.env.get("XDG_CACHE_HOME") ?? join(home, ".cache"), "chat-p2p");
  const explicit = Deno.env.get("CHAT_KAFKA_CACHE");
  const candidates: string[] = [];
  if (explicit) candidates.push(join(explicit, "libs"));
  try {
    for (const e of Deno.readDirSync(cacheRoot)) {
      if (e.isDirectory && /^kafka-\d/.test(e.name)) {
        candidates.push(join(cacheRoot, e.name, "libs"));
      }
    }
  } catch { /* no cache */ }
  for (const libs of candidates) {
    let broker: string | undefined, tools: string | undefined;
    try {
      for (const f of Deno.readDirSync(libs)) {
        const b = /^kafka_2\.13-(.+)\.jar$/.exec(f.name);
        if (b) broker = b[1];
        if (/^kafka-tools-\d.*\.jar$/.test(f.name)) tools = f.name;
      }
    } catch {
      continue;
    }
    if (!broker) continue;
    if (tools) return { libs, version: broker };
    // kafka-tools missing: fetch it (and its dependencies) next to the broker's jars.
    log(`  kafka-tools ${broker} missing in ${libs}; fetching with mvn`);
    const out = join(cacheRoot, `kafka-tools-${broker}`);
    const r = await run("mvn", [
      "-q",
      "-f",
      join(ROOT, "bench/kafka-tools.pom.xml"),
      `-Dkafka.version=${broker}`,
      "dependency:copy-dependencies",
      "-DincludeScope=runtime",
      `-DoutputDirectory=${out}`,
    ], { timeoutMs: 300_000 });
    if (r.code !== 0) {
      throw new Error(`mvn could not fetch kafka-tools ${broker}: ${r.stderr.slice(-300)}`);
    }
    return { libs: `${libs}:${out}`, version: broker };
  }
  throw new Error(`no Kafka jars found under ${cacheRoot} (run bash scripts/services.sh up)`);
}

function classpath(libs: string): string {
  return libs.split(":").map((d) => `${d}/*`).join(":");
}

/** ProducerPerformance result. */
export interface ProducerPerf {
  records: number;
  recordsPerSec: number;
  mbPerSec: number;
  avgMs: number;
  p50: number;
  p99: number;
  wallSec: number;
}

/** Runs org.apache.kafka.tools.ProducerPerformance (acks=all, as the bus). */
export async function producerPerformance(
  libs: string,
  brokers: string,
  topic: string,
  records: number,
  size: number,
): Promise<ProducerPerf> {
  const r = await run("java", [
    "-Xmx512m",
    "-cp",
    classpath(libs),
    "org.apache.kafka.tools.ProducerPerformance",
    "--topic",
    topic,
    "--num-records",
    String(records),
    "--record-size",
    String(size),
    "--throughput",
    "-1",
    "--command-property",
    `bootstrap.servers=${brokers}`,
    "acks=all",
  ], { timeoutMs: 300_000 });
  const line = r.stdout.split("\n").reverse().find((l) => /records sent/.test(l));
  const m = line &&
    /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency.*?(\d+) ms 50th.*?(\d+) ms 99th/
      .exec(line);
  if (!m) {
    throw new Error(`ProducerPerformance: no summary (exit ${r.code}): ${r.stderr.slice(-400)}`);
  }
  return {
    records: Number(m[1]),
    recordsPerSec: Math.round(Number(m[2])),
    mbPerSec: Number(m[3]),
    avgMs: Number(m[4]),
    p50: Number(m[5]),
    p99: Number(m[6]),
    wallSec: Math.round(r.ms / 100) / 10,
  };
}

/** EndToEndLatency result (ms; Kafka prints integer percentiles). */
export interface EndToEnd {
  records: number;
  avgMs: number;
  p50: number;
  p99: number;
  p999: number;
}

/** Runs org.apache.kafka.tools.EndToEndLatency (one record at a time, acks=all). */
export async function endToEndLatency(
  libs: string,
  brokers: string,
  topic: string,
  records: number,
  size: number,
): Promise<EndToEnd> {
  const r = await run("java", [
    "-Xmx256m",
    "-cp",
    classpath(libs),
    "org.apache.kafka.tools.EndToEndLatency",
    "--bootstrap-server",
    brokers,
    "--topic",
    topic,
    "--num-records",
    String(records),
    "--producer-acks",
    "all",
    "--record-size",
    String(size),
  ], { timeoutMs: 300_000 });
  const avg = /Avg latency: ([\d.]+) ms/.exec(r.stdout);
  const p = /50th = (\d+), 99th = (\d+), 99\.9th = (\d+)/.exec(r.stdout);
  if (!avg || !p) {
    throw new Error(`EndToEndLatency: no summary (exit ${r.code}): ${r.stderr.slice(-400)}`);
  }
  return {
    records,
    avgMs: Number(avg[1]),
    p50: Number(p[1]),
    p99: Number(p[2]),
    p999: Number(p[3]),
  };
}

/** The bus-alone result printed by bench/kafka_bus.ts. */
export interface BusOut {
  published: number;
  failed: number;
  received: number;
  publishPerSec: number;
  endToEndPerSec: number;
  recordBytes: number;
  cpuSec: number;
  wallSec: number;
  batches: number;
}

/** Runs bench/kafka_bus.ts in its own process. */
export async function busAlone(
  brokers: string,
  topic: string,
  count: number,
  size: number,
): Promise<BusOut> {
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    "bench/kafka_bus.ts",
    "--brokers",
    brokers,
    "--topic",
    topic,
    "--count",
    String(count),
    "--size",
    String(size),
  ], { timeoutMs: 180_000 });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`kafka_bus.ts failed (exit ${r.code}): ${r.stderr.slice(-400)}`);
  return JSON.parse(line) as BusOut;
}

/** Creates a 12-partition topic and waits for its leaders. */
export async function createTopic(brokers: string, topic: string): Promise<void> {
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    "bench/kafka_bus.ts",
    "--brokers",
    brokers,
    "--create-topic",
    topic,
  ], { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`cannot create topic ${topic}: ${r.stderr.slice(-300)}`);
}

/** Deletes the benchmark's topics (best effort). */
export async function deleteTopics(brokers: string, topics: string[]): Promise<void> {
  if (topics.length === 0) return;
  await run(Deno.execPath(), [
    "run",
    "-A",
    "bench/kafka_bus.ts",
    "--brokers",
    brokers,
    "--delete-topics",
    topics.join(","),
  ], { timeoutMs: 60_000 });
}

/** The latency floor printed by bench/kafka_floor.ts. */
export interface FloorOut {
  rate: number;
  delivered: number;
  p50: number;
  p99: number;
  p999: number;
  cpuPerM: number;
  backendCpuPerM?: number;
}

/**
 * Runs bench/kafka_floor.ts (two buses, one process) at `rate` for `seconds`, with the CPU of
 * `backendPids` (the Kafka JVM).
 */
export async function kafkaFloor(
  brokers: string,
  topic: string,
  rate: number,
  seconds: number,
  backendPids: number[] = [],
): Promise<FloorOut> {
  const r = await run(Deno.execPath(), [
    "run",
    "-A",
    "bench/kafka_floor.ts",
    "--brokers",
    brokers,
    "--topic",
    topic,
    "--backend-pids",
    backendPids.join(","),
    "--rate",
    String(rate),
    "--seconds",
    String(seconds),
  ], { timeoutMs: 120_000 + seconds * 1000 });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`kafka_floor.ts failed (exit ${r.code}): ${r.stderr.slice(-400)}`);
  return JSON.parse(line) as FloorOut;
}
