/**
 * Sustained 1:1 throughput and latency under load: sender/receiver pairs spread over several
 * generator processes, open-loop constant rate, on a fixed grid of rates, several rounds with the
 * targets interleaved (see {@linkcode grid}).
 *
 * @module
 */
import { all, Gen, type Reply } from "../lib/gen.ts";
import { Hist } from "../lib/hist.ts";
import { cpuSeconds, machineBusySeconds, rssKb, sleep } from "../lib/proc.ts";

/** What the load is aimed at. */
export interface Target {
  name: string;
  senderUrl: string;
  receiverUrl: string;
  /** Server processes whose CPU and RSS are charged to this target. */
  pids: number[];
  /** Further processes whose CPU is reported beside it (Kafka, Redis). */
  backendPids?: number[];
  /** What the generators speak (default chat-p2p). */
  protocol?: "chat" | "centrifugo";
  /** Centrifugo: the HMAC secret connection tokens are signed with. */
  secret?: string;
  /** The generators' sockets (default "nodelay", bench/lib/ws.ts). */
  transport?: "nodelay" | "native";
}

/** One constant-rate step. */
export interface StepOut {
  offered: number;
  achieved: number;
  sent: number;
  delivered: number;
  loss: number;
  errors: number;
  errorCodes: Record<string, number>;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  gens: number;
  /** Highest CPU fraction of one generator process over the send window (1 = one core). */
  genCpuMax: number;
  relayCpuSec: number;
  /** Server CPU-seconds per million delivered messages. */
  relayCpuPerM: number;
  backendCpuSec?: number;
  /** Backends' (Kafka, Redis) CPU-seconds per million delivered messages. */
  backendCpuPerM?: number;
  /** Server and backends together, CPU-seconds per million delivered messages. */
  totalCpuPerM: number;
  /**
   * The same per process, in the order of `Target.pids` then `Target.backendPids` (e.g. the
   * senders' relay, the readers' relay, redis-server, the Kafka JVM): where the total goes.
   */
  cpuPerMEach: number[];
  /** How late the generators sent, p99 (ms): part of every latency, for every target alike. */
  genLagP99: number;
  /** When the slowest 1% were due, [ms into the step, count], busiest 500 ms slots first. */
  slowSlots: Array<[number, number]>;
  /**
   * CPU-seconds the rest of the machine (not this target, its backends or the generators) used
   * during the step: other work competing for the 2 cores.
   */
  otherCpuSec: number;
  relayRssMb: number;
  pass: boolean;
  why: string;
}

/** A generator fleet attached to one target. */
export class Fleet {
  gens: Gen[] = [];
  #step = 0;
  constructor(readonly target: Target, readonly pairsPerGen: number) {}

  async grow(n: number): Promise<void> {
    const fresh = Gen.startMany(n, `${this.target.name}-gen${this.gens.length}-`);
    const base = this.gens.length;
    this.gens.push(...fresh);
    await Promise.all(fresh.map((g, i) =>
      g.call("pairs", {
        protocol: this.target.protocol ?? "chat",
        transport: this.target.transport ?? "nodelay",
        secret: this.target.secret,
        senderUrl: this.target.senderUrl,
        receiverUrl: this.target.receiverUrl,
        pairs: this.pairsPerGen,
        gen: base + i + 1,
      }, 120_000)
    ));
  }

  /** Runs one step at `rate` msg/s in total. */
  async step(
    rate: number,
    durationMs: number,
    graceMs: number,
    p99LimitMs: number,
  ): Promise<StepOut> {
    const n = ++this.#step;
    const G = this.gens.length;
    await all(this.gens, "prepare", () => ({ rate: rate / G, durationMs, step: n }));
    const pids = [...this.target.pids, ...this.target.backendPids ?? []];
    const each0 = pids.map(cpuSeconds);
    const g0 = this.gens.reduce((a, g) => a + g.cpu(), 0);
    const m0 = machineBusySeconds();
    const rs = await all(this.gens, "run", () => ({ graceMs }), durationMs + graceMs + 60_000);
    const each = pids.map((p, i) => cpuSeconds(p) - each0[i]);
    const servers = this.target.pids.length;
    const cpu = each.slice(0, servers).reduce((a, c) => a + c, 0);
    const bcpu = each.slice(servers).reduce((a, c) => a + c, 0);
    const gcpu = this.gens.reduce((a, g) => a + g.cpu(), 0) - g0;
    const other = Math.max(0, machineBusySeconds() - m0 - cpu - bcpu - gcpu);
    const rss = this.target.pids.reduce((a, p) => a + rssKb(p), 0) / 1024;
    const s = summarise(rate, rs, cpu, bcpu, rss, G, p99LimitMs, this.target.backendPids?.length);
    s.otherCpuSec = Math.round(other * 100) / 100;
    s.cpuPerMEach = each.map((c) => perM(c, s.delivered));
    return s;
  }

