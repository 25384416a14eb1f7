/**
 * `deno run -A bench/stalls.ts [--target relay|forwarder] [--relay DIR] [--rate 4000]
 * [--steps 2] [--step-ms 12000] [--pairs 100]`: where a server's latency tail comes from. Runs the
 * embedded relay of checkout DIR (default: this one) or the bare Deno forwarder under the bench's
 * generators at one rate, with bench/lib/stall_monitor.ts beside it and V8's
 * `--trace-gc-nvp`, and prints for each step its p50/p99 and the 500 ms slots of its slowest 1%,
 * the event-loop stalls over 6 ms (how many, in all, and how much of that the main thread spent
 * on a core against waiting for one), and the main thread's garbage collections (scavenges and
 * mark-compacts: how many, median and longest pause, in all). bench/README.md, finding 15.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { delay } from "@chat-p2p/protocol/async";
import { BENCH_RELAY_ENV, ROOT, startServer } from "./lib/proc.ts";
import { Fleet, type Target } from "./scenarios/throughput.ts";

const { values: o } = parseArgs({
  args: Deno.args,
  options: {
    target: { type: "string", default: "relay" },
    relay: { type: "string", default: ROOT },
    rate: { type: "string", default: "4000" },
    steps: { type: "string", default: "2" },
    "step-ms": { type: "string", default: "12000" },
    pairs: { type: "string", default: "100" },
  },
});
if (!["relay", "forwarder"].includes(o.target)) {
  console.error("usage: deno run -A bench/stalls.ts [--target relay|forwarder] [--relay DIR] ...");
  Deno.exit(2);
}
const dataDir = await Deno.makeTempDir({ prefix: "chat-stalls-" });
const [script, args] = o.target === "relay"
  ? [
    join(resolve(o.relay), "relay/main.ts"),
    ["--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir],
  ]
  : [join(ROOT, "bench/bare_forwarder.ts"), ["--port", "0"]];

/** Lines of the server's stdout besides its log: stalls and V8's GC trace. */
const lines: Array<string> = [];
const server = await startServer({
  name: o.target,
  script: "bench/lib/stall_monitor.ts",
  args,
  env: { ...BENCH_RELAY_ENV, STALL_MONITOR_SCRIPT: script, DENO_V8_FLAGS: "--trace-gc-nvp" },
  onLine: (line) => lines.push(line),
});
/** Wall-clock ms at the server's performance.now() 0 (its GC lines' clock). */
const clock = (() => {
  const c = lines.find((l) => l.startsWith("CLOCK "))?.split(" ").map(Number);
  return c ? c[1] - c[2] : 0;
})();
const { url } = server;
const target: Target = { name: o.target, senderUrl: url, receiverUrl: url, pids: [server.pid] };
const fleet = new Fleet(target, Number(o.pairs));
const ms = (x: number) => Math.round(x * 100) / 100;
/** The fields of a `--trace-gc-nvp` line used here. */
interface GcEvent {
  gc: string;
  pause: number;
}
try {
  await fleet.grow(2);
  await fleet.step(1000, 3000, 1500, 1e9); // warm-up
  await fleet.quiet();
  for (let n = 1; n <= Number(o.steps); n++) {
    const from = lines.length;
    const t0 = Date.now();
    const s = await fleet.step(Number(o.rate), Number(o["step-ms"]), 2000, 20);
    const t1 = Date.now();
    await delay(500); // V8 writes its GC lines through a buffer: let the last ones come
    const mine = lines.slice(from);
    const stalls = mine.filter((l) => l.startsWith("STALL ")).map((l) => l.split(" ").map(Number))
      .filter(([, , at]) => at >= t0 && at <= t1);
    const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
    console.log(
      `step ${n}, ${o.rate}/s: p50 ${s.p50} p99 ${s.p99} ms, loss ${s.loss}, ` +
        `${s.relayCpuPerM} CPU-s per M, generators' lag p99 ${s.genLagP99} ms, ` +
        `slowest 1% in slots ${JSON.stringify(s.slowSlots.slice(0, 4))}`,
    );
    // V8 numbers isolates in the order they start: 0 is the main thread's (the SQLite writer's
    // worker has its own).
    const mainGcs = mine.map((l) => /^\[\d+:0x[0-9a-f]+:0\]\s+([\d.]+) ms: GC: (\{.*\})$/.exec(l))
      .filter((m) => m !== null)
      .map((m) => ({ at: Number(m[1]), ...JSON.parse(m[2]) as GcEvent }))
      .filter((g) => g.at + clock >= t0 && g.at + clock <= t1);
    /** The main thread's collections that ended within a stall ending at `end` (its clock). */
    const gcIn = (d: number, end: number) =>
      mainGcs.filter((g) => g.at >= end - d - 2 && g.at <= end + 2)
        .map((g) => `${g.gc} ${ms(g.pause)}`);
    const top = [...stalls].sort((a, b) => b[1] - a[1]).slice(0, 5);
    console.log(
      `  stalls over 6 ms: ${stalls.length}, ${ms(sum(stalls.map((x) => x[1])))} ms in all: ` +
        `${ms(sum(stalls.map((x) => x[3])))} ms on a core, ${
          ms(sum(stalls.map((x) => x[4])))
        } ms waiting for one; longest ${
          top.map(([, d, at, run, wait, end]) => {
            const g = gcIn(d, end);
            return `${d} (${run} + ${wait}${g.length ? `; GC ${g.join(", ")}` : ""}) at +${
              at - t0
            }`;
          }).join(", ")
        }`,
    );
    const pauses = new Map<string, number[]>();
    for (const g of mainGcs) pauses.set(g.gc, [...pauses.get(g.gc) ?? [], g.pause]);
    for (const [kind, p] of pauses) {
      p.sort((a, b) => a - b);
      console.log(
        `  main thread ${kind === "s" ? "scavenges" : kind === "mc" ? "mark-compacts" : kind}: ` +
          `${p.length}, median ${ms(p[p.length >> 1])} ms, longest ${ms(p[p.length - 1])} ms, ` +
          `${ms(sum(p))} ms in all`,
      );
    }
    await fleet.quiet();
  }
} finally {
  await fleet.close();
  await server.stop();
  await Deno.remove(dataDir, { recursive: true });
}
