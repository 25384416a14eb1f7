/**
 * `deno run -A bench/ab.ts --a <checkout> --b <checkout> [--mode embedded|scaled|scaled2]
 * [--rates 2000,4000] [--rounds 3] [--step-ms 10000] [--env-a K=V …] [--env-b K=V …]`: before/after
 * of a relay change (or of a setting: the same checkout twice with different environment). Runs
 * the relays of each checkout in turn (A, B, A, B…), freshly started each time, under the same
 * generators at fixed rates, and prints p50/p99, loss and CPU-seconds per million messages (the
 * relays, and in scaled mode Kafka + Redis too, in all and per process) for each, so a change is
 * judged on alternating runs of the same machine, not on two full benches minutes apart.
 *
 * `--transport-a/-b native` makes that side's generators use Deno's WebSocket (Nagle on) instead
 * of bench/lib/ws.ts.
 *
 * `--mode scaled` runs one relay on Kafka + Redis, `scaled2` two (senders on the first, receivers
 * on the second); both need KAFKA_BROKERS and REDIS_URL (CHAT_SERVICES_DIR for the services' CPU).
 *
 * `--mode connections [--sockets 5000] [--settle-ms 40000]`: instead of rates, the embedded relay
 * under the bench's connections ramp (4 generators, 16 handshakes in flight each), printing KiB of
 * RSS per idle socket at every settle sample and the handshake p50/p99.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { stopAll } from "./lib/proc.ts";
import { Fleet, type StepOut, type Target } from "./scenarios/throughput.ts";
import { deleteTopics } from "./scenarios/kafka.ts";
import type { TargetSpec } from "./scenarios/grid.ts";
import { embeddedTarget, scaledTarget, servicesPids } from "./lib/targets.ts";
import { connectionRamp } from "./scenarios/connections.ts";

const { values: o } = parseArgs({
  args: Deno.args,
  options: {
    a: { type: "string" },
    b: { type: "string" },
    mode: { type: "string", default: "embedded" },
    rates: { type: "string", default: "2000,4000,6000,8000" },
    rounds: { type: "string", default: "2" },
    "step-ms": { type: "string", default: "10000" },
    pairs: { type: "string", default: "50" },
    "env-a": { type: "string", multiple: true, default: [] },
    "env-b": { type: "string", multiple: true, default: [] },
    "transport-a": { type: "string", default: "nodelay" },
    "transport-b": { type: "string", default: "nodelay" },
    sockets: { type: "string", default: "5000" },
    "settle-ms": { type: "string", default: "40000" },
  },
});
if (!o.a || !o.b || !["embedded", "scaled", "scaled2", "connections"].includes(o.mode)) {
  console.error(
    "usage: deno run -A bench/ab.ts --a DIR --b DIR [--mode embedded|scaled|scaled2|connections] " +
      "[--rates r1,r2] [--rounds N] [--step-ms MS] [--env-a K=V] [--env-b K=V] " +
      "[--sockets N] [--settle-ms MS]",
  );
  Deno.exit(2);
}
const rates = o.rates.split(",").map(Number);
const work = await Deno.makeTempDir({ prefix: "chat-ab-" });
const envOf = (kvs: string[]) => Object.fromEntries(kvs.map((kv) => kv.split(/=(.*)/s, 2)));
const brokers = Deno.env.get("KAFKA_BROKERS"), redisUrl = Deno.env.get("REDIS_URL");
const scaled = o.mode === "scaled" || o.mode === "scaled2";
if (scaled && !(brokers && redisUrl)) {
  console.error(`--mode ${o.mode} needs KAFKA_BROKERS and REDIS_URL`);
  Deno.exit(2);
}
const topic = `bench-ab-${Date.now().toString(36)}`;
function spec(side: "A" | "B", dir: string, env: Record<string, string>): TargetSpec {
  const ctx = { work, relayScript: join(resolve(dir), "relay/main.ts") };
  if (!scaled) return embeddedTarget(ctx, `ab-${side}`, env);
  return scaledTarget(ctx, {
    name: `ab-${side}`,
    relays: o.mode === "scaled2" ? 2 : 1,
    services: { brokers: brokers!, redisUrl: redisUrl!, backendPids: servicesPids() },
    topic: `${topic}-${side}`,
    env,
  });
}
/** Names of the processes `StepOut.cpuPerMEach` lists, for the per-step line. */
function processNames(target: Target): string[] {
  const relays = target.pids.map((_, i, all) =>
    all.length === 1 ? "relay" : i === 0 ? "senders' relay" : "readers' relay"
  );
  const backends = (target.backendPids ?? []).map((pid) => {
    try {
      const comm = Deno.readTextFileSync(`/proc/${pid}/comm`).trim();
      return comm === "java" ? "Kafka JVM" : comm;
    } catch {
      return `pid ${pid}`;
    }
  });
  return [...relays, ...backends];
}
const sides = [["A", spec("A", o.a, envOf(o["env-a"]))], ["B", spec("B", o.b, envOf(o["env-b"]))]];
const rows: Array<{ side: string; round: number; s: StepOut }> = [];
for (let round = 1; round <= Number(o.rounds); round++) {
  for (const [side, sp] of sides as Array<["A" | "B", TargetSpec]>) {
    const { target, stop } = await sp.start();
    if (o.mode === "connections") {
      try {
        await idleSockets(side, round, target);
      } finally {
        await stop();
        await stopAll(3000);
      }
      continue;
    }
    target.transport = (side === "A" ? o["transport-a"] : o["transport-b"]) as "native" | "nodelay";
    const fleet = new Fleet(target, Number(o.pairs));
    const names = processNames(target);
    try {
      await fleet.grow(2);
      await fleet.step(Math.min(1000, rates[0]), 3000, 1500, 1e9); // warm-up
      await fleet.quiet();
      for (const rate of rates) {
        const s = await fleet.step(rate, Number(o["step-ms"]), 2000, 20);
        rows.push({ side, round, s });
        console.error(
          `${side}#${round} ${rate}/s: p50 ${s.p50} p99 ${s.p99} p99.9 ${s.p999} ms, loss ${s.loss}, ` +
            `server ${s.relayCpuPerM} CPU-s/M, with backends ${s.totalCpuPerM}` +
            (names.length > 1
              ? ` (${s.cpuPerMEach.map((c, i) => `${names[i]} ${c}`).join(", ")})`
              : "") +
            `, gen lag p99 ` +
            `${s.genLagP99} ms, load ${Deno.loadavg()[0]}` +
            (s.slowSlots.length
              ? `, slowest 1% at ${JSON.stringify(s.slowSlots.slice(0, 4))}`
              : ""),
        );
        await fleet.quiet();
      }
    } finally {
      await fleet.close();
      await stop();
      await stopAll(3000);
    }
  }
}
if (o.mode !== "connections") printTable();
if (brokers && scaled) await deleteTopics(brokers, [`${topic}-A`, `${topic}-B`]);
await Deno.remove(work, { recursive: true });

