/**
 * Small async helpers the relay and the client share. JSR's `@std/async` is not reachable from
 * our build machines, so {@linkcode delay}, {@linkcode deadline} and {@linkcode retry} keep the
 * names and shapes of std's; {@linkcode Batcher} (one batch in flight, the rest queue) and
 * {@linkcode TokenBucket} have no std counterpart. Timers only: nothing here touches I/O.
 *
 * @example Retry a flaky call with exponential backoff and jitter
 * ```ts
 * import { retry } from "@chat-p2p/protocol/async";
 *
 * let n = 0;
 * const value = await retry(() => (++n < 3 ? Promise.reject(new Error("busy")) : Promise.resolve(n)), {
 *   minTimeout: 10,
 *   maxAttempts: 5,
 * });
 * console.log(value); // 3
 * ```
 *
 * @module
 */
import { setImmediate } from "node:timers";

/** Options for {@linkcode delay}. */
export interface DelayOptions {
  /** Aborting rejects the delay with the signal's reason. */
  signal?: AbortSignal;
  /** When false, the timer does not keep the process alive (`Deno.unrefTimer`). Default true. */
  persistent?: boolean;
}

/**
 * Resolves after `ms` milliseconds; rejects with `signal.reason` as soon as `signal` aborts
 * (std's `delay`).
 *
 * @example
 * ```ts
 * import { delay } from "@chat-p2p/protocol/async";
 * await delay(10);
 * ```
 */
export function delay(ms: number, options: DelayOptions = {}): Promise<void> {
  const { signal, persistent = true } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", abort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", abort, { once: true });
    if (!persistent) Deno.unrefTimer(timer);
  });
}

/**
 * Like {@linkcode delay}, but resolves (instead of rejecting) when `signal` aborts: for loops
 * that wait between attempts and check the signal themselves afterwards.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, { signal }).catch(() => {});
}

/** Options for {@linkcode deadline}. */
export interface DeadlineOptions {
  /** Aborting rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * Settles like `p`, or rejects with a `DOMException` named `TimeoutError` after `ms` (std's
 * `deadline`). The timer never outlives the race.
 *
 * @example
 * ```ts
 * import { deadline } from "@chat-p2p/protocol/async";
 * try {
 *   await deadline(new Promise(() => {}), 10);
 * } catch (e) {
 *   console.log((e as DOMException).name); // "TimeoutError"
 * }
 * ```
 */
export function deadline<T>(p: Promise<T>, ms: number, options: DeadlineOptions = {}): Promise<T> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
    };
    const abort = () => {
      done();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      reject(new DOMException("Signal timed out.", "TimeoutError"));
    }, ms);
    signal?.addEventListener("abort", abort, { once: true });
    p.then((v) => {
      done();
      resolve(v);
    }, (e) => {
      done();
      reject(e);
    });
  });
}

/** True for the error {@linkcode deadline} rejects with when time runs out. */
export function isTimeoutError(e: unknown): boolean {
  return e instanceof DOMException && e.name === "TimeoutError";
}

/** How {@linkcode retry} and {@linkcode backoffDelay} space attempts (std's `RetryOptions`). */
export interface BackoffOptions {
  /** Growth of the delay per attempt. Default 2. */
  multiplier?: number;
  /** Largest delay in ms. Default 60,000. */
  maxTimeout?: number;
  /** First delay in ms. Default 1,000. */
  minTimeout?: number;
  /**
   * Share of each delay that is random, 0 to 1: a delay is `(1 - jitter * random) * d`. Default
   * 1 (std's "full jitter"), so clients that failed together do not come back together.
   */
  jitter?: number;
}

/** Options for {@linkcode retry}. */
export interface RetryOptions extends BackoffOptions {
  /** Attempts in all (the first included). Default 5. */
  maxAttempts?: number;
  /** Stops waiting and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Errors for which this returns false are thrown at once. Default: every error is retried. */
  isRetriable?: (error: unknown) => boolean;
}

/** Thrown by {@linkcode retry} when every attempt failed; `cause` is the last error. */
export class RetryError extends Error {
  /** Creates the error for `attempts` failed attempts. */
  constructor(cause: unknown, attempts: number) {
    super(`Retrying exceeded the maxAttempts (${attempts}).`, { cause });
    this.name = "RetryError";
  }
}

