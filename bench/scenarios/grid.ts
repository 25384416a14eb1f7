/**
 * The throughput method: every target runs the same fixed grid of rates, one constant-rate step
 * per rate, for several rounds, with the targets interleaved (round 1 A B C, round 2 C B A, ...),
 * each round on freshly started servers. A step passes with no loss, no error, p99 ≤ the limit
 * and the generators holding the rate. A target's passing rate is the highest rate that passed
 * in every round (one lucky round does not count); the range of the rounds' own maxima is shown
 * beside it. Why this and not a geometric ramp of short steps: bench/README.md, "Method".
 *
 * @module
 */
import { Fleet, type StepOut, type Target } from "./throughput.ts";

/** A target the grid can start afresh for every round. */
export interface TargetSpec {
  name: string;
  /** What it promises about an accepted message (shown in the tables). */
  promise: string;
  /** Starts the servers; `stop` stops them (and whatever else `start` started). */
  start(): Promise<{ target: Target; stop(): Promise<void> }>;
}

/** Grid parameters. */
export interface GridOptions {
  rates: number[];
  rounds: number;
  /** Step length; longer at low rates to reach `minSamples`. */
  stepMs: number;
  /** Fewest messages per step (p99 of n samples is the (n/100)-th worst). */
  minSamples: number;
  graceMs: number;
  gens: number;
  maxGens: number;
  pairsPerGen: number;
  p99LimitMs: number;
  /** A round ends at a step with loss, errors, p99 above this, or generators out of CPU. */
  hardP99Ms: number;
  log: (s: string) => void;
}

/** One target's round. */
export interface RoundOut {
  steps: StepOut[];
  /** Highest passing rate of this round (0 if none). */
  max: number;
  /** Highest rate without loss or errors, whatever the latency. */
  maxLossless: number;
  stopReason: string;
  generatorBound: boolean;
}

/** Medians over the rounds at one rate. */
export interface AtRate {
  rate: number;
  /** Rounds that ran this rate. */
  n: number;
  passed: number;
  p50: number;
  p99: number;
  p999: number;
  /** p99 of each round. */
  p99s: number[];
  relayCpuPerM: number;
  backendCpuPerM?: number;
  totalCpuPerM: number;
}

/** One target over all rounds. */
export interface GridOut {
  name: string;
  promise: string;
  rounds: RoundOut[];
  /** Highest rate that passed in every round (0 if none). */
  passEvery: number;
  /** Lowest and highest of the rounds' own maxima. */
  passRange: [number, number];
  /** Highest rate lossless in every round. */
  losslessEvery: number;
  atRates: AtRate[];
}

const median = (xs: number[]) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : Math.round((v[m - 1] + v[m]) / 2 * 100) / 100;
};

const lossless = (s: StepOut) => s.loss === 0 && s.errors === 0 && s.achieved >= 0.95 * s.offered;
const genLimited = (s: StepOut) => s.genCpuMax > 0.9 || s.achieved < 0.95 * s.offered;