/** One connections ramp against `target`, and its RSS per socket as it idles. */
async function idleSockets(side: string, round: number, target: Target): Promise<void> {
  const c = await connectionRamp(
    { pid: target.pids[0], url: target.senderUrl },
    `ab-${side}`,
    Number(o.sockets),
    4,
    16,
    Number(o["settle-ms"]),
    target.secret,
  );
  const samples = c.settleSamples.map((x) => `${x.atSec}s ${x.kbPerSocket}`).join(", ");
  console.log(
    `${side}#${round}: ${c.connected} up; KiB/socket ${c.kbPerSocket} after ${c.settleSec} s ` +
      `(${c.kbPerSocketAfterRamp} after the ramp; ${samples}); handshake p50/p99 ` +
      `${c.handshake.p50}/${c.handshake.p99} ms`,
  );
}

function printTable(): void {
  console.log(
    "| rate | side | p50 ms (each round) | p99 ms (each round) | CPU-s per M msgs (server) | " +
      "CPU-s per M (with backends) |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const rate of rates) {
    for (const side of ["A", "B"]) {
      const mine = rows.filter((x) => x.side === side && x.s.offered === rate);
      const col = (f: (s: StepOut) => number) => mine.map((x) => f(x.s)).join(" / ");
      console.log(
        `| ${rate} | ${side} | ${col((s) => s.p50)} | ${col((s) => s.p99)} | ${
          col((s) => s.relayCpuPerM)
        } | ${col((s) => s.totalCpuPerM)} |`,
      );
    }
  }
}
