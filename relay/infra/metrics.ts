/**
 * A small Prometheus text-format registry: counters, histograms and gauges read at scrape time.
 * Labels are low-cardinality only (frame type, error code, backend op): never keys or ids.
 *
 * @module
 */

import { deadline } from "@chat-p2p/protocol/async";

type Labels = Record<string, string>;

/** How long a scrape waits for one gauge (below Prometheus's default scrape timeout of 10 s). */
export const GAUGE_TIMEOUT_MS = 1000;

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

const UNSAFE = /["\\\n]/g;
/** Label name → value → series key, for one-label sets (the usual case). */
const keys = new Map<string, Map<string, string>>();
let cached = 0;

/**
 * The series key of a label set: `a="x",b="y"`, names sorted. Called several times for every
 * message, so the key of a one-label set is looked up by name and value without building a string
 * (label values are a small fixed set by design; at most 1,024 are kept).
 */
function key(labels: Labels): string {
  let name: string | undefined;
  for (const k in labels) {
    if (name !== undefined) return manyKey(labels);
    name = k;
  }
  if (name === undefined) return "";
  const v = labels[name];
  let byValue = keys.get(name);
  let k = byValue?.get(v);
  if (k === undefined) {
    k = `${name}="${v.replace(UNSAFE, "_")}"`;
    if (cached < 1024) {
      if (!byValue) keys.set(name, byValue = new Map());
      byValue.set(v, k);
      cached++;
    }
  }
  return k;
}

function manyKey(labels: Labels): string {
  const names = Object.keys(labels).sort();
  return names.map((k) => `${k}="${labels[k].replace(UNSAFE, "_")}"`).join(",");
}

/** The relay's metrics. Names are prefixed `chat_relay_` on output. */
export class Metrics {
  #help = new Map<string, { type: "counter" | "histogram" | "gauge"; help: string }>();
  #counters = new Map<string, Map<string, number>>();
  #histograms = new Map<string, Map<string, Histogram>>();
  #gauges = new Map<
    string,
    () => Array<[Labels, number]> | number | Promise<Array<[Labels, number]> | number>
  >();

  /** Declares a metric's help text and type (optional; undeclared ones get a generic help). */
  describe(name: string, type: "counter" | "histogram" | "gauge", help: string): void {
    this.#help.set(name, { type, help });
  }

  /** Adds `by` (default 1) to a counter. */
  inc(name: string, labels: Labels = {}, by = 1): void {
    let m = this.#counters.get(name);
    if (!m) this.#counters.set(name, m = new Map());
    const k = key(labels);
    m.set(k, (m.get(k) ?? 0) + by);
  }

  /** Current value of a counter (for tests). */
  get(name: string, labels: Labels = {}): number {
    return this.#counters.get(name)?.get(key(labels)) ?? 0;
  }

  /** Records one observation (seconds) in a histogram. */
  observe(name: string, labels: Labels, value: number): void {
    let m = this.#histograms.get(name);
    if (!m) this.#histograms.set(name, m = new Map());
    const k = key(labels);
    let h = m.get(k);
    if (!h) m.set(k, h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 });
    for (let i = 0; i < BUCKETS.length; i++) if (value <= BUCKETS[i]) h.counts[i]++;
    h.sum += value;
    h.count++;
  }

  /** Registers a gauge computed at scrape time. */
  gauge(
    name: string,
    read: () => Array<[Labels, number]> | number | Promise<Array<[Labels, number]> | number>,
  ): void {
    this.#gauges.set(name, read);
  }

  /**
   * Prometheus text exposition format 0.0.4. Gauges are read together, each for at most
   * `gaugeTimeoutMs`: one whose read fails or takes longer (a gauge that asks a stalled Redis) is
   * left out, so the counters that say what is going on are still served within a scrape's timeout.
   */
  async render(gaugeTimeoutMs = GAUGE_TIMEOUT_MS): Promise<string> {
    const out: string[] = [];
    const head = (name: string, type: string) => {
      const d = this.#help.get(name);
      out.push(`# HELP chat_relay_${name} ${d?.help ?? name.replaceAll("_", " ")}`);
      out.push(`# TYPE chat_relay_${name} ${d?.type ?? type}`);
    };
    const lbl = (k: string, extra = "") => {
      const all = [k, extra].filter(Boolean).join(",");
      return all ? `{${all}}` : "";
    };
    for (const [name, m] of this.#counters) {
      head(name, "counter");
      for (const [k, v] of m) out.push(`chat_relay_${name}${lbl(k)} ${v}`);
    }
    const gauges = [...this.#gauges];
    const values = await Promise.allSettled(
      gauges.map(([, read]) => deadline(Promise.resolve().then(read), gaugeTimeoutMs)),
    );
    for (const [i, [name]] of gauges.entries()) {
      const r = values[i];
      if (r.status === "rejected") continue;
      const v = r.value;
      head(name, "gauge");
      if (typeof v === "number") out.push(`chat_relay_${name} ${v}`);
      else for (const [labels, n] of v) out.push(`chat_relay_${name}${lbl(key(labels))} ${n}`);
    }
    for (const [name, m] of this.#histograms) {
      head(name, "histogram");
      for (const [k, h] of m) {
        BUCKETS.forEach((b, i) =>
          out.push(`chat_relay_${name}_bucket${lbl(k, `le="${b}"`)} ${h.counts[i]}`)
        );
        out.push(`chat_relay_${name}_bucket${lbl(k, 'le="+Inf"')} ${h.count}`);
        out.push(`chat_relay_${name}_sum${lbl(k)} ${h.sum}`);
        out.push(`chat_relay_${name}_count${lbl(k)} ${h.count}`);
      }
    }
    return out.join("\n") + "\n";
  }
}