/**
 * The wait before retry number `attempt` (0 for the first retry): `minTimeout * multiplier **
 * attempt`, capped at `maxTimeout`, with `jitter` of it random. Loops that retry forever (a
 * client reconnecting) use it directly.
 */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const { multiplier = 2, maxTimeout = 60_000, minTimeout = 1000, jitter = 1 } = options;
  const exp = Math.min(maxTimeout, minTimeout * multiplier ** attempt);
  return Math.round((1 - jitter * random()) * exp);
}

/**
 * Calls `fn` until it resolves, waiting {@linkcode backoffDelay} between attempts; after
 * `maxAttempts` failures rejects with a {@linkcode RetryError} (std's `retry`).
 */
export async function retry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { maxAttempts = 5, signal, isRetriable = () => true } = options;
  for (let attempt = 0;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (e) {
      if (!isRetriable(e)) throw e;
      if (attempt + 1 >= maxAttempts) throw new RetryError(e, maxAttempts);
      await delay(backoffDelay(attempt, options), { signal });
    }
  }
}

/** Options for {@linkcode Batcher}. */
export interface BatcherOptions<T> {
  /** Most items in one batch. Default unlimited. */
  maxItems?: number;
  /** Most total weight in one batch (a batch always takes at least one item). Default unlimited. */
  maxWeight?: number;
  /** Weight of an item, for `maxWeight`. Default 1. */
  weigh?: (item: T) => number;
  /**
   * How the first batch after a quiet spell is scheduled (and, with `scheduleChained`, every
   * batch). Default `setImmediate`: after this event-loop turn's I/O, so items added in the same
   * turn share a batch, without the 1-2 ms a Deno `setTimeout(0)` waits. It may return a function
   * that cancels it, which {@linkcode Batcher.flush} calls when it starts the batch early.
   */
  schedule?: (run: () => void) => void | (() => void);
  /**
   * Whether the batch after one that just ended goes through `schedule` too (default false: it
   * starts at once). With a `schedule` that waits out an interval since the last batch began, this
   * spaces every batch, not only the first after a quiet spell.
   */
  scheduleChained?: boolean;
}

interface Entry<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

/**
 * Groups items into batches with at most one batch in flight: items added while a batch runs
 * queue up and go together as the next batch (group commit). `run` returns one result per item,
 * in order; if it throws, every item of that batch rejects with that error.
 *
 * @example
 * ```ts
 * import { Batcher } from "@chat-p2p/protocol/async";
 *
 * const sizes: number[] = [];
 * const b = new Batcher<number, number>((items) => {
 *   sizes.push(items.length);
 *   return Promise.resolve(items.map((x) => x * 2));
 * });
 * console.log(await Promise.all([b.add(1), b.add(2), b.add(3)]), sizes); // [2, 4, 6] [3]
 * ```
 */
export class Batcher<T, R> {
  readonly #run: (items: T[]) => Promise<R[]>;
  readonly #maxItems: number;
  readonly #maxWeight: number;
  readonly #weigh: (item: T) => number;
  readonly #schedule: (run: () => void) => void | (() => void);
  readonly #scheduleChained: boolean;
  #queue: Entry<T, R>[] = [];
  #inFlight: Promise<void> | undefined;
  #scheduled = false;
  /** Cancels the pending schedule, when it can be. */
  #cancel: (() => void) | undefined;
  /** A flush came while a batch ran: the next one goes as soon as it ends. */
  #flushing = false;
  #idle: Array<() => void> = [];

  /** Creates a batcher that hands batches to `run`. */
  constructor(run: (items: T[]) => Promise<R[]>, options: BatcherOptions<T> = {}) {
    this.#run = run;
    this.#maxItems = options.maxItems ?? Infinity;
    this.#maxWeight = options.maxWeight ?? Infinity;
    this.#weigh = options.weigh ?? (() => 1);
    this.#schedule = options.schedule ?? ((f) => void setImmediate(f));
    this.#scheduleChained = options.scheduleChained ?? false;
  }

  /** Items queued, not yet handed to `run`. */
  get queued(): number {
    return this.#queue.length;
  }

