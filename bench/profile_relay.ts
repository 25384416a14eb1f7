/**
 * `deno run -A bench/profile_relay.ts [--mode embedded|scaled|scaled2] [--rate 1000] [--ms 10000]
 * [--env K=V …] [--out bench/results]`: CPU profile of relays under a constant load (the same
 * generators as the bench), summarised by bench/profile_summary.ts; with --mode scaled also the
 * CPU of the Kafka JVM and redis-server over the window (KAFKA_BROKERS, REDIS_URL and
 * CHAT_SERVICES_DIR as for bench/ab.ts).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { cpuSeconds, ROOT, type Server } from "./lib/proc.ts";
import { servicesPids, startRelay } from "./lib/targets.ts";
import { profileRelay } from "./scenarios/profile.ts";
import { deleteTopics } from "./scenarios/kafka.ts";

const { values: o } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string", default: "scaled" },
    rate: { type: "string", default: "1000" },
    ms: { type: "string", default: "10000" },
    env: { type: "string", multiple: true, default: [] },
    out: { type: "string", default: join(ROOT, "bench", "results") },
  },
});
const work = await Deno.makeTempDir({ prefix: "chat-prof-" });
const ctx = { work, relayScript: join(ROOT, "relay/main.ts") };
const extra = Object.fromEntries(o.env.map((kv) => kv.split(/=(.*)/s, 2)));
const brokers = Deno.env.get("KAFKA_BROKERS"), redisUrl = Deno.env.get("REDIS_URL");
const topic = `bench-prof-${Date.now().toString(36)}`;
const scaled = o.mode !== "embedded";
if (scaled && !(brokers && redisUrl)) {
  throw new Error(`--mode ${o.mode} needs KAFKA_BROKERS and REDIS_URL`);
}
const backends = scaled ? servicesPids() ?? [] : [];
const b0 = backends.map(cpuSeconds);
const p = await profileRelay(
  `${o.mode}-${o.rate}`,
  async (dir) => {
    const env = (i: number): Record<string, string> =>
      scaled
        ? {
          KAFKA_BROKERS: brokers!,
          REDIS_URL: redisUrl!,
          KAFKA_TOPIC: topic,
          RELAY_INSTANCE_ID: `${topic}-${i}`,
          ...extra,
        }
        : extra;
    const out: Server[] = [await startRelay(ctx, "relay-prof-a", env(0), dir)];
    if (o.mode === "scaled2") out.push(await startRelay(ctx, "relay-prof-b", env(1), dir));
    return out;
  },
  Number(o.rate),
  Number(o.ms),
  o.out,
  50,
);
console.log(p.text);
const s = p.step;
console.log(
  `step: ${s.offered}/s p50 ${s.p50} p99 ${s.p99} ms, relays ${s.relayCpuPerM} CPU-s/M` +
    (backends.length
      ? `; Kafka JVM + redis-server over the whole run ${
        backends.map((pid, i) => `${pid}: ${(cpuSeconds(pid) - b0[i]).toFixed(2)} s`).join(", ")
      }`
      : ""),
);
if (scaled) await deleteTopics(brokers!, [topic]);
await Deno.remove(work, { recursive: true });
