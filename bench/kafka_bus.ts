/**
 * The Kafka bus alone (relay/bus/kafka/bus.ts, no relay, no sockets): publishes `count` envelopes of
 * `size` bytes keyed by 64 recipients, with at most `window` publishes in flight, and counts them
 * back through a second bus in the same process (a bus never hands its own announcements to its
 * own subscriber, as a relay pushes those itself). Prints one JSON line with the rates and the
 * process's CPU (both buses).
 *
 * Usage: deno run -A bench/kafka_bus.ts --brokers 127.0.0.1:9192 --topic T [--count 50000]
 *        [--size 900] [--window 5000]
 *        deno run -A bench/kafka_bus.ts --brokers B --delete-topics T1,T2
 *        deno run -A bench/kafka_bus.ts --brokers B --create-topic T   (12 partitions)
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { Admin } from "@platformatic/kafka";
import { KafkaBus } from "../relay/bus/kafka/bus.ts";
import { delay } from "@chat-p2p/protocol/async";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    brokers: { type: "string" },
    topic: { type: "string" },
    count: { type: "string", default: "50000" },
    size: { type: "string", default: "900" },
    window: { type: "string", default: "5000" },
    "delete-topics": { type: "string" },
    "create-topic": { type: "string" },
  },
});
const brokers = (values.brokers ?? "127.0.0.1:9192").split(",");

if (values["create-topic"] || values["delete-topics"]) {
  const admin = new Admin({ clientId: "chat-bench", bootstrapBrokers: brokers });
  if (values["create-topic"]) {
    // Created up front, so relays started next find a ready topic.
    await admin.createTopics({ topics: [values["create-topic"]], partitions: 12, replicas: 1 });
  } else {
    await admin.deleteTopics({ topics: values["delete-topics"]!.split(",") }).catch(() => {});
  }
  await admin.close();
  Deno.exit(0);
}

const count = Number(values.count);
const size = Number(values.size);
const windowSize = Number(values.window);
const quiet = { warn: () => {}, error: (m: string) => console.error(m) };
const busOptions = (name: string) => ({
  brokers,
  topic: values.topic!,
  partitions: 12,
  instanceId: `bench-${name}-${crypto.randomUUID()}`,
  logger: quiet,
});
const bus = await KafkaBus.connect(busOptions("pub"));
const sub = await KafkaBus.connect(busOptions("sub"));
let received = 0;
let tLastRecv = 0;
await sub.subscribe((_mailbox, raw) => {
  if (raw.startsWith('{"v":2,"id":"kbm')) {
    received++;
    tLastRecv = performance.now();
  }
});
const mailboxes = Array.from({ length: 64 }, (_, i) => btoa(String(i).padStart(32, "m")));
const make = (k: number, pad: string) =>
  `{"v":2,"id":"kb${k < 200 ? "w" : "m"}${String(k).padStart(10, "0")}","to":"${
    mailboxes[k % 64]
  }","body":"${pad}"}`;
const pad = "A".repeat(Math.max(0, size - make(0, "").length));
const raws = Array.from({ length: count }, (_, k) => make(k, pad));
// warm-up: connections, metadata, JIT
await Promise.all(raws.slice(0, 200).map((r, k) => bus.publish(mailboxes[k % 64], r)));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let next = 200;
let failed = 0;
const worker = async () => {
  while (next < count) {
    const k = next++;
    await bus.publish(mailboxes[k % 64], raws[k]).catch(() => failed++);
  }
};
await Promise.all(Array.from({ length: windowSize }, worker));
const tPub = performance.now();
const end = tPub + 30_000;
while (received < count - 200 && performance.now() < end) {
  await delay(10);
}
const cpu = process.cpuUsage(cpu0);
const n = count - 200;
console.log(JSON.stringify({
  published: n - failed,
  failed,
  received,
  publishPerSec: Math.round(n / ((tPub - t0) / 1000)),
  endToEndPerSec: Math.round(received / ((Math.max(tLastRecv, tPub) - t0) / 1000)),
  recordBytes: raws[0].length,
  cpuSec: (cpu.user + cpu.system) / 1e6,
  wallSec: (performance.now() - t0) / 1000,
  batches: bus.stats.batches,
}));
await bus.close();
await sub.close();
Deno.exit(0);
