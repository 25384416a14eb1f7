/**
 * A small log-bucketed latency histogram (about 1.1% relative resolution), cheap to record into
 * and to merge across load-generator processes. Values are recorded in microseconds.
 *
 * @module
 */

const SCALE = 64; // buckets per power of two

/** Serialised form: [bucket index, count] pairs. */
export type HistData = Array<[number, number]>;

/** A latency histogram. */
export class Hist {
  #counts = new Map<number, number>();
  count = 0;
  sum = 0;
  max = 0;

  /** Records one value (microseconds). */
  add(us: number): void {
    const v = us < 1 ? 1 : us;
    const i = Math.floor(Math.log2(v) * SCALE);
    this.#counts.set(i, (this.#counts.get(i) ?? 0) + 1);
    this.count++;
    this.sum += v;
    if (v > this.max) this.max = v;
  }

  /** Adds another histogram's counts. */
  merge(o: Hist): void {
    for (const [i, c] of o.#counts) this.#counts.set(i, (this.#counts.get(i) ?? 0) + c);
    this.count += o.count;
    this.sum += o.sum;
    if (o.max > this.max) this.max = o.max;
  }

  /** The value at quantile `q` (0..1), in microseconds; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    const want = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (const i of [...this.#counts.keys()].sort((a, b) => a - b)) {
      seen += this.#counts.get(i)!;
      if (seen >= want) return Math.min(this.max, 2 ** ((i + 0.5) / SCALE));
    }
    return this.max;
  }

  /** Mean in microseconds. */
  mean(): number {
    return this.count ? this.sum / this.count : NaN;
  }

  /** p50/p99/p99.9/max in milliseconds, rounded to 0.01. */
  summaryMs(): { n: number; p50: number; p99: number; p999: number; max: number } {
    const r = (us: number) => Math.round(us / 10) / 100;
    return {
      n: this.count,
      p50: r(this.quantile(0.5)),
      p99: r(this.quantile(0.99)),
      p999: r(this.quantile(0.999)),
      max: r(this.max),
    };
  }

  toJSON(): { b: HistData; n: number; s: number; m: number } {
    return { b: [...this.#counts], n: this.count, s: this.sum, m: this.max };
  }

  static fromJSON(j: { b: HistData; n: number; s: number; m: number }): Hist {
    const h = new Hist();
    for (const [i, c] of j.b) h.#counts.set(i, c);
    h.count = j.n;
    h.sum = j.s;
    h.max = j.m;
    return h;
  }
}
