/**
 * Token buckets for abuse limits: one per connection (every frame), and keyed ones shared by the
 * relay's sessions: per pair mailbox (sends to it) and per IP address (request-inbox sends).
 *
 * @module
 */
import { type RateSpec, type Take, TokenBucket } from "@chat-p2p/protocol/async";

export type { RateSpec, Take } from "@chat-p2p/protocol/async";

/**
 * Buckets by key, forgetting full ones so idle keys cost no memory. At most `maxKeys` are kept:
 * past that (keys are cheap to make up, e.g. random mailbox ids) a new key makes the full ones
 * be forgotten at once, and if that frees less than a tenth of the room, all of them: a walk over
 * every bucket happens at most once per tenth of `maxKeys` new keys, never on every send.
 */
export class KeyedBuckets {
  #spec: RateSpec;
  #maxKeys: number;
  #buckets = new Map<string, TokenBucket>();
  #lastSweep = performance.now();

  constructor(spec: RateSpec, maxKeys = 100_000) {
    this.#spec = spec;
    this.#maxKeys = maxKeys;
  }

  /** Takes a token from `key`'s bucket. */
  take(key: string, now = performance.now()): Take {
    if (this.#spec.ratePerSecond <= 0) return { ok: true };
    if (now - this.#lastSweep > 10_000) this.#sweep(now);
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.#maxKeys) {
        this.#sweep(now);
        if (this.#buckets.size > this.#maxKeys * 0.9) this.#buckets.clear();
      }
      this.#buckets.set(key, b = new TokenBucket(this.#spec, now));
    }
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
