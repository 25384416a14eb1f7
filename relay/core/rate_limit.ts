/**
 * Token buckets for abuse limits: one per connection (every frame) and one per key (every send,
 * across all that key's sockets on this relay).
 *
 * @module
 */
import { type RateSpec, type Take, TokenBucket } from "@chat-p2p/protocol/async";

export type { RateSpec, Take } from "@chat-p2p/protocol/async";

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
