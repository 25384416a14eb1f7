/**
 * `deno task bench [--quick] [--only a,b] [--no-services] [--merge] [--rounds N] [--step-ms MS]`:
 * the relay's performance rows, each next to a reference measured in the same run (this machine
 * has 2 cores: only ratios travel). The throughput rows put chat-p2p beside Centrifugo (memory
 * engine beside the embedded relay, Redis engine beside scaled mode), on the same load generator,
 * in interleaved rounds (bench/scenarios/grid.ts; the method is in bench/README.md).
 * Writes bench/results/<date>.json, latest.json and latency.svg, prints the tables and refreshes
 * them in bench/README.md (a quick run writes <date>-quick.json when a full run of the day
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
  stopAll,
} from "./lib/proc.ts";
import { grid, type GridOptions, type GridOut, type TargetSpec } from "./scenarios/grid.ts";
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
  deleteTopics,
  type EndToEnd,
  endToEndLatency,
  type FloorOut,
  kafkaFloor,
  kafkaLibs,
  type ProducerPerf,
  producerPerformance,
} from "./scenarios/kafka.ts";
import { cliBench, type CliOut } from "./scenarios/cli.ts";
import { type ProfileOut, profileRelay } from "./scenarios/profile.ts";
import type { ProfileSummary } from "./profile_summary.ts";
import { latencyChart, type Series } from "./svg.ts";
import { type CentrifugoFound, findCentrifugo } from "./lib/centrifugo.ts";
import {
  centrifugoTarget,
  embeddedTarget,
  forwarderTarget,
  kafkaPid,
  scaledTarget,
  servicesPids,
  startRelay,
  type TargetContext,
} from "./lib/targets.ts";
import { at, cpuRow, gridTable, latAt, markdown, rateRow, ratio, type Row, yes } from "./report.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    "no-services": { type: "boolean", default: false },
    merge: { type: "boolean", default: false },
    rounds: { type: "string" },
    "step-ms": { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  console.log(
    "usage: deno task bench [--quick] [--only throughput,connections,drain,scaled,kafka,cli,profile]\n" +
      "                       [--no-services] [--merge] [--rounds N] [--step-ms MS]\n" +
      "  --merge    rows of sections not selected with --only are taken from the previous results\n" +
      "             (today's <date>.json for a full run, latest.json for a quick one)\n" +
      "  --rounds   interleaved rounds of the throughput grids (default 3, quick 1)\n" +
      "  --step-ms  length of a constant-rate step (default 12000, quick 3000)",
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
const P99_LIMIT = 20;
/** The rates the targets of issue 13 name: CPU at 1,000/s, p99 at 4,000/s (embedded). */
const CPU_RATE = 1000, EMBEDDED_P99_RATE = 4000;
const CFG = quick
  ? {
    grid: { stepMs: 3000, minSamples: 600, rounds: 1, graceMs: 1500, gens: 2, maxGens: 2 },
    pairsPerGen: 50,
    embeddedRates: [1000, 4000, 8000, 16000, 24000, 32000],
    scaledRates: [100, 500, 1000, 2000, 4000, 8000, 16000],
    conn: 1000,
    connGens: 2,
    connConcurrency: 25,
    drain: 10_000,
    busCount: 30_000,
    producerRecords: 100_000,
    e2eRecords: 300,
    floorSec: 4,
    cliRuns: 3,
    profileMs: 2500,
    kafkaWaitSec: 20,
    deadlineSec: 1800,
  }
  : {
    // 4 generator processes of 25 pairs: the 100 sender→receiver pairs, and room to
    // send 24k+ msg/s without a generator running out of CPU.
    grid: { stepMs: 12_000, minSamples: 1200, rounds: 3, graceMs: 2000, gens: 4, maxGens: 4 },
    pairsPerGen: 25,
    embeddedRates: [1000, 2000, 4000, 8000, 12000, 16000, 20000, 24000, 32000, 48000],
    scaledRates: [100, 250, 500, 1000, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 24000],
    conn: Math.min(5000, fdHard - 100),
    connGens: 4,
    connConcurrency: 16,
    drain: 10_000,
    busCount: 100_000,
    producerRecords: 300_000,
    e2eRecords: 2000,
    floorSec: 10,
    cliRuns: 7,
    profileMs: 8000,
    kafkaWaitSec: 180,
    deadlineSec: 4 * 3600,
  };
