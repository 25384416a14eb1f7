/**
 * Token buckets for abuse limits: one per connection (every frame) and one per key (every send,
 * across all that key's sockets on this relay).
 *
 * @module
 */

/** A bucket's shape: refills `ratePerSecond` tokens a second up to `burst`. 0 rate = unlimited. */
export interface RateSpec {
  ratePerSecond: number;
  burst: number;
}

/** The outcome of taking a token. */
export type Take = { ok: true } | { ok: false; retryAfterMs: number };

/** A token bucket. */
export class TokenBucket {
  #spec: RateSpec;
  #tokens: number;
  #at: number;

  constructor(spec: RateSpec, now = performance.now()) {
    this.#spec = spec;
    this.#tokens = spec.burst;
    this.#at = now;
  }

  /** True when the bucket is full (nothing to remember about it). */
  full(now = performance.now()): boolean {
    this.#refill(now);
    return this.#tokens >= this.#spec.burst;
  }

  #refill(now: number): void {
    const add = ((now - this.#at) / 1000) * this.#spec.ratePerSecond;
    this.#tokens = Math.min(this.#spec.burst, this.#tokens + add);
    this.#at = now;
  }

  /** Takes one token, or says how long until one is there. */
  take(now = performance.now()): Take {
    if (this.#spec.ratePerSecond <= 0) return { ok: true };
    this.#refill(now);
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return { ok: true };
    }
    return {
      ok: false,
      retryAfterMs: Math.ceil(((1 - this.#tokens) / this.#spec.ratePerSecond) * 1000),
    };
  }
}

/** Buckets by key, forgetting full ones so idle keys cost no memory. */
export class KeyedBuckets {
  #spec: RateSpec;
  #buckets = new Map<string, TokenBucket>();
  #lastSweep = performance.now();

  constructor(spec: RateSpec) {
    this.#spec = spec;
  }

  /** Takes a token from `key`'s bucket. */
  take(key: string, now = performance.now()): Take {
    if (this.#spec.ratePerSecond <= 0) return { ok: true };
    if (now - this.#lastSweep > 10_000) this.#sweep(now);
    let b = this.#buckets.get(key);
    if (!b) this.#buckets.set(key, b = new TokenBucket(this.#spec, now));
    return b.take(now);
  }

  #sweep(now: number): void {
    this.#lastSweep = now;
    for (const [k, b] of this.#buckets) if (b.full(now)) this.#buckets.delete(k);
  }

  /** How many keys are being tracked. */
  get size(): number {
    return this.#buckets.size;
  }
}
