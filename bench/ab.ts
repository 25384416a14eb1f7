/**
 * `deno run -A bench/ab.ts --a <checkout> --b <checkout> [--rates 2000,4000,6000] [--rounds 2]
 * [--env-a K=V …] [--env-b K=V …]`: before/after of a relay change (or of a setting: the same
 * checkout twice with different environment). Runs the embedded relay of each checkout in turn (A, B, A, B…)
 * under the same generators at fixed rates and prints p50/p99, loss and relay CPU-seconds per
 * million messages for each, so a change is judged on alternating runs of the same machine, not
 * on two full benches minutes apart.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { BENCH_RELAY_ENV, startServer, stopAll } from "./lib/proc.ts";
import { Fleet, type StepOut } from "./scenarios/throughput.ts";

const { values: o } = parseArgs({
  args: Deno.args,
  options: {
    a: { type: "string" },
    b: { type: "string" },
    rates: { type: "string", default: "2000,4000,6000,8000" },
    rounds: { type: "string", default: "2" },
    "duration-ms": { type: "string", default: "4000" },
    "env-a": { type: "string", multiple: true, default: [] },
    "env-b": { type: "string", multiple: true, default: [] },
  },
});
if (!o.a || !o.b) {
  console.error("usage: deno run -A bench/ab.ts --a DIR --b DIR [--rates r1,r2] [--rounds N]");
  Deno.exit(2);
}
const rates = o.rates.split(",").map(Number);
const work = await Deno.makeTempDir({ prefix: "chat-ab-" });
const envOf = (kvs: string[]) => Object.fromEntries(kvs.map((kv) => kv.split("=", 2)));
const extraEnv = { A: envOf(o["env-a"]), B: envOf(o["env-b"]) };
const rows: Array<{ side: string; round: number; s: StepOut }> = [];
let n = 0;
for (let round = 1; round <= Number(o.rounds); round++) {
  for (const [side, dir] of [["A", o.a], ["B", o.b]] as const) {
    const r = await startServer({
      name: `relay-${side}`,
      script: join(resolve(dir), "relay/main.ts"),
      args: ["--port", "0", "--host", "127.0.0.1", "--data-dir", join(work, `d${++n}`)],
      env: { ...BENCH_RELAY_ENV, ...extraEnv[side] },
    });
    const fleet = new Fleet({
      name: `ab-${side}`,
      senderUrl: r.url,
      receiverUrl: r.url,
      pids: [r.pid],
    }, 50);
    try {
      await fleet.grow(2);
      await fleet.step(rates[0] / 2, 1000, 500, 1e9); // warm-up
      for (const rate of rates) {
        const s = await fleet.step(rate, Number(o["duration-ms"]), 1500, 1e9);
        rows.push({ side, round, s });
        console.error(
          `${side}#${round} ${rate}/s: p50 ${s.p50} p99 ${s.p99} p99.9 ${s.p999} ms, loss ${s.loss}, ` +
            `relay ${s.relayCpuPerM} CPU-s/M, rss ${s.relayRssMb} MB`,
        );
      }
    } finally {
      await fleet.close();
      await r.stop();
      await stopAll(3000);
    }
  }
}
console.log("| rate | side | p50 ms (each round) | p99 ms (each round) | CPU-s per M msgs |");
console.log("| --- | --- | --- | --- | --- |");
for (const rate of rates) {
  for (const side of ["A", "B"]) {
    const mine = rows.filter((x) => x.side === side && x.s.offered === rate);
    const col = (f: (s: StepOut) => number) => mine.map((x) => f(x.s)).join(" / ");
    console.log(
      `| ${rate} | ${side} | ${col((s) => s.p50)} | ${col((s) => s.p99)} | ${
        col((s) => s.relayCpuPerM)
      } |`,
    );
  }
}
await Deno.remove(work, { recursive: true });