  /** Waits until the target's processes are idle (backlog from an overloaded step drained). */
  async quiet(maxMs = 15_000): Promise<void> {
    const end = performance.now() + maxMs;
    while (performance.now() < end) {
      const c0 = this.target.pids.reduce((a, p) => a + cpuSeconds(p), 0);
      await sleep(300);
      const c1 = this.target.pids.reduce((a, p) => a + cpuSeconds(p), 0);
      if ((c1 - c0) / 0.3 < 0.1 * this.target.pids.length) return;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.gens.map((g) => g.exit()));
    this.gens = [];
  }
}

const perM = (cpu: number, n: number) => n ? Math.round(cpu / n * 1e6 * 10) / 10 : NaN;

function summarise(
  rate: number,
  rs: Reply[],
  cpu: number,
  bcpu: number,
  rssMb: number,
  G: number,
  p99LimitMs: number,
  backends?: number,
): StepOut {
  const h = new Hist();
  let sent = 0, delivered = 0, errors = 0, achieved = 0, genCpuMax = 0, genLagP99 = 0;
  const slots = new Map<number, number>();
  const errorCodes: Record<string, number> = {};
  for (const r of rs) {
    h.merge(Hist.fromJSON(r.hist));
    sent += r.sent;
    delivered += r.delivered;
    errors += r.errors;
    achieved += r.achieved;
    genCpuMax = Math.max(genCpuMax, r.cpuSendFrac);
    genLagP99 = Math.max(genLagP99, r.lagP99Ms ?? 0);
    for (const [at, n] of r.slowSlots ?? []) slots.set(at, (slots.get(at) ?? 0) + n);
    for (const [k, v] of Object.entries(r.errorCodes as Record<string, number>)) {
      errorCodes[k] = (errorCodes[k] ?? 0) + v;
    }
  }
  const s = h.summaryMs();
  const loss = sent - delivered;
  const why: string[] = [];
  if (loss > 0) why.push(`loss ${loss}`);
  if (errors > 0) why.push(`errors ${errors} ${JSON.stringify(errorCodes)}`);
  if (!(s.p99 <= p99LimitMs)) why.push(`p99 ${s.p99} ms > ${p99LimitMs}`);
  if (achieved < 0.95 * rate) why.push(`generators held only ${Math.round(achieved)}/s`);
  if (genCpuMax > 0.9) why.push(`generator CPU ${Math.round(genCpuMax * 100)}%`);
  return {
    offered: Math.round(rate),
    achieved: Math.round(achieved),
    sent,
    delivered,
    loss,
    errors,
    errorCodes,
    p50: s.p50,
    p99: s.p99,
    p999: s.p999,
    max: s.max,
    gens: G,
    genCpuMax: Math.round(genCpuMax * 100) / 100,
    relayCpuSec: Math.round(cpu * 100) / 100,
    relayCpuPerM: perM(cpu, delivered),
    ...(backends
      ? { backendCpuSec: Math.round(bcpu * 100) / 100, backendCpuPerM: perM(bcpu, delivered) }
      : {}),
    totalCpuPerM: perM(cpu + bcpu, delivered),
    cpuPerMEach: [],
    genLagP99,
    slowSlots: [...slots].sort((a, b) => b[1] - a[1]).slice(0, 6),
    otherCpuSec: 0,
    relayRssMb: Math.round(rssMb),
    pass: loss === 0 && errors === 0 && s.p99 <= p99LimitMs && achieved >= 0.95 * rate,
    why: why.join("; "),
  };
}