  /** True while a batch is running. */
  get busy(): boolean {
    return this.#inFlight !== undefined;
  }

  /** Queues `item`; resolves with its result once its batch has run. */
  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#scheduled && !this.#inFlight) this.#arm();
    });
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.#inFlight && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Starts the queued items now instead of when `schedule` would have (while a batch runs: as
   * soon as it ends). For a reader that must see them, and is not to wait out the schedule.
   */
  flush(): void {
    if (this.#queue.length === 0) return;
    if (this.#inFlight) this.#flushing = true; // the next batch then goes as soon as it ends
    else this.#next();
  }

  /** Rejects every queued (not yet running) item with `error`. */
  clear(error: unknown): void {
    for (const e of this.#queue.splice(0)) e.reject(error);
    this.#settleIdle();
  }

  #take(): Entry<T, R>[] {
    let n = 0;
    let weight = 0;
    while (n < this.#queue.length && n < this.#maxItems) {
      const w = this.#weigh(this.#queue[n].item);
      if (n > 0 && weight + w > this.#maxWeight) break;
      weight += w;
      n++;
    }
    return this.#queue.splice(0, n);
  }

  #arm(): void {
    this.#scheduled = true;
    const cancel = this.#schedule(() => this.#next());
    this.#cancel = typeof cancel === "function" ? cancel : undefined;
  }

  #next(): void {
    this.#scheduled = false;
    this.#cancel?.();
    this.#cancel = undefined;
    if (this.#inFlight) return;
    if (this.#queue.length === 0) return this.#settleIdle();
    const batch = this.#take();
    this.#inFlight = (async () => {
      try {
        const results = await this.#run(batch.map((e) => e.item));
        batch.forEach((e, i) => e.resolve(results[i]));
      } catch (err) {
        for (const e of batch) e.reject(err);
      }
    })().finally(() => {
      this.#inFlight = undefined;
      const now = this.#flushing || !this.#scheduleChained || this.#queue.length === 0;
      this.#flushing = false;
      if (now) this.#next();
      else this.#arm(); // nothing is armed while a batch runs: #next disarmed it
    });
  }

  #settleIdle(): void {
    if (this.#inFlight || this.#queue.length > 0) return;
    for (const f of this.#idle.splice(0)) f();
  }
}

/** A token bucket's shape: refills `ratePerSecond` tokens a second up to `burst`. */
export interface RateSpec {
  /** Tokens added per second; 0 means unlimited (every take succeeds). */
  ratePerSecond: number;
  /** Most tokens held (the largest burst). */
  burst: number;
}

/** The outcome of {@linkcode TokenBucket.take}. */
export type Take = { ok: true } | { ok: false; retryAfterMs: number };

/**
 * A token bucket: a limiter on the relay (frames per socket, sends per key) and a pacer on the
 * client (frames it writes). Times are `performance.now()` milliseconds unless given.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "@chat-p2p/protocol/async";
 *
 * const bucket = new TokenBucket({ ratePerSecond: 10, burst: 2 });
 * console.log(bucket.take().ok, bucket.take().ok, bucket.take().ok); // true true false
 * ```
 */
export class TokenBucket {
  readonly #spec: RateSpec;
  #tokens: number;
  #at: number;

  /** Creates a full bucket. */
  constructor(spec: RateSpec, now: number = performance.now()) {
    this.#spec = spec;
    this.#tokens = spec.burst;
    this.#at = now;
  }

  /** True when the bucket is full (nothing to remember about it). */
  full(now: number = performance.now()): boolean {
    this.#refill(now);
    return this.#tokens >= this.#spec.burst;
  }

  #refill(now: number): void {
    const add = ((now - this.#at) / 1000) * this.#spec.ratePerSecond;
    this.#tokens = Math.min(this.#spec.burst, this.#tokens + add);
    this.#at = now;
  }

  /** Takes one token, or says how long until one is there. */
  take(now: number = performance.now()): Take {
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

  /** Waits until a token is there, then takes it; rejects with the reason when `signal` aborts. */
  async wait(signal?: AbortSignal): Promise<void> {
    for (;;) {
      const t = this.take();
      if (t.ok) return;
      await delay(t.retryAfterMs, { signal });
    }
  }
}
