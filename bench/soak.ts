/**
 * Soak: a relay under a steady mixed load for a long time (issue 12): senders at a fixed total
 * rate, recipients that stay connected and ack live pushes, recipients that come back now and
 * then to sync, live ones that reconnect, and idle readers (one open mailbox each). The relay's
 * resident memory and open descriptors are sampled every 10 s; at the end every recipient drains,
 * and the run reports how many accepted envelopes were lost and how many came twice.
 *
 * Not part of `deno task test`. Usage:
 *   deno run -A bench/soak.ts [--mode embedded|scaled] [--minutes 30] [--rate 100] [--idle 200]
 *                             [--live 40] [--syncing 40] [--senders 20]
 * `scaled` runs the relay on Kafka and Redis (KAFKA_BROKERS/REDIS_URL, or scripts/services.sh).
 * Writes bench/results/soak-<mode>.json and soak-<mode>.svg and prints a summary line.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { envelope, pairBox, RawClient, type TestMailbox } from "../tests/raw_client.ts";
import { RelayProcess } from "../tests/relay_process.ts";
import { requireServices, scaledRelayEnv } from "../tests/services.ts";
import { delay } from "@chat-p2p/protocol/async";
import { fdCount, ROOT, rssKb } from "./lib/proc.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string", default: "embedded" },
    minutes: { type: "string", default: "30" },
    rate: { type: "string", default: "100" },
    idle: { type: "string", default: "200" },
    live: { type: "string", default: "40" },
    syncing: { type: "string", default: "40" },
    senders: { type: "string", default: "20" },
  },
});
const mode = values.mode === "scaled" ? "scaled" : "embedded";
const durationMs = Number(values.minutes) * 60_000;
const rate = Number(values.rate);
const SAMPLE_MS = 10_000;

const env: Record<string, string> = {
  RELAY_FRAME_RATE: "0",
  RELAY_SEND_RATE: "0",
  RELAY_MAX_CONNECTIONS_PER_IP: "0", // every client here comes from 127.0.0.1
};
if (mode === "scaled") {
  const svc = await requireServices();
  if ("skip" in svc) throw new Error(svc.skip);
  Object.assign(env, scaledRelayEnv(svc, "soak", 6));
}
await using relay = await RelayProcess.start({ env });

/** A recipient: its mailbox, what it was sent (accepted), what reached it, what it acked. */
interface Recipient {
  box: TestMailbox;
  accepted: Set<string>;
  received: Map<string, number>;
  acked: Set<string>;
  /** Ids delivered again after this recipient had acked them. */
  afterAck: number;
  socket?: RawClient;
}

const recipient = (): Recipient => {
  return {
    box: pairBox(),
    accepted: new Set(),
    received: new Map(),
    acked: new Set(),
    afterAck: 0,
  };
};
const live = Array.from({ length: Number(values.live) }, recipient);
const syncing = Array.from({ length: Number(values.syncing) }, recipient);
const everyone = [...live, ...syncing];
const counts = { sent: 0, accepted: 0, refused: 0, reconnects: 0, syncs: 0 };
let stopping = false;

/** Reads frames until the socket closes: records deliveries and acks them in small batches. */
async function receive(r: Recipient, c: RawClient, untilSynced = false): Promise<void> {
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0 || c.closeCode !== undefined) return;
    c.ack(r.box, pending);
    for (const id of pending) r.acked.add(id);
    pending = [];
  };
  for (;;) {
    let f;
    try {
      f = await c.next(undefined, untilSynced ? 60_000 : 3_600_000);
    } catch {
      return; // closed
    }
    if (f.type === "deliver") {
      const id = f.envelope.id as string;
      if (r.acked.has(id)) r.afterAck++;
      r.received.set(id, (r.received.get(id) ?? 0) + 1);
      pending.push(id);
      if (pending.length >= 50) flush();
      else queueMicrotask(flush);
    } else if (f.type === "synced" && untilSynced) {
      flush();
      c.send({ v: 2, type: "ping", nonce: "acks-done" });
      await c.next("pong", 60_000).catch(() => {});
      return;
    }
  }
}