async function oneRound(spec: TargetSpec, o: GridOptions, round: number): Promise<RoundOut> {
  const { target, stop } = await spec.start();
  const fleet = new Fleet(target, o.pairsPerGen);
  const steps: StepOut[] = [];
  let stopReason = "top of the grid";
  let generatorBound = false;
  try {
    await fleet.grow(o.gens);
    // Warm-up (JIT, connection pools, Kafka fetch sessions): not recorded.
    await fleet.step(
      Math.min(1000, o.rates[Math.min(1, o.rates.length - 1)]),
      3000,
      o.graceMs,
      1e9,
    );
    await fleet.quiet();
    for (let i = 0; i < o.rates.length; i++) {
      const rate = o.rates[i];
      const ms = Math.max(o.stepMs, o.minSamples / rate * 1000);
      const s = await fleet.step(rate, ms, o.graceMs, o.p99LimitMs);
      o.log(
        `  ${spec.name} #${round} ${rate}/s: ${s.pass ? "ok" : "FAIL"} p50 ${s.p50} p99 ${s.p99}` +
          ` p99.9 ${s.p999} ms, ${s.totalCpuPerM} CPU-s/M (server ${s.relayCpuPerM}), gens ${s.gens}` +
          ` cpu ${s.genCpuMax} lag-p99 ${s.genLagP99} ms, other ${s.otherCpuSec} s` +
          (s.pass ? "" : `; ${s.why}`) +
          (s.slowSlots.length ? `; slowest 1% at ${JSON.stringify(s.slowSlots.slice(0, 4))}` : ""),
      );
      await fleet.quiet();
      if (!s.pass && genLimited(s) && fleet.gens.length < o.maxGens) {
        o.log(`  generators saturated: adding one (now ${fleet.gens.length + 1}), repeating`);
        await fleet.grow(1);
        i--;
        continue;
      }
      steps.push(s);
      if (s.pass) continue;
      // A latency failure does not end the round: on a shared machine one stall fails a step,
      // and the rates above still show the curve (and the CPU per message).
      generatorBound = genLimited(s);
      if (generatorBound || !lossless(s) || !(s.p99 <= o.hardP99Ms)) {
        stopReason = s.why;
        break;
      }
    }
  } finally {
    await fleet.close();
    await stop();
  }
  const top = (ok: (s: StepOut) => boolean) =>
    Math.max(0, ...steps.filter(ok).map((s) => s.offered));
  return {
    steps,
    max: top((s) => s.pass),
    maxLossless: top(lossless),
    stopReason,
    generatorBound,
  };
}

/** Runs every target through `o.rounds` interleaved rounds of the grid. */
export async function grid(specs: TargetSpec[], o: GridOptions): Promise<GridOut[]> {
  const rounds = new Map<string, RoundOut[]>(specs.map((s) => [s.name, []]));
  for (let r = 1; r <= o.rounds; r++) {
    const order = r % 2 === 1 ? specs : [...specs].reverse();
    for (const spec of order) {
      o.log(`  -- ${spec.name}, round ${r} of ${o.rounds}`);
      rounds.get(spec.name)!.push(await oneRound(spec, o, r));
    }
  }
  return specs.map((spec) => summarise(spec, rounds.get(spec.name)!, o.rates));
}

function summarise(spec: TargetSpec, rounds: RoundOut[], rates: number[]): GridOut {
  const stepAt = (r: RoundOut, rate: number) => r.steps.find((s) => s.offered === rate);
  const every = (ok: (s: StepOut) => boolean) =>
    Math.max(
      0,
      ...rates.filter((rate) =>
        rounds.every((r) => {
          const s = stepAt(r, rate);
          return s !== undefined && ok(s);
        })
      ),
    );
  const atRates: AtRate[] = [];
  for (const rate of rates) {
    const ss = rounds.map((r) => stepAt(r, rate)).filter((s): s is StepOut => !!s);
    if (ss.length === 0) continue;
    const backend = ss.map((s) => s.backendCpuPerM).filter((x): x is number => x !== undefined);
    atRates.push({
      rate,
      n: ss.length,
      passed: ss.filter((s) => s.pass).length,
      p50: median(ss.map((s) => s.p50)),
      p99: median(ss.map((s) => s.p99)),
      p999: median(ss.map((s) => s.p999)),
      p99s: ss.map((s) => s.p99),
      relayCpuPerM: median(ss.map((s) => s.relayCpuPerM)),
      ...(backend.length ? { backendCpuPerM: median(backend) } : {}),
      totalCpuPerM: median(ss.map((s) => s.totalCpuPerM)),
    });
  }
  const maxes = rounds.map((r) => r.max);
  return {
    name: spec.name,
    promise: spec.promise,
    rounds,
    passEvery: every((s) => s.pass),
    passRange: [Math.min(...maxes), Math.max(...maxes)],
    losslessEvery: every(lossless),
    atRates,
  };
}
