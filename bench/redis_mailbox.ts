/**
 * The Redis mailbox alone (relay/mailbox/redis.ts, no relay, no sockets): puts ~300-byte v2
 * envelopes into 100 registered pair mailboxes at a constant open-loop rate and acks each one
 * 5 ms after its put, as live recipients do. Prints one JSON line: put latency p50/p99/p99.9 (ms), this process's and
 * redis-server's CPU-seconds per million envelopes (put + ack).
 *
 * Usage: deno run -A bench/redis_mailbox.ts --redis redis://127.0.0.1:6390 [--rate 1000]
 *        [--seconds 10] [--redis-pid PID] [--impl path/to/redis.ts]
 *
 * `--impl` loads the adapter from another checkout (before/after of a change, alternated by the
 * caller). `--redis-pid` defaults to the pid file under CHAT_SERVICES_DIR.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Mailbox } from "../relay/ports/mailbox.ts";
import { Hist } from "./lib/hist.ts";
import { cpuSeconds, ROOT } from "./lib/proc.ts";
import { delay } from "@chat-p2p/protocol/async";
import { servicePid } from "../tests/services.ts";

const { values: o } = parseArgs({
  args: Deno.args,
  options: {
    redis: { type: "string", default: "redis://127.0.0.1:6390" },
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    "redis-pid": { type: "string" },
    impl: { type: "string", default: join(ROOT, "relay/mailbox/redis.ts") },
  },
});
const redisPid = o["redis-pid"] ? Number(o["redis-pid"]) : servicePid("redis");
if (!redisPid) throw new Error("no --redis-pid, and scripts/services.sh runs no Redis");
const { RedisMailbox } = await import(pathToFileURL(resolve(o.impl)).href);
const prefix = `bench-mb-${Date.now().toString(36)}:`;
const mb: Mailbox = await RedisMailbox.connect(o.redis, undefined, { prefix });

const rate = Number(o.rate), n = Math.round(rate * Number(o.seconds));
const boxes = Array.from({ length: 100 }, (_, i) => btoa(String(i).padStart(32, "b")));
// v2-shaped envelopes of ~300 bytes (the size docs/SERVICES.md's figures were measured at), to
// pair mailboxes registered once, as a reader's open does.
const pad = "A".repeat(254);
const raw = (id: string) => `{"v":2,"id":"${id}","to":"x","body":"${pad}"}`;
// An adapter from before protocol v2 (--impl) has no registration.
for (const box of boxes) await mb.register?.(box, "pair");
let hist = new Hist();
let failed = 0;
const one = async (k: number, due: number) => {
  const id = `rm${String(k).padStart(10, "0")}`, box = boxes[k % 100];
  try {
    await mb.put(box, { id, raw: raw(id) });
    hist.add(Math.max(1, (performance.now() - due) * 1000));
    await delay(5);
    await mb.ack(box, [id]);
  } catch {
    failed++;
  }
};
// Warm-up: connection, script load, JIT.
await Promise.all(Array.from({ length: 200 }, (_, k) => one(n + k, performance.now())));
hist = new Hist();
const r0 = cpuSeconds(redisPid), c0 = process.cpuUsage();
const t0 = performance.now() + 1, interval = 1000 / rate;
const pending: Promise<void>[] = [];
await new Promise<void>((res) => {
  let k = 0;
  const tick = () => {
    const upTo = Math.min(n, Math.floor((performance.now() - t0) / interval) + 1);
    for (; k < upTo; k++) {
      const due = t0 + k * interval;
      pending.push(one(k, due));
    }
    if (k >= n) res();
    else setTimeout(tick, 1);
  };
  setTimeout(tick, 0);
});
await Promise.all(pending);
const c = process.cpuUsage(c0), rcpu = cpuSeconds(redisPid) - r0;
const s = hist.summaryMs();
console.log(JSON.stringify({
  rate,
  puts: n,
  failed,
  putP50: s.p50,
  putP99: s.p99,
  putP999: s.p999,
  clientCpuPerM: Math.round((c.user + c.system) / n),
  redisCpuPerM: Math.round(rcpu / n * 1e6),
}));
await mb.close();
Deno.exit(0);