async function connectLive(r: Recipient): Promise<void> {
  r.socket = await RawClient.reader(relay.url, r.box);
  const c = r.socket;
  receive(r, c).finally(() => {
    if (!stopping && r.socket === c) connectLive(r).catch(() => {});
  });
}

async function syncOnce(r: Recipient): Promise<void> {
  const c = await RawClient.connect(relay.url);
  try {
    await c.open(r.box);
    await receive(r, c, true);
    counts.syncs++;
  } finally {
    await c.close();
  }
}

async function sender(share: number): Promise<void> {
  const c = await RawClient.connect(relay.url);
  const answers = new Map<string, Recipient>();
  (async () => {
    for (;;) {
      const f = await c.next(undefined, 3_600_000).catch(() => undefined);
      if (!f) return;
      const to = f.id ? answers.get(f.id) : undefined;
      if (!to) continue;
      answers.delete(f.id);
      if (f.type === "accepted") {
        to.accepted.add(f.id);
        counts.accepted++;
      } else if (f.type === "error") counts.refused++;
    }
  })();
  const gapMs = 1000 / share;
  for (let next = performance.now(); !stopping; next += gapMs) {
    const to = everyone[Math.floor(Math.random() * everyone.length)];
    const e = envelope(to.box);
    answers.set(e.id, to);
    c.sendEnvelope(e);
    counts.sent++;
    await delay(Math.max(0, next + gapMs - performance.now()));
  }
  await delay(3000); // the last answers
  await c.close();
}

// Idle sockets and live recipients first, then the load.
const idle: RawClient[] = [];
for (let i = 0; i < Number(values.idle); i++) {
  idle.push(await RawClient.reader(relay.url, pairBox()));
}
for (const r of live) await connectLive(r);
// Syncing recipients open their mailboxes once, so sends to them are taken from the start.
for (const r of syncing) await RawClient.register(relay.url, r.box);
const t0 = performance.now();
const samples: Array<
  { atSec: number; rssMb: number; fds: number; accepted: number; refused: number }
> = [];
const sample = () =>
  samples.push({
    atSec: Math.round((performance.now() - t0) / 1000),
    rssMb: Math.round(rssKb(relay.pid) / 1024 * 10) / 10,
    fds: fdCount(relay.pid),
    accepted: counts.accepted,
    refused: counts.refused,
  });
sample();
const sampler = setInterval(sample, SAMPLE_MS);
const nSenders = Number(values.senders);
const senders = Array.from({ length: nSenders }, () => sender(rate / nSenders));
// Syncing recipients come back every 20-60 s; a live one reconnects every 1-3 min.
const churn = (async () => {
  while (!stopping) {
    await delay(1000);
    for (const r of syncing) {
      if (Math.random() < 1 / 40) syncOnce(r).catch(() => {});
    }
    const r = live[Math.floor(Math.random() * live.length)];
    if (Math.random() < live.length / 120 && r.socket) {
      counts.reconnects++;
      await r.socket.close(); // receive() ends and connectLive() reconnects
    }
  }
})();
await delay(durationMs);
stopping = true;
await Promise.all(senders);
await churn;
clearInterval(sampler);
sample();
for (const r of live) await r.socket?.close();
for (const c of idle) await c.close();
await delay(1000);
// Final drain: everything accepted must now be in the recipients' hands exactly once.
for (const r of everyone) await syncOnce(r);

