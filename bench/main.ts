/**
 * `deno task bench [--quick] [--only a,b] [--no-services]`: the relay's performance rows, each
 * next to a reference measured in the same run (this machine has 2 cores: only ratios travel).
 * Writes bench/results/<date>.json, latest.json and latency.svg, prints the table and refreshes
 * the table in bench/README.md (a quick run writes <date>-quick.json when a full run of the day
 * exists, latency-quick.svg, and leaves the README alone). `--merge` with `--only` fills the
 * sections not run from results/latest.json.
 *
 * Sections (for --only): throughput, connections, drain, scaled, kafka, cli, profile.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { Hist } from "./lib/hist.ts";
import {
  BENCH_RELAY_ENV,
  hardFdLimit,
  loadAvg,
  machineBusySeconds,
  ROOT,
  run,
  type Server,
  startServer,
  stopAll,
} from "./lib/proc.ts";
import {
  Fleet,
  ramp,
  type RampOptions,
  type RampOut,
  type StepOut,
  type Target,
} from "./scenarios/throughput.ts";
import { connectionRamp, type ConnOut } from "./scenarios/connections.ts";
import {
  drain,
  type DrainOut,
  type RedisRef,
  redisReference,
  type SqliteRef,
  sqliteReference,
} from "./scenarios/drain.ts";
import {
  busAlone,
  type BusOut,
  createTopic,
  deleteTopics,
  type EndToEnd,
  endToEndLatency,
  kafkaLibs,
  type ProducerPerf,
  producerPerformance,
} from "./scenarios/kafka.ts";
import { cliBench, type CliOut } from "./scenarios/cli.ts";
import { type ProfileOut, profileRelay } from "./scenarios/profile.ts";
import type { ProfileSummary } from "./profile_summary.ts";
import { latencyChart, type Series } from "./svg.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    "no-services": { type: "boolean", default: false },
    merge: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  console.log(
    "usage: deno task bench [--quick] [--only throughput,connections,drain,scaled,kafka,cli,profile]\n" +
      "                       [--no-services] [--merge]\n" +
      "  --merge  rows of sections not selected with --only are taken from the previous results\n" +
      "           (today's <date>.json for a full run, latest.json for a quick one)",
  );
  Deno.exit(0);
}
const quick = flags.quick;
const only = flags.only ? new Set(flags.only.split(",")) : undefined;
const want = (s: string) => !only || only.has(s);
const t0 = performance.now();
const log = (s: string) =>
  console.error(`[${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s] ${s}`);

const fdHard = hardFdLimit();
const CFG = quick
  ? {
    ramp: {
      start: 250,
      factor: 1.6,
      durationMs: 1500,
      graceMs: 1000,
      maxSteps: 10,
      gens: 2,
      maxGens: 3,
    },
    pairsPerGen: 40,
    latencyMs: 1500,
    conn: 1000,
    connGens: 2,
    connConcurrency: 25,
    drain: 10_000,
    busCount: 30_000,
    producerRecords: 100_000,
    e2eRecords: 300,
    cliRuns: 3,
    profileMs: 2500,
    kafkaWaitSec: 20,
    deadlineSec: 900,
  }
  : {
    ramp: {
      start: 200,
      factor: 1.3,
      durationMs: 5000,
      graceMs: 2000,
      maxSteps: 25,
      gens: 2,
      maxGens: 4,
    },
    pairsPerGen: 50,
    latencyMs: 10_000,
    conn: Math.min(20_000, fdHard - 100),
    connGens: 4,
    connConcurrency: 16,
    drain: 10_000,
    busCount: 100_000,
    producerRecords: 300_000,
    e2eRecords: 2000,
    cliRuns: 7,
    profileMs: 8000,
    kafkaWaitSec: 180,
    deadlineSec: 3600,
  };
const P99_LIMIT = 20;

const runId = `${Date.now().toString(36)}`;
const work = await Deno.makeTempDir({ prefix: "chat-bench-" });
const resultsDir = join(ROOT, "bench", "results");
await Deno.mkdir(resultsDir, { recursive: true });
const topics: string[] = [];
let brokers = "";

const notRun: Record<string, string> = {};
const out: Record<string, unknown> = {};

// ---------------------------------------------------------------- cleanup, always

let cleaning: Promise<void> | undefined;
const cleanup = () =>
  cleaning ??= (async () => {
    await stopAll(5000);
    if (brokers && topics.length) await deleteTopics(brokers, topics).catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  })();
const onSignal = () => {
  log("interrupted: stopping every subprocess");
  cleanup().finally(() => Deno.exit(130));
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);
const deadline = setTimeout(() => {
  log(`deadline of ${CFG.deadlineSec}s passed: stopping`);
  cleanup().finally(() => Deno.exit(1));
}, CFG.deadlineSec * 1000);

// ---------------------------------------------------------------- helpers

/** BENCH_RELAY_DIR: run relay/main.ts from another checkout (to measure a proposed patch). */
const RELAY_SCRIPT = join(Deno.env.get("BENCH_RELAY_DIR") ?? ROOT, "relay/main.ts");
let dirN = 0;
function relay(
  name: string,
  env: Record<string, string> = {},
  cpuProfDir?: string,
): Promise<Server> {
  const dataDir = join(work, `${name}-${++dirN}`);
  return startServer({
    name,
    script: RELAY_SCRIPT,
    args: ["--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir],
    env: { ...BENCH_RELAY_ENV, ...env },
    cpuProfDir,
    timeoutMs: 90_000,
  }).then((s) => ({ ...s, dataDir }));
}
function forwarder(): Promise<Server> {
  return startServer({
    name: "bare-forwarder",
    script: "bench/bare_forwarder.ts",
    args: ["--port", "0"],
  });
}
function target(name: string, a: Server, b: Server = a, backendPids?: number[]): Target {
  return {
    name,
    senderUrl: a.url,
    receiverUrl: b.url,
    pids: a === b ? [a.pid] : [a.pid, b.pid],
    backendPids,
  };
}
function rampOpts(start: number): RampOptions {
  return { ...CFG.ramp, start, pairsPerGen: CFG.pairsPerGen, p99LimitMs: P99_LIMIT, log };
}
async function section<T>(
  name: string,
  fn: () => Promise<T>,
  retry?: () => Promise<void>,
): Promise<T | undefined> {
  log(`== ${name}`);
  try {
    try {
      return await fn();
    } catch (e) {
      if (!retry) throw e;
      log(`   ${name} failed (${(e as Error).message.split("\n")[0]}); retrying once`);
      await stopAll(5000);
      await retry();
      return await fn();
    }
  } catch (e) {
    const full = (e as Error).message;
    const lines = full.split("\n").filter((l) => l.trim());
    const msg = (lines.length > 1 ? `${lines[0]} … ${lines[lines.length - 1]}` : lines[0] ?? "")
      .slice(0, 400);
    log(`   ${name} failed: ${full}`);
    notRun[name] = msg;
    return undefined;
  } finally {
    await stopAll(5000);
  }
}
const LOADS = [0.1, 0.5, 0.8];
interface LoadPoint {
  load: number;
  rate: number;
  a: StepOut;
  b?: StepOut;
}
async function loadPoints(max: number, a: Fleet, b?: Fleet): Promise<LoadPoint[]> {
  const pts: LoadPoint[] = [];
  for (const load of LOADS) {
    const rate = Math.max(20, Math.round(max * load));
    const sa = await a.step(rate, CFG.latencyMs, CFG.ramp.graceMs, 1e9);
    await a.quiet();
    const sb = b ? await b.step(rate, CFG.latencyMs, CFG.ramp.graceMs, 1e9) : undefined;
    if (b) await b.quiet();
    log(
      `  ${
        Math.round(load * 100)
      }% (${rate}/s): ${a.target.name} p50/p99/p99.9 ${sa.p50}/${sa.p99}/${sa.p999} ms` +
        (sb ? `; ${b!.target.name} ${sb.p50}/${sb.p99}/${sb.p999} ms` : ""),
    );
    pts.push({ load, rate, a: sa, b: sb });
  }
  return pts;
}

async function machine() {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const mem = /MemTotal:\s+(\d+)/.exec(await Deno.readTextFile("/proc/meminfo"));
  const r = await run(Deno.execPath(), ["--version"]);
  return {
    nproc: navigator.hardwareConcurrency,
    model: /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memGiB: mem ? Math.round(Number(mem[1]) / 1024 / 1024 * 10) / 10 : NaN,
    kernel: Deno.osRelease(),
    deno: r.stdout.split("\n")[0],
    fdHardLimit: fdHard,
    ephemeralPorts:
      (await Deno.readTextFile("/proc/sys/net/ipv4/ip_local_port_range").catch(() => "?"))
        .trim().replace(/\s+/, "-"),
  };
}

// ---------------------------------------------------------------- sections

const date = new Date().toISOString().slice(0, 10);
out.date = new Date().toISOString();
out.mode = quick ? "quick" : "full";
out.machine = await machine();
out.settings = { ...CFG, p99LimitMs: P99_LIMIT, relayEnv: BENCH_RELAY_ENV };
out.loadAvgStart = loadAvg();
const busy0 = machineBusySeconds();
log(`bench ${out.mode} on ${JSON.stringify(out.machine)}`);

let embedded: { relay: RampOut; forwarder: RampOut; points: LoadPoint[] } | undefined;
if (want("throughput")) {
  embedded = await section("throughput", async () => {
    const r = await relay("relay");
    const fRelay = new Fleet(target("relay", r), CFG.pairsPerGen);
    const rRelay = await ramp(fRelay, rampOpts(CFG.ramp.start));
    log(`  relay max ${rRelay.max}/s, lossless ${rRelay.maxLossless}/s (${rRelay.stopReason})`);
    const f = await forwarder();
    const fFwd = new Fleet(target("forwarder", f), CFG.pairsPerGen);
    const rFwd = await ramp(fFwd, rampOpts(Math.max(1000, rRelay.max)));
    log(`  forwarder max ${rFwd.max}/s, lossless ${rFwd.maxLossless}/s (${rFwd.stopReason})`);
    // Load points are fractions of the p99-bounded max, or of the lossless max when none passed.
    const points = await loadPoints(
      rRelay.max || rRelay.maxLossless || CFG.ramp.start,
      fRelay,
      fFwd,
    );
    await fRelay.close();
    await fFwd.close();
    return { relay: rRelay, forwarder: rFwd, points };
  });
  out.throughput = embedded;
}

let connections: { relay: ConnOut; forwarder: ConnOut } | undefined;
if (want("connections")) {
  connections = await section("connections", async () => {
    const n = CFG.conn;
    const r = await relay("relay-conn");
    log(`  relay: ramp to ${n} sockets over ${CFG.connGens} generators`);
    const cr = await connectionRamp(r, "relay", n, CFG.connGens, CFG.connConcurrency);
    log(
      `  relay: ${cr.connected} up, ${cr.kbPerSocket} KiB/socket after ${cr.settleSec} s idle ` +
        `(${cr.kbPerSocketAfterRamp} after the ramp), handshake p99 ${cr.handshake.p99} ms`,
    );
    await r.stop();
    const f = await forwarder();
    const cf = await connectionRamp(f, "forwarder", n, CFG.connGens, CFG.connConcurrency);
    log(
      `  forwarder: ${cf.connected} up, ${cf.kbPerSocket} KiB/socket (${cf.kbPerSocketAfterRamp} after the ramp)`,
    );
    return { relay: cr, forwarder: cf };
  });
  out.connections = connections;
}

let drains: { embedded?: DrainOut; redis?: DrainOut; sqliteRef?: SqliteRef; redisRef?: RedisRef } =
  {};
if (want("drain")) {
  const d = await section("drain", async () => {
    const r = await relay("relay-drain");
    const e = await drain(r, "embedded", CFG.drain);
    log(
      `  embedded: ${e.delivered}/${e.count} drained+acked in ${e.ackedMs} ms (fill ${e.fillMs} ms)`,
    );
    const ref = sqliteReference(work, CFG.drain);
    log(`  sqlite reference: ${JSON.stringify(ref)}`);
    return { embedded: e, sqliteRef: ref };
  });
  drains = { ...d };
}

// Kafka / Redis
interface Services {
  kafkaBrokers: string[];
  redisUrl: string;
  managed?: boolean;
}
let services: Services | undefined;
if (
  (want("drain") || want("scaled") || want("kafka") || want("profile")) && !flags["no-services"]
) {
  log("== services");
  try {
    const envK = Deno.env.get("KAFKA_BROKERS"), envR = Deno.env.get("REDIS_URL");
    if (envK && envR) services = { kafkaBrokers: envK.split(","), redisUrl: envR };
    else {
      const mod = await import("../tests/services.ts").catch(() => undefined);
      if (mod?.requireServices) {
        const s = await mod.requireServices();
        if ("skip" in s) throw new Error(s.skip);
        services = s as Services;
      } else {
        const r = await run("bash", ["scripts/services.sh", "up"], { timeoutMs: 300_000 });
        const k = /^KAFKA_BROKERS=(.+)$/m.exec(r.stdout), rd = /^REDIS_URL=(.+)$/m.exec(r.stdout);
        if (!k || !rd) throw new Error(`scripts/services.sh up failed: ${r.stderr.slice(-200)}`);
        services = { kafkaBrokers: k[1].split(","), redisUrl: rd[1].trim() };
      }
    }
    brokers = services.kafkaBrokers.join(",");
    log(`  KAFKA_BROKERS=${brokers} REDIS_URL=${services.redisUrl}`);
  } catch (e) {
    const why = `services unavailable: ${(e as Error).message.split("\n")[0]}`;
    log(`  ${why}`);
    for (const k of ["drain-redis", "scaled", "kafka"]) {
      if (want(k === "drain-redis" ? "drain" : k)) notRun[k] = why;
    }
  }
} else if (flags["no-services"]) {
  for (const k of ["drain-redis", "scaled", "kafka"]) notRun[k] = "--no-services";
}

/** Waits until a Kafka broker answers metadata (other test suites may be restarting it). */
async function kafkaReady(): Promise<void> {
  const end = performance.now() + CFG.kafkaWaitSec * 1000;
  for (;;) {
    const r = await run(Deno.execPath(), [
      "run",
      "-A",
      "scripts/kafka/ready.ts",
      services!.kafkaBrokers[0],
      "5000",
    ], { timeoutMs: 20_000 });
    if (r.code === 0) return;
    if (performance.now() > end) throw new Error(`Kafka not ready: ${r.stderr.trim().slice(-200)}`);
    log("  waiting for Kafka to answer");
    await new Promise((res) => setTimeout(res, 2000));
  }
}

function backendPids(): number[] | undefined {
  const dir = Deno.env.get("CHAT_SERVICES_DIR") ?? join(ROOT, ".services");
  const pids: number[] = [];
  for (const f of ["redis/redis.pid", "kafka/kafka.pid"]) {
    try {
      pids.push(Number(Deno.readTextFileSync(join(dir, f)).trim()));
    } catch { /* not managed here */ }
  }
  return pids.length ? pids : undefined;
}

if (services && want("drain")) {
  const s = services;
  const d = await section("drain-redis", async () => {
    const r = await relay("relay-redis", { REDIS_URL: s.redisUrl });
    const e = await drain(r, "redis", CFG.drain);
    log(
      `  redis: ${e.delivered}/${e.count} drained+acked in ${e.ackedMs} ms (fill ${e.fillMs} ms)`,
    );
    await r.stop();
    const ref = await redisReference(s.redisUrl, CFG.drain);
    log(`  redis-benchmark reference: ${JSON.stringify(ref)}`);
    return { redis: e, redisRef: ref };
  });
  drains = { ...drains, ...d };
}
out.drain = drains;

let scaled: {
  ramp: RampOut;
  same: LoadPoint[];
  cross: LoadPoint[];
  e2e?: EndToEnd;
  /** The bare forwarder's max measured in the same run (the reference of this row). */
  forwarderMax?: number;
  forwarderLossless?: number;
} | undefined;
let libs: { libs: string; version: string } | undefined;
if (services && (want("scaled") || want("kafka"))) {
  libs = await kafkaLibs(log).catch((e) => {
    notRun["kafka-tools"] = (e as Error).message;
    return undefined;
  });
}
if (services && want("scaled")) {
  const s = services;
  scaled = await section("scaled", async () => {
    await kafkaReady();
    const topic = `bench-relay-${runId}-${topics.length}`;
    topics.push(topic);
    await createTopic(brokers, topic);
    await new Promise((r) => setTimeout(r, 1000));
    const env = (i: string) => ({
      KAFKA_BROKERS: brokers,
      REDIS_URL: s.redisUrl,
      KAFKA_TOPIC: topic,
      RELAY_INSTANCE_ID: `bench-${runId}-${i}`,
    });
    const a = await relay("relay-kafka-a", env("a"));
    const fa = new Fleet(target("kafka+redis", a, a, backendPids()), CFG.pairsPerGen);
    const rr = await ramp(fa, rampOpts(25));
    log(`  kafka+redis relay max ${rr.max}/s, lossless ${rr.maxLossless}/s (${rr.stopReason})`);
    // Load points are fractions of the p99-bounded max, or of the lossless max when none passed.
    const max = rr.max || rr.maxLossless || 25;
    const same = await loadPoints(max, fa);
    await fa.close();
    const b = await relay("relay-kafka-b", env("b"));
    const fx = new Fleet(target("2 relays", a, b, backendPids()), CFG.pairsPerGen);
    await fx.grow(CFG.ramp.gens);
    await fx.step(Math.round(max * 0.1), 1000, CFG.ramp.graceMs, 1e9); // warm-up
    const cross = await loadPoints(max, fx);
    await fx.close();
    if (cross.some((p) => p.a.delivered === 0)) {
      throw new Error("no deliveries across the two relays (did Kafka restart?)");
    }
    let e2e: EndToEnd | undefined;
    if (libs) {
      await kafkaReady();
      const t = `bench-e2e-${runId}`;
      topics.push(t);
      e2e = await endToEndLatency(libs.libs, brokers, t, CFG.e2eRecords, 300);
      log(`  Kafka EndToEndLatency: ${JSON.stringify(e2e)}`);
    }
    return {
      ramp: rr,
      same,
      cross,
      e2e,
      forwarderMax: embedded?.forwarder.max,
      forwarderLossless: embedded?.forwarder.maxLossless,
    };
  }, kafkaReady);
  out.scaled = scaled;
}

let kafka: { bus: BusOut; producer?: ProducerPerf } | undefined;
if (services && want("kafka")) {
  kafka = await section("kafka", async () => {
    await kafkaReady();
    const topic = `bench-bus-${runId}-${topics.length}`;
    topics.push(topic);
    const bus = await busAlone(brokers, topic, CFG.busCount, 300);
    log(`  bus alone: ${JSON.stringify(bus)}`);
    if (!libs) return { bus };
    // Same topic (12 partitions, created by the bus), same record size, acks=all.
    const producer = await producerPerformance(libs.libs, brokers, topic, CFG.producerRecords, 300);
    log(`  ProducerPerformance: ${JSON.stringify(producer)}`);
    return { bus, producer };
  }, kafkaReady);
  out.kafkaBus = kafka;
}

let cli: CliOut | undefined;
if (want("cli")) {
  cli = await section("cli", async () => {
    try {
      await Deno.stat(join(ROOT, "cli/main.ts"));
    } catch {
      throw new Error("cli/main.ts does not exist yet");
    }
    const r = await relay("relay-cli");
    const c = await cliBench(r.url, join(work, "cli"), CFG.cliRuns);
    log(`  cli: ${JSON.stringify(c)}`);
    return c;
  });
  out.cli = cli;
}

// ---------------------------------------------------------------- --merge

const merged: Record<string, string> = {};
// deno-lint-ignore no-explicit-any
let prevProfiles: Record<string, any> = {};
if (flags.merge && only) {
  try {
    // A full run merges with today's full results; a quick one with the latest run.
    const base = !quick && await Deno.stat(join(resultsDir, `${date}.json`)).then(() =>
        true, () => false)
      ? `${date}.json`
      : "latest.json";
    const prev = JSON.parse(await Deno.readTextFile(join(resultsDir, base)));
    const from = `${prev.date} (${prev.mode})`;
    const take = <T>(section: string, cur: T | undefined, v: unknown): T | undefined => {
      if (want(section) || cur !== undefined || v === undefined || v === null) return cur;
      merged[section] = prev.merged?.[section] ?? from;
      return v as T;
    };
    embedded = take("throughput", embedded, prev.throughput);
    connections = take("connections", connections, prev.connections);
    scaled = take("scaled", scaled, prev.scaled);
    kafka = take("kafka", kafka, prev.kafkaBus);
    cli = take("cli", cli, prev.cli);
    if (!want("drain") && prev.drain) {
      drains = { ...prev.drain };
      merged.drain = prev.merged?.drain ?? from;
    }
    // Profiles not taken again in this run are kept (a new one of the same name replaces it).
    prevProfiles = prev.profiles ?? {};
    out.throughput = embedded;
    out.connections = connections;
    out.scaled = scaled;
    out.kafkaBus = kafka;
    out.cli = cli;
    out.drain = drains;
    log(`merged from ${from}: ${Object.keys(merged).join(", ") || "nothing"}`);
  } catch (e) {
    log(`--merge: cannot read the previous results: ${(e as Error).message}`);
  }
}
out.merged = merged;

// ---------------------------------------------------------------- verdicts and profiles

const ratio = (a: number, b: number) => (b > 0 ? Math.round(a / b * 100) / 100 : NaN);
const embRatio = embedded ? ratio(embedded.relay.max, embedded.forwarder.max) : NaN;
// The reference must come from the same run: a merged forwarder figure is not used for this row.
const scaledRef = scaled?.forwarderMax;
const scaledLosslessRef = scaled?.forwarderLossless;
const scaledRatio = scaled && scaledRef ? ratio(scaled.ramp.max, scaledRef) : NaN;
const mid = (pts?: LoadPoint[]) => pts?.find((p) => p.load === 0.5);
const embMissed = embedded &&
  (!(embRatio >= 0.5) || !((mid(embedded.points)?.a.p99 ?? Infinity) <= 10));
const scaledMissed = scaled &&
  (!(scaledRatio >= 0.3) || !((mid(scaled.cross)?.a.p99 ?? Infinity) <= 25));

const profiles: Record<string, ProfileOut> = {};
if (want("profile") && embedded && embMissed) {
  const rate = Math.max(100, Math.round((embedded.relay.max || embedded.relay.maxLossless) * 0.8));
  const p = await section("profile-embedded", () =>
    profileRelay(
      quick ? "embedded-quick" : "embedded",
      async (dir) => [await relay("relay-prof", {}, dir)],
      rate,
      CFG.profileMs,
      resultsDir,
      CFG.pairsPerGen,
    ));
  if (p) {
    profiles.embedded = p;
    log(`  embedded relay profile at ${rate}/s:\n${p.text}`);
  }
}
// Quick mode profiles the embedded relay only (time budget); the full run profiles both.
if (want("profile") && !quick && services && scaled && scaledMissed) {
  const s = services;
  const rate = Math.max(50, Math.round((scaled.ramp.max || scaled.ramp.maxLossless) * 0.8));
  const topic = `bench-prof-${runId}`;
  topics.push(topic);
  await createTopic(brokers, topic).catch(() => {});
  const p = await section("profile-scaled", () =>
    profileRelay(
      "kafka-redis",
      async (dir) => [
        await relay("relay-prof-k", {
          KAFKA_BROKERS: brokers,
          REDIS_URL: s.redisUrl,
          KAFKA_TOPIC: topic,
          RELAY_INSTANCE_ID: `bench-${runId}-prof`,
        }, dir),
      ],
      rate,
      CFG.profileMs,
      resultsDir,
      CFG.pairsPerGen,
    ));
  if (p) {
    profiles.scaled = p;
    log(`  kafka+redis relay profile at ${rate}/s:\n${p.text}`);
  }
}
out.profiles = {
  ...prevProfiles,
  ...Object.fromEntries(
    Object.entries(profiles).map(([k, p]) => [k, {
      rate: p.rate,
      file: p.file.replace(ROOT + "/", ""),
      step: p.step,
      summary: p.summary,
      whole: p.whole,
      workers: p.workers.map((w) => ({ file: w.file.replace(ROOT + "/", ""), summary: w.summary })),
    }]),
  ),
};

// ---------------------------------------------------------------- table

type Row = [string, string, string, string, string, string];
const rows: Row[] = [];
const yes = (ok: boolean) => (ok ? "yes" : "**no**");
const lat = (s?: { p50: number; p99: number; p999: number }) =>
  s ? `${s.p50} / ${s.p99} / ${s.p999} ms` : "-";
function tput(r: RampOut, rss: boolean): string {
  const b = r.best;
  const parts = [
    `lossless ${r.maxLossless}/s`,
    b ? `server ${b.relayCpuPerM} CPU-s per M msgs` : "",
    b && rss ? `RSS ${b.relayRssMb} MB` : "",
    b ? `generators ≤ ${b.genCpuMax} core` : "",
    r.generatorBound ? "generator-bound" : "",
  ].filter(Boolean);
  return `${r.max}/s (${parts.join("; ")})`;
}
const nr = (k: string) => `not run: ${notRun[k] ?? "not selected"}`;

if (embedded) {
  rows.push([
    "sustained 1:1 msg/s, embedded relay",
    tput(embedded.relay, true),
    `bare forwarder ${tput(embedded.forwarder, true)}`,
    `${embRatio} (lossless ${ratio(embedded.relay.maxLossless, embedded.forwarder.maxLossless)})`,
    "≥ 0.50",
    yes(embRatio >= 0.5),
  ]);
} else rows.push(["sustained 1:1 msg/s, embedded relay", nr("throughput"), "", "", "≥ 0.50", ""]);
if (scaled) {
  const b = scaled.ramp.best;
  rows.push([
    "sustained 1:1 msg/s, Kafka+Redis relay",
    tput(scaled.ramp, false) +
    (b?.backendCpuSec !== undefined ? `; Kafka+Redis ${b.backendCpuSec} CPU-s in that step` : ""),
    scaledRef
      ? `bare forwarder ${scaledRef}/s (lossless ${scaledLosslessRef}/s)`
      : "bare forwarder not measured in that run",
    `${scaledRatio}` +
    (scaledLosslessRef ? ` (lossless ${ratio(scaled.ramp.maxLossless, scaledLosslessRef)})` : ""),
    "≥ 0.30",
    yes(scaledRatio >= 0.3),
  ]);
} else {rows.push([
    "sustained 1:1 msg/s, Kafka+Redis relay",
    nr("scaled"),
    "",
    "",
    "≥ 0.30",
    "",
  ]);}
if (embedded) {
  for (const p of embedded.points) {
    const ok = p.load !== 0.5 || p.a.p99 <= 10;
    rows.push([
      `latency p50/p99/p99.9, embedded @${p.load * 100}% (${p.rate}/s)`,
      lat(p.a),
      `bare forwarder ${lat(p.b)}`,
      `${ratio(p.a.p99, p.b?.p99 ?? NaN)} (p99)`,
      p.load === 0.5 ? "p99 ≤ 10 ms" : "-",
      p.load === 0.5 ? yes(ok) : "",
    ]);
  }
}
if (scaled) {
  for (const p of scaled.same) {
    rows.push([
      `latency, Kafka+Redis same relay @${p.load * 100}% (${p.rate}/s)`,
      lat(p.a),
      "-",
      "",
      "-",
      "",
    ]);
  }
  for (const p of scaled.cross) {
    rows.push([
      `latency, across 2 relays via Kafka @${p.load * 100}% (${p.rate}/s)`,
      lat(p.a),
      scaled.e2e
        ? `Kafka EndToEndLatency ${scaled.e2e.p50} / ${scaled.e2e.p99} / ${scaled.e2e.p999} ms`
        : nr("kafka-tools"),
      scaled.e2e ? `${ratio(p.a.p99, scaled.e2e.p99)} (p99)` : "",
      p.load === 0.5 ? "p99 ≤ 25 ms" : "-",
      p.load === 0.5 ? yes(p.a.p99 <= 25) : "",
    ]);
  }
} else {rows.push([
    "latency across 2 relays via Kafka",
    nr("scaled"),
    "",
    "",
    "p99 ≤ 25 ms @50%",
    "",
  ]);}
if (drains.embedded) {
  rows.push([
    `latency offline then drain (${CFG.drain} queued), from the open`,
    lat(drains.embedded.lat) + " (embedded)",
    drains.redis ? `Redis relay ${lat(drains.redis.lat)}` : "-",
    "",
    "-",
    "",
  ]);
}
if (connections) {
  const c = connections.relay, f = connections.forwarder;
  rows.push([
    `connections: ${c.connected}/${c.target} idle sockets, each with one mailbox open`,
    `${c.kbPerSocket} KiB relay RSS/socket after ${c.settleSec ?? 2} s idle (${
      c.kbPerSocketAfterRamp ?? c.kbPerSocket
    } 2 s after the ramp); handshake+open p50/p99 ${c.handshake.p50}/${c.handshake.p99} ms; ` +
    `${c.cpuMsPerHandshake} CPU-ms/handshake`,
    `bare forwarder ${f.kbPerSocket} KiB/socket (${
      f.kbPerSocketAfterRamp ?? f.kbPerSocket
    } after the ramp); p99 ${f.handshake.p99} ms`,
    `${ratio(c.kbPerSocket, f.kbPerSocket)}`,
    "≤ 20 KiB/socket",
    yes(c.kbPerSocket <= 20 && c.failed === 0),
  ]);
} else rows.push(["connections", nr("connections"), "", "", "≤ 20 KiB/socket", ""]);
if (drains.embedded) {
  const d = drains.embedded, s = drains.sqliteRef;
  rows.push([
    `offline drain ${d.count}, embedded (SQLite)`,
    `${d.ackedMs} ms drained+acked${d.verifiedEmpty ? "" : " (NOT empty after)"}; queued at ${
      Math.round(d.count / d.fillMs * 1000)
    }/s`,
    s
      ? `raw SQLite: page+delete ${s.drainMs} ms; insert ${s.insertBatchPerSec}/s batched, ${s.insertTxnPerSec}/s per-txn`
      : "-",
    s ? `${ratio(d.ackedMs, s.drainMs)}` : "",
    "≤ 1000 ms",
    yes(d.ackedMs <= 1000 && d.verifiedEmpty && d.delivered === d.count),
  ]);
} else rows.push(["offline drain, embedded", nr("drain"), "", "", "≤ 1000 ms", ""]);
if (drains.redis) {
  const d = drains.redis, s = drains.redisRef;
  rows.push([
    `offline drain ${d.count}, Redis mailboxes`,
    `${d.ackedMs} ms drained+acked${d.verifiedEmpty ? "" : " (NOT empty after)"}; queued at ${
      Math.round(d.count / d.fillMs * 1000)
    }/s`,
    s
      ? `redis-benchmark EVALSHA: put ${s.putPerSec}/s (${s.putPipelinedPerSec}/s pipelined), page-of-500 ${s.pendingPagePerSec}/s, ack-500 ${s.ack500PerSec}/s → floor ${s.drainFloorMs} ms`
      : "-",
    s ? `${ratio(d.ackedMs, s.drainFloorMs)}` : "",
    "≤ 1000 ms",
    yes(d.ackedMs <= 1000 && d.verifiedEmpty && d.delivered === d.count),
  ]);
} else rows.push(["offline drain, Redis", nr("drain-redis"), "", "", "≤ 1000 ms", ""]);
if (kafka) {
  const r = kafka.producer ? ratio(kafka.bus.publishPerSec, kafka.producer.recordsPerSec) : NaN;
  rows.push([
    `Kafka bus alone, ${kafka.bus.recordBytes}-byte envelopes`,
    `${kafka.bus.publishPerSec}/s published (${kafka.bus.endToEndPerSec}/s through the subscription; ${
      Math.round(kafka.bus.cpuSec / kafka.bus.published * 1e6)
    } CPU-s/M)`,
    kafka.producer
      ? `ProducerPerformance ${kafka.producer.recordsPerSec}/s (acks=all, 300 B)`
      : nr("kafka-tools"),
    `${r}`,
    "≥ 0.50",
    kafka.producer ? yes(r >= 0.5) : "",
  ]);
} else rows.push(["Kafka bus alone", nr("kafka"), "", "", "≥ 0.50", ""]);
if (cli) {
  rows.push([
    "CLI `id` cold start",
    `${cli.idMs} ms`,
    `deno run empty script ${cli.emptyScriptMs} ms`,
    `${ratio(cli.idMs, cli.emptyScriptMs)}`,
    "-",
    "",
  ]);
  rows.push([
    "CLI `send` round trip (loopback)",
    `${cli.sendOverIdMs} ms over \`id\` (connect, auth, seal, store, accepted); ${cli.sendMs} ms whole process`,
    `\`id\` ${cli.idMs} ms; empty script ${cli.emptyScriptMs} ms`,
    `${ratio(cli.sendMs, cli.emptyScriptMs)} (process)`,
    "≤ 50 ms",
    yes(cli.sendOverIdMs <= 50),
  ]);
  rows.push([
    "CLI history append at 0 / 100k messages",
    `${cli.appendAt0Ms} / ${cli.appendAt100kMs} ms per append (open 100k: ${cli.openAt100kMs} ms)`,
    "append at 0",
    `${ratio(cli.appendAt100kMs, cli.appendAt0Ms)}`,
    "flat (≤ 1.5×)",
    yes(cli.appendAt100kMs <= 1.5 * cli.appendAt0Ms),
  ]);
  const b = cli.syncBacklog;
  if (b) {
    rows.push([
      `CLI \`sync\` of a ${b.count} backlog`,
      `${b.syncMs} ms whole process (${
        Math.round((b.syncMs - b.emptySyncMs) / b.count * 1000)
      } µs per message over an empty sync)`,
      `empty \`sync\` ${b.emptySyncMs} ms; bare client draining ${b.count}: ${b.rawDrainMs} ms`,
      `${ratio(b.syncMs, b.emptySyncMs + b.rawDrainMs)}`,
      "≤ 3000 ms",
      yes(b.syncMs <= 3000),
    ]);
  } else rows.push(["CLI `sync` of a backlog", nr("cli"), "", "", "≤ 3000 ms", ""]);
  const p = cli.paste;
  rows.push(
    p
      ? [
        `CLI \`chat\`: a ${p.chars.toLocaleString("en")}-character paste (tmux)`,
        `on screen after ${p.shownMs} ms; accepted (✓) after ${p.sentMs} ms (median of ${p.runs})`,
        "-",
        "-",
        "< 1000 ms",
        yes(p.sentMs < 1000),
      ]
      : ["CLI `chat` paste", "not run: tmux missing", "", "", "< 1000 ms", ""],
  );
} else rows.push(["CLI", nr("cli"), "", "", "", ""]);

const header: Row = ["metric", "result", "reference (same run)", "ratio", "target", "met"];
const md = [header, ["---", "---", "---", "---", "---", "---"] as Row, ...rows]
  .map((r) => `| ${r.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`).join("\n");
const elapsed = Math.round((performance.now() - t0) / 1000);
out.table = rows;
out.notRun = notRun;
out.durationSec = elapsed;
out.loadAvgEnd = loadAvg();
out.machineBusyCores = Math.round((machineBusySeconds() - busy0) / elapsed * 100) / 100;

// ---------------------------------------------------------------- files

const series: Series[] = [];
const curve = (steps: StepOut[], pts: LoadPoint[] | undefined, which: "a" | "b") =>
  [...steps, ...(pts ?? []).map((p) => p[which]).filter((s): s is StepOut => !!s)]
    .filter((s) => s.delivered > 0)
    .map((s) => ({ rate: s.offered, p50: s.p50, p99: s.p99 }));
if (embedded) {
  series.push({
    name: "relay (SQLite)",
    color: "#1f77b4",
    points: curve(embedded.relay.steps, embedded.points, "a"),
  });
  series.push({
    name: "bare forwarder",
    color: "#2ca02c",
    points: curve(embedded.forwarder.steps, embedded.points, "b"),
  });
}
if (scaled) {
  series.push({
    name: "relay (Kafka+Redis)",
    color: "#d62728",
    points: curve(scaled.ramp.steps, scaled.same, "a"),
  });
  series.push({
    name: "2 relays via Kafka",
    color: "#9467bd",
    points: scaled.cross.map((p) => ({ rate: p.rate, p50: p.a.p50, p99: p.a.p99 })),
  });
}
// A quick run never overwrites a full run's files: it writes <date>-quick.json when today's
// <date>.json holds a full run, latency-quick.svg, and leaves the README table alone.
let jsonName = `${date}.json`;
if (quick) {
  try {
    const today = JSON.parse(await Deno.readTextFile(join(resultsDir, jsonName)));
    if (today.mode === "full") jsonName = `${date}-quick.json`;
  } catch { /* none yet */ }
}
const svgName = quick ? "latency-quick.svg" : "latency.svg";
const m = out.machine as { nproc: number; model: string };
await Deno.writeTextFile(
  join(resultsDir, svgName),
  latencyChart(
    series,
    `chat-p2p delivery latency vs load (${date}, ${out.mode}, ${m.nproc} cores ${m.model})`,
  ),
);
const json = JSON.stringify(out, (_k, v) => (v instanceof Hist ? v.toJSON() : v), 2);
await Deno.writeTextFile(join(resultsDir, jsonName), json);
await Deno.writeTextFile(join(resultsDir, "latest.json"), json);

const mach = out.machine as Record<string, unknown>;
const tableBlock = [
  `Run ${out.date} (${out.mode}, ${elapsed} s) on ${mach.nproc} × ${mach.model}, ${mach.memGiB} GiB, ` +
  `${mach.deno}. Load average ${out.loadAvgStart} at start, ${out.loadAvgEnd} at the end; the ` +
  `machine was busy ${out.machineBusyCores} cores on average (this run and anything else).`,
  "",
  md,
  ...(Object.keys(merged).length
    ? ["", ...Object.entries(merged).map(([k, v]) => `Rows of "${k}" are from the run of ${v}.`)]
    : []),
  ...(Object.keys(notRun).length
    ? ["", "Not run:", ...Object.entries(notRun).map(([k, v]) => `- ${k}: ${v}`)]
    : []),
  ...Object.entries(
    out.profiles as Record<
      string,
      {
        rate: number;
        file: string;
        summary: ProfileSummary;
        workers?: Array<{ file: string; summary: ProfileSummary }>;
      }
    >,
  )
    .flatMap(([name, p]) => [
      "",
      `Profile \`${name}\` at ${p.rate}/s (${p.file}; ${p.summary.busyMs} ms busy, ` +
      `${p.summary.excludedMs} ms of handshakes left out), top self time:`,
      "",
      ...p.summary.topSelf.slice(0, 8).map((r) => `- ${r.pct}% ${r.name}`),
      "",
      "Top inclusive:",
      "",
      ...p.summary.topTotal.filter((r) =>
        !/^(\(anonymous\) ext:|dispatch |invokeEventListeners|innerInvoke|wrappedHandler)/.test(
          r.name,
        )
      )
        .slice(0, 8).map((r) => `- ${r.pct}% ${r.name}`),
      ...(p.workers ?? []).flatMap((w) => [
        "",
        `Its worker thread (${w.file}): ${w.summary.busyMs} ms busy of ${w.summary.totalMs} ms ` +
        `sampled, top self time:`,
        "",
        ...w.summary.topSelf.slice(0, 5).map((r) => `- ${r.pct}% ${r.name}`),
      ]),
    ]),
  "",
  `![latency vs load](results/${svgName})`,
].join("\n");
try {
  const readme = join(ROOT, "bench", "README.md");
  const text = await Deno.readTextFile(readme);
  const a = "<!-- bench:latest:start -->", b = "<!-- bench:latest:end -->";
  const i = text.indexOf(a), j = text.indexOf(b);
  if (i >= 0 && j > i && !quick) {
    await Deno.writeTextFile(
      readme,
      text.slice(0, i + a.length) + "\n" + tableBlock + "\n" + text.slice(j),
    );
    // Keep the README as `deno fmt` wants it (the table is padded by fmt).
    await run(Deno.execPath(), ["fmt", "-q", readme], { timeoutMs: 60_000 });
  }
} catch { /* no README yet */ }

console.log(`\n${tableBlock}\n`);
console.log(
  `results: bench/results/${jsonName}, bench/results/latest.json, bench/results/${svgName}` +
    (quick ? " (quick runs leave bench/README.md alone)" : ", table in bench/README.md"),
);
clearTimeout(deadline);
await cleanup();
Deno.exit(0);