if (flags.rounds) CFG.grid.rounds = Number(flags.rounds);
if (flags["step-ms"]) CFG.grid.stepMs = Number(flags["step-ms"]);

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
const ctx: TargetContext = {
  work,
  relayScript: join(Deno.env.get("BENCH_RELAY_DIR") ?? ROOT, "relay/main.ts"),
};
const gridOpts = (rates: number[]): GridOptions => ({
  ...CFG.grid,
  rates,
  pairsPerGen: CFG.pairsPerGen,
  p99LimitMs: P99_LIMIT,
  hardP99Ms: 250,
  log,
});
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

const centrifugo: CentrifugoFound = await findCentrifugo();
out.centrifugo = centrifugo;
if ("missing" in centrifugo) {
  log(`  ${centrifugo.missing}: the Centrifugo rows are left out`);
  notRun.centrifugo = centrifugo.missing;
} else log(`  Centrifugo ${centrifugo.version} at ${centrifugo.bin}`);
const cfBin = "bin" in centrifugo ? centrifugo.bin : undefined;

/** The grid results of one section, by target name. */
type Grids = Record<string, GridOut>;
const N = {
  embedded: "chat-p2p embedded",
  forwarder: "bare Deno forwarder",
  cfMemory: "Centrifugo, memory engine",
  scaled1: "chat-p2p, 1 relay, Kafka + Redis",
  scaled2: "chat-p2p, 2 relays (send on A, receive on B)",
  scaled1Sec: "chat-p2p, 1 relay, Redis appendfsync everysec",
  scaled2Sec: "chat-p2p, 2 relays, Redis appendfsync everysec",
  cfRedis1: "Centrifugo, 1 node, Redis engine",
  cfRedis2: "Centrifugo, 2 nodes, Redis engine (publish on A, subscribe on B)",
} as const;
const byName = (gs: GridOut[]): Grids => Object.fromEntries(gs.map((g) => [g.name, g]));

let throughput: Grids | undefined;
if (want("throughput")) {
  throughput = await section("throughput", async () => {
    const specs: TargetSpec[] = [embeddedTarget(ctx, N.embedded), forwarderTarget()];
    if (cfBin) {
      specs.push(
        centrifugoTarget(ctx, { name: N.cfMemory, bin: cfBin, engine: "memory", nodes: 1 }),
      );
    }
    return byName(await grid(specs, gridOpts(CFG.embeddedRates)));
  });
  out.throughput = throughput;
}

let connections: { relay: ConnOut; forwarder: ConnOut; centrifugo?: ConnOut } | undefined;
if (want("connections")) {
  connections = await section("connections", async () => {
    const n = CFG.conn;
    const ramp = async (name: string, spec: TargetSpec) => {
      const { target, stop } = await spec.start();
      try {
        log(`  ${name}: ramp to ${n} sockets over ${CFG.connGens} generators`);
        const c = await connectionRamp(
          { pid: target.pids[0], url: target.senderUrl },
          name,
          n,
          CFG.connGens,
          CFG.connConcurrency,
          40_000,
          target.secret,
        );
        log(
          `  ${name}: ${c.connected} up, ${c.kbPerSocket} KiB/socket after ${c.settleSec} s idle ` +
            `(${c.kbPerSocketAfterRamp} after the ramp), handshake p99 ${c.handshake.p99} ms`,
        );
        return c;
      } finally {
        await stop();
      }
    };
    const relay = await ramp("relay", embeddedTarget(ctx));
    const forwarder = await ramp("forwarder", forwarderTarget());
    const cf = cfBin
      ? await ramp(
        "centrifugo",
        centrifugoTarget(ctx, { name: N.cfMemory, bin: cfBin, engine: "memory", nodes: 1 }),
      )
      : undefined;
    return { relay, forwarder, ...(cf ? { centrifugo: cf } : {}) };
  });
  out.connections = connections;
}