let lost = 0, twice = 0, afterAck = 0, received = 0;
for (const r of everyone) {
  for (const id of r.accepted) if (!r.received.has(id)) lost++;
  for (const n of r.received.values()) if (n > 1) twice++;
  afterAck += r.afterAck;
  received += r.received.size;
}
const rss = samples.map((s) => s.rssMb);
const result = {
  mode,
  minutes: Number(values.minutes),
  rate_per_s: rate,
  idle_sockets: Number(values.idle),
  live_recipients: live.length,
  syncing_recipients: syncing.length,
  ...counts,
  received_unique: received,
  lost,
  delivered_twice: twice,
  delivered_again_after_ack: afterAck,
  rss_mb: { first: rss[0], min: Math.min(...rss), max: Math.max(...rss), last: rss.at(-1) },
  fds: {
    first: samples[0].fds,
    max: Math.max(...samples.map((s) => s.fds)),
    last: samples.at(-1)!.fds,
  },
  relay_errors: relay.logs.filter((l) => /"level":"error"/.test(l)).length,
  samples,
};
await Deno.writeTextFile(
  join(ROOT, "bench", "results", `soak-${mode}.json`),
  JSON.stringify(result, null, 2) + "\n",
);
await Deno.writeTextFile(join(ROOT, "bench", "results", `soak-${mode}.svg`), soakChart(result));
const { samples: _s, ...summary } = result;
console.log(JSON.stringify(summary));

/** Resident memory (left axis) and open descriptors (right axis) over the run, as an SVG. */
function soakChart(r: typeof result): string {
  const W = 820, H = 420, L = 70, R = 70, T = 40, B = 50;
  const xs = r.samples.map((s) => s.atSec);
  const xMax = Math.max(60, ...xs);
  const mbMax = Math.ceil(Math.max(...r.samples.map((s) => s.rssMb)) / 50) * 50 || 50;
  const fdMax = Math.ceil(Math.max(...r.samples.map((s) => s.fds)) / 100) * 100 || 100;
  const x = (v: number) => L + (v / xMax) * (W - L - R);
  const y = (v: number, max: number) => H - B - (v / max) * (H - T - B);
  const path = (pick: (s: typeof r.samples[0]) => number, max: number) =>
    r.samples.map((s, i) =>
      `${i ? "L" : "M"}${x(s.atSec).toFixed(1)},${y(pick(s), max).toFixed(1)}`
    )
      .join(" ");
  const ticks = (n: number, max: number, fmt: (v: number) => string, side: "l" | "r") =>
    Array.from({ length: n + 1 }, (_, i) => {
      const v = (max / n) * i;
      const tx = side === "l" ? L - 8 : W - R + 8;
      return `<text x="${tx}" y="${y(v, max) + 4}" text-anchor="${
        side === "l" ? "end" : "start"
      }">${fmt(v)}</text>` +
        (side === "l"
          ? `<line x1="${L}" x2="${W - R}" y1="${y(v, max)}" y2="${y(v, max)}" stroke="#eee"/>`
          : "");
    }).join("");
  const minutes = Array.from({ length: 7 }, (_, i) => Math.round((xMax / 6) * i));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${
    W / 2
  }" y="22" text-anchor="middle" font-size="14">soak, ${r.mode}: ${r.rate_per_s} msg/s, ${r.idle_sockets} idle sockets, ${r.minutes} min</text>
${ticks(5, mbMax, (v) => `${v} MB`, "l")}${ticks(5, fdMax, (v) => `${v}`, "r")}
${
    minutes.map((m) =>
      `<text x="${x(m)}" y="${H - B + 18}" text-anchor="middle">${
        (m / 60).toFixed(m % 60 ? 1 : 0)
      } min</text>`
    ).join("")
  }
<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#999"/>
<path d="${path((s) => s.rssMb, mbMax)}" fill="none" stroke="#1f77b4" stroke-width="2"/>
<path d="${
    path((s) => s.fds, fdMax)
  }" fill="none" stroke="#ff7f0e" stroke-width="2" stroke-dasharray="5,3"/>
<text x="${L + 10}" y="${T + 12}" fill="#1f77b4">relay RSS (MB, left)</text>
<text x="${L + 170}" y="${T + 12}" fill="#ff7f0e">open descriptors (right)</text>
</svg>
`;
}
