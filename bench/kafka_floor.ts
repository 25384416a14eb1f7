/**
 * The latency floor of the Kafka bus alone: one bus publishes (like the sender's relay), another
 * in the same process subscribes (like the recipient's relay); announcements of ~300 bytes for
 * 100 mailboxes at a constant open-loop rate; latency = delivered − intended publish time. Prints
 * one JSON line: p50/p99/p99.9 (ms) and this process's CPU-seconds per million announcements.
 *
 * Usage: deno run -A bench/kafka_floor.ts --brokers B --topic T
 *        [--rate 1000] [--seconds 10] [--max-wait 500] [--min-bytes 1] [--linger 0]
 *        [--partitions N]   (when the topic is created here; default: the relay's)
 *        [--backend-pids PID,PID]   (their CPU over the window is reported too: the Kafka JVM)
 *
 * `--max-wait`, `--min-bytes` and `--linger` are the bus's latency knobs (KafkaBusTuning); the
 * defaults are the relay's. The kafkajs client was measured the same way before it was replaced
 * (docs/SERVICES.md).
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { KafkaBus, type KafkaBusTuning } from "../relay/bus/kafka/bus.ts";
import { Hist } from "./lib/hist.ts";
import { cpuSeconds } from "./lib/proc.ts";
import { delay } from "@chat-p2p/protocol/async";

const { values: o } = parseArgs({
  args: Deno.args,
  options: {
    brokers: { type: "string", default: "127.0.0.1:9192" },
    topic: { type: "string" },
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    "max-wait": { type: "string" },
    "min-bytes": { type: "string" },
    linger: { type: "string" },
    partitions: { type: "string" },
    "backend-pids": { type: "string", default: "" },
  },
});
const brokers = o.brokers.split(",");
const topic = o.topic ?? `bench-floor-${Date.now().toString(36)}`;
const quiet = { warn: () => {}, error: (m: string) => console.error(m) };
const tuning: KafkaBusTuning = {
  ...(o["max-wait"] ? { maxWaitTimeMs: Number(o["max-wait"]) } : {}),
  ...(o["min-bytes"] ? { minBytes: Number(o["min-bytes"]) } : {}),
  ...(o.linger ? { lingerMs: Number(o.linger) } : {}),
};
const connect = (i: number) =>
  KafkaBus.connect(
    {
      brokers,
      topic,
      ...(o.partitions ? { partitions: Number(o.partitions) } : {}),
      instanceId: `floor-${i}-${topic}`,
      logger: quiet,
    },
    tuning,
  );
const pub = await connect(0);
const sub = await connect(1);

const rate = Number(o.rate), n = Math.round(rate * Number(o.seconds));
const mailboxes = Array.from({ length: 100 }, (_, i) => btoa(String(i).padStart(32, "m")));
// v2 envelopes, ~300 bytes (the size the figures in docs/SERVICES.md were measured at).
const raw = (k: number) =>
  `{"v":2,"id":"fl${String(k).padStart(10, "0")}","to":"${mailboxes[k % 100]}",` +
  `"body":"${"A".repeat(211)}"}`;
const due = new Float64Array(n);
const lat = new Float32Array(n);
const hist = new Hist();
let got = 0, warm = 0;
await sub.subscribe((_mb, r) => {
  const now = performance.now();
  if (r.startsWith('{"v":2,"id":"wu')) return void warm++;
  const k = Number(r.slice(15, 25));
  lat[k] = now - due[k];
  hist.add(Math.max(1, lat[k] * 1000));
  got++;
});
// Warm-up: connections, fetch sessions, JIT.
for (let i = 0; i < 200; i++) await pub.publish(mailboxes[i % 100], `{"v":2,"id":"wu${i}"}`);
while (warm < 200) await delay(5);

const backends = o["backend-pids"].split(",").filter(Boolean).map(Number);
const backendCpu = () => backends.reduce((a, p) => a + cpuSeconds(p), 0);
const b0 = backendCpu();
const cpu0 = process.cpuUsage();
const t0 = performance.now() + 1;
const interval = 1000 / rate;
let failed = 0;
await new Promise<void>((resolve) => {
  let k = 0;
  const tick = () => {
    const upTo = Math.min(n, Math.floor((performance.now() - t0) / interval) + 1);
    for (; k < upTo; k++) {
      due[k] = t0 + k * interval;
      pub.publish(mailboxes[k % 100], raw(k)).catch(() => failed++);
    }
    if (k >= n) resolve();
    else setTimeout(tick, 1);
  };
  setTimeout(tick, 0);
});
const end = performance.now() + 10_000;
while (got + failed < n && performance.now() < end) await delay(5);
const cpu = process.cpuUsage(cpu0);
const bcpu = backendCpu() - b0;
const s = hist.summaryMs();
// When the slowest 1% were due (500 ms slots, busiest first): a periodic stall shows as slots
// at a regular spacing.
const cut = [...lat].sort((a, b) => a - b)[Math.floor(n * 0.99)];
const slots = new Map<number, number>();
lat.forEach((l, k) => {
  if (l >= cut) {
    slots.set(
      Math.floor(k * interval / 500) * 500,
      (slots.get(Math.floor(k * interval / 500) * 500) ?? 0) + 1,
    );
  }
});
console.log(JSON.stringify({
  rate,
  tuning,
  sent: n,
  delivered: got,
  failed,
  p50: s.p50,
  p99: s.p99,
  p999: s.p999,
  max: s.max,
  cpuPerM: Math.round((cpu.user + cpu.system) / 1e6 / Math.max(1, got) * 1e6),
  slowSlots: [...slots].sort((a, b) => a[0] - b[0]),
  ...(backends.length ? { backendCpuPerM: Math.round(bcpu / Math.max(1, got) * 1e6) } : {}),
}));
await pub.close();
await sub.close();
Deno.exit(0);