let drains: { embedded?: DrainOut; redis?: DrainOut; sqliteRef?: SqliteRef; redisRef?: RedisRef } =
  {};
if (want("drain")) {
  const d = await section("drain", async () => {
    const r = await startRelay(ctx, "relay-drain");
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

if (services && want("drain")) {
  const s = services;
  const d = await section("drain-redis", async () => {
    const r = await startRelay(ctx, "relay-redis", { REDIS_URL: s.redisUrl });
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

let scaled: { grids: Grids; e2e?: EndToEnd } | undefined;
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
    const svc = { brokers, redisUrl: s.redisUrl, backendPids: servicesPids() };
    const topic = (i: number) => {
      const t = `bench-relay-${runId}-${i}`;
      topics.push(t);
      return t;
    };
    const specs: TargetSpec[] = [
      scaledTarget(ctx, { name: N.scaled1, relays: 1, services: svc, topic: topic(1) }),
      scaledTarget(ctx, { name: N.scaled2, relays: 2, services: svc, topic: topic(2) }),
      scaledTarget(ctx, {
        name: N.scaled1Sec,
        relays: 1,
        services: svc,
        topic: topic(3),
        appendfsync: "everysec",
      }),
      scaledTarget(ctx, {
        name: N.scaled2Sec,
        relays: 2,
        services: svc,
        topic: topic(4),
        appendfsync: "everysec",
      }),
    ];
    if (cfBin) {
      specs.push(
        centrifugoTarget(ctx, { name: N.cfRedis1, bin: cfBin, engine: "redis", nodes: 1 }),
        centrifugoTarget(ctx, { name: N.cfRedis2, bin: cfBin, engine: "redis", nodes: 2 }),
      );
    }
    const grids = byName(await grid(specs, gridOpts(CFG.scaledRates)));
    let e2e: EndToEnd | undefined;
    if (libs) {
      await kafkaReady();
      const t = `bench-e2e-${runId}`;
      topics.push(t);
      e2e = await endToEndLatency(libs.libs, brokers, t, CFG.e2eRecords, 300);
      log(`  Kafka EndToEndLatency: ${JSON.stringify(e2e)}`);
    }
    return { grids, e2e };
  }, kafkaReady);
  out.scaled = scaled;
}

let kafka: { bus: BusOut; floor: FloorOut; producer?: ProducerPerf } | undefined;
if (services && want("kafka")) {
  kafka = await section("kafka", async () => {
    await kafkaReady();
    const topic = `bench-bus-${runId}-${topics.length}`;
    topics.push(topic);
    const bus = await busAlone(brokers, topic, CFG.busCount, 300);
    log(`  bus alone: ${JSON.stringify(bus)}`);
    const floorTopic = `bench-floor-${runId}`;
    topics.push(floorTopic);
    const jvm = kafkaPid();
    const floor = await kafkaFloor(brokers, floorTopic, CPU_RATE, CFG.floorSec, jvm ? [jvm] : []);
    log(`  latency floor: ${JSON.stringify(floor)}`);
    if (!libs) return { bus, floor };
    // Same topic (12 partitions, created by the bus), same record size, acks=all.
    const producer = await producerPerformance(libs.libs, brokers, topic, CFG.producerRecords, 300);
    log(`  ProducerPerformance: ${JSON.stringify(producer)}`);
    return { bus, floor, producer };
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
    const r = await startRelay(ctx, "relay-cli");
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
    throughput = take("throughput", throughput, prev.throughput);
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
    out.throughput = throughput;
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

const emb = throughput?.[N.embedded], cfMem = throughput?.[N.cfMemory];
const sc = scaled?.grids ?? {};
const embMissed = emb && cfMem &&
  (emb.passEvery < cfMem.passEvery ||
    !(ratio(at(emb, CPU_RATE)?.totalCpuPerM ?? NaN, at(cfMem, CPU_RATE)?.totalCpuPerM ?? NaN) <=
      1.5) ||
    !((at(emb, EMBEDDED_P99_RATE)?.p99 ?? Infinity) <= 5));
const scaledMissed = sc[N.scaled1] && sc[N.cfRedis1] &&
  (sc[N.scaled1].passEvery < sc[N.cfRedis1].passEvery ||
    !(ratio(
      at(sc[N.scaled1], CPU_RATE)?.totalCpuPerM ?? NaN,
      at(sc[N.cfRedis1], CPU_RATE)
        ?.totalCpuPerM ?? NaN,
    ) <= 1.5));

const profiles: Record<string, ProfileOut> = {};
// A profile explains a missed target: once this run finds the target met, an earlier run's
// profile of it is dropped, not shown beside rows it no longer explains.
if (want("profile") && emb && cfMem && !embMissed) delete prevProfiles.embedded;
if (want("profile") && sc[N.scaled1] && sc[N.cfRedis1] && !scaledMissed) delete prevProfiles.scaled;
if (want("profile") && embMissed) {
  const rate = EMBEDDED_P99_RATE;
  const p = await section("profile-embedded", () =>
    profileRelay(
      quick ? "embedded-quick" : "embedded",
      async (dir) => [await startRelay(ctx, "relay-prof", {}, dir)],
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
if (want("profile") && !quick && services && scaledMissed) {
  const s = services;
  const topic = `bench-prof-${runId}`;
  topics.push(topic);
  const p = await section("profile-scaled", () =>
    profileRelay(
      "kafka-redis",
      async (dir) => [
        await startRelay(ctx, "relay-prof-k", {
          KAFKA_BROKERS: brokers,
          REDIS_URL: s.redisUrl,
          KAFKA_TOPIC: topic,
          RELAY_INSTANCE_ID: `bench-${runId}-prof`,
        }, dir),
      ],
      CPU_RATE,
      CFG.profileMs,
      resultsDir,
      CFG.pairsPerGen,
    ));
  if (p) {
    profiles.scaled = p;
    log(`  kafka+redis relay profile at ${CPU_RATE}/s:\n${p.text}`);
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

// ---------------------------------------------------------------- tables

const rows: Row[] = [];
const nr = (k: string) => `not run: ${notRun[k] ?? "not selected"}`;
const lat = (s?: { p50: number; p99: number; p999: number }) =>
  s ? `${s.p50} / ${s.p99} / ${s.p999} ms` : "-";
const cfNote = notRun.centrifugo ? ` (${notRun.centrifugo})` : "";

if (emb) {
  rows.push(rateRow("sustained 1:1 msg/s, embedded relay (every round)", emb, cfMem));
  rows.push(cpuRow(`CPU-s per M msgs at ${CPU_RATE}/s, embedded`, emb, cfMem, CPU_RATE, 1.5));
  const p99 = at(emb, EMBEDDED_P99_RATE)?.p99 ?? NaN;
  rows.push([
    `latency p50/p99/p99.9 at ${EMBEDDED_P99_RATE}/s, embedded`,
    latAt(emb, EMBEDDED_P99_RATE),
    cfMem ? `${cfMem.name} ${latAt(cfMem, EMBEDDED_P99_RATE)}` : "not run" + cfNote,
    `${ratio(p99, at(cfMem, EMBEDDED_P99_RATE)?.p99 ?? NaN)} (p99)`,
    "p99 ≤ 5 ms",
    yes(p99 <= 5),
  ]);
  const fwd = throughput?.[N.forwarder];
  if (fwd) rows.push(rateRow("sustained 1:1 msg/s, bare Deno forwarder (ceiling)", fwd, cfMem));
} else rows.push(["sustained 1:1 msg/s, embedded relay", nr("throughput"), "", "", "≥ 1.0", ""]);
if (sc[N.scaled1]) {
  const [one, two] = [sc[N.scaled1], sc[N.scaled2]];
  rows.push(rateRow("sustained 1:1 msg/s, scaled, 1 relay", one, sc[N.cfRedis1]));
  if (two) {
    rows.push(rateRow("sustained 1:1 msg/s, scaled, 2 relays", two, sc[N.cfRedis2]));
    const r = ratio(two.passEvery, one.passEvery);
    rows.push([
      "scaled: 2 relays vs 1 relay",
      `${two.passEvery}/s`,
      `1 relay ${one.passEvery}/s`,
      String(r),
      "≥ 1.0",
      yes(r >= 1),
    ]);
  }
  rows.push(cpuRow(
    `CPU-s per M msgs at ${CPU_RATE}/s, scaled 1 relay (+ Kafka + Redis)`,
    one,
    sc[N.cfRedis1],
    CPU_RATE,
    1.5,
  ));
  if (two) {
    rows.push(cpuRow(
      `CPU-s per M msgs at ${CPU_RATE}/s, scaled 2 relays (+ Kafka + Redis)`,
      two,
      sc[N.cfRedis2],
      CPU_RATE,
      1.5,
    ));
  }
  for (const [name, ref] of [[N.scaled1Sec, N.cfRedis1], [N.scaled2Sec, N.cfRedis2]]) {
    if (!sc[name]) continue;
    const r = rateRow(`sustained, ${name.replace("chat-p2p, ", "")} (option)`, sc[name], sc[ref]);
    rows.push([...r.slice(0, 4), "-", ""] as Row);
  }
  if (scaled?.e2e) {
    const e = scaled.e2e;
    rows.push([
      "Kafka's own EndToEndLatency (acks=all, one record at a time)",
      `${e.p50} / ${e.p99} / ${e.p999} ms`,
      "",
      "",
      "-",
      "",
    ]);
  }
} else rows.push(["sustained 1:1 msg/s, scaled", nr("scaled"), "", "", "≥ 1.0", ""]);
if (connections) {
  const c = connections.relay, f = connections.forwarder, cf = connections.centrifugo;
  rows.push([
    `connections: ${c.connected}/${c.target} idle sockets, each with one mailbox open`,
    `${c.kbPerSocket} KiB relay RSS/socket after ${c.settleSec ?? 2} s idle (${
      c.kbPerSocketAfterRamp ?? c.kbPerSocket
    } 2 s after the ramp); handshake+open p50/p99 ${c.handshake.p50}/${c.handshake.p99} ms; ` +
    `${c.cpuMsPerHandshake} CPU-ms/handshake`,
    [
      cf
        ? `Centrifugo ${cf.kbPerSocket} KiB/socket, p99 ${cf.handshake.p99} ms`
        : `Centrifugo not run${cfNote}`,
      `bare forwarder ${f.kbPerSocket} KiB/socket, p99 ${f.handshake.p99} ms`,
    ].join("; "),
    cf ? `${ratio(c.kbPerSocket, cf.kbPerSocket)} (vs Centrifugo)` : "",
    "≤ 23 KiB/socket, handshake p99 ≤ 40 ms",
    yes(c.kbPerSocket <= 23 && c.handshake.p99 <= 40 && c.failed === 0),
  ]);
} else rows.push(["connections", nr("connections"), "", "", "≤ 23 KiB/socket", ""]);
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
  rows.push([
    `latency offline then drain (${CFG.drain} queued), from the open`,
    lat(drains.embedded.lat) + " (embedded)",
    drains.redis ? `Redis relay ${lat(drains.redis.lat)}` : "-",
    "",
    "-",
    "",
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
  const b = kafka.bus;
  const r = kafka.producer ? ratio(b.publishPerSec, kafka.producer.recordsPerSec) : NaN;
  rows.push([
    `Kafka bus alone, ${b.recordBytes}-byte envelopes`,
    `${b.publishPerSec}/s published (${b.endToEndPerSec}/s through the subscription; ${
      Math.round(b.cpuSec / b.published * 1e6)
    } CPU-s/M)`,
    kafka.producer
      ? `ProducerPerformance ${kafka.producer.recordsPerSec}/s (acks=all, 300 B)`
      : nr("kafka-tools"),
    `${r}`,
    "≥ 0.50",
    kafka.producer ? yes(r >= 0.5) : "",
  ]);
  const f = kafka.floor;
  if (f) {
    rows.push([
      `Kafka bus latency floor at ${f.rate}/s (publish → another bus's handler)`,
      `p50/p99/p99.9 ${f.p50} / ${f.p99} / ${f.p999} ms; bus ${f.cpuPerM} CPU-s/M` +
      (f.backendCpuPerM !== undefined ? `, Kafka JVM ${f.backendCpuPerM} CPU-s/M` : ""),
      scaled?.e2e
        ? `Kafka EndToEndLatency ${scaled.e2e.p50} / ${scaled.e2e.p99} / ${scaled.e2e.p999} ms`
        : "-",
      scaled?.e2e ? `${ratio(f.p99, scaled.e2e.p99)} (p99)` : "",
      "-",
      "",
    ]);
  }
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

const md = markdown(["metric", "result", "reference (same run)", "ratio", "target", "met"], rows);
const sideBySide: string[] = [];
if (throughput) {
  sideBySide.push(
    "",
    "Embedded relay beside Centrifugo's memory engine (CPU: the server process):",
    "",
    gridTable(Object.values(throughput), [1000, 4000, 16000], [1000, 4000, 16000]),
  );
}
if (scaled) {
  sideBySide.push(
    "",
    "Scaled mode beside Centrifugo's Redis engine (CPU: relays or nodes + Kafka JVM + redis-server):",
    "",
    gridTable(Object.values(scaled.grids), [500, 1000, 2000], [100, 1000, 4000]),
  );
}
const elapsed = Math.round((performance.now() - t0) / 1000);
out.table = rows;
out.notRun = notRun;
out.durationSec = elapsed;
out.loadAvgEnd = loadAvg();
out.machineBusyCores = Math.round((machineBusySeconds() - busy0) / elapsed * 100) / 100;

// ---------------------------------------------------------------- files

const COLORS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#e377c2"];
const series: Series[] = [...Object.values(throughput ?? {}), ...Object.values(sc)]
  .filter((g) => !g.name.includes("everysec"))
  .map((g, i) => ({
    name: g.name.replace(/ \(.*\)$/, ""),
    color: COLORS[i % COLORS.length],
    points: g.atRates.map((a) => ({ rate: a.rate, p50: a.p50, p99: a.p99 })),
  }));
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
const g = CFG.grid;
const tableBlock = [
  `Run ${out.date} (${out.mode}, ${elapsed} s) on ${mach.nproc} × ${mach.model}, ${mach.memGiB} GiB, ` +
  `${mach.deno}. Load average ${out.loadAvgStart} at start, ${out.loadAvgEnd} at the end; the ` +
  `machine was busy ${out.machineBusyCores} cores on average (this run and anything else). ` +
  `Throughput: ${g.rounds} round(s), steps of ${g.stepMs / 1000} s (at least ${g.minSamples} ` +
  `messages), ${g.gens * CFG.pairsPerGen} sender→receiver pairs.`,
  "",
  md,
  ...sideBySide,
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
