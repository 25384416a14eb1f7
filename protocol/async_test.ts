import assert from "node:assert/strict";
import {
  backoffDelay,
  Batcher,
  deadline,
  delay,
  isTimeoutError,
  retry,
  RetryError,
  sleep,
  TokenBucket,
} from "./async.ts";

Deno.test("delay resolves after the time, rejects with the reason when aborted", async () => {
  const t0 = performance.now();
  await delay(20);
  assert.ok(performance.now() - t0 >= 15);
  const c = new AbortController();
  const p = delay(10_000, { signal: c.signal });
  c.abort(new Error("stop"));
  await assert.rejects(p, /stop/);
  await assert.rejects(delay(5, { signal: c.signal }), /stop/, "an aborted signal rejects at once");
});

Deno.test("sleep resolves early, without throwing, when aborted", async () => {
  const c = new AbortController();
  const t0 = performance.now();
  const p = sleep(10_000, c.signal);
  c.abort();
  await p;
  assert.ok(performance.now() - t0 < 1000);
});

Deno.test("deadline: the value in time, TimeoutError late, the promise's own error", async () => {
  assert.equal(await deadline(Promise.resolve(7), 100), 7);
  const late = deadline(new Promise(() => {}), 10);
  await assert.rejects(late, (e) => isTimeoutError(e));
  await assert.rejects(deadline(Promise.reject(new Error("own")), 100), /own/);
  const c = new AbortController();
  const aborted = deadline(new Promise(() => {}), 10_000, { signal: c.signal });
  c.abort(new Error("gone"));
  await assert.rejects(aborted, /gone/);
  assert.equal(isTimeoutError(new Error("x")), false);
});

Deno.test("backoffDelay: exponential, capped, jitter takes a random share", () => {
  const opts = { minTimeout: 100, maxTimeout: 1000, multiplier: 2 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, { ...opts, jitter: 0 })),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.equal(backoffDelay(2, { ...opts, jitter: 0.5 }, () => 1), 200);
  assert.equal(backoffDelay(2, { ...opts, jitter: 0.5 }, () => 0), 400);
  assert.equal(backoffDelay(2, { ...opts, jitter: 1 }, () => 1), 0);
});

Deno.test("retry: succeeds after failures, gives up with RetryError, stops on non-retriable", async () => {
  let n = 0;
  const v = await retry(
    () => (++n < 3 ? Promise.reject(new Error(`fail ${n}`)) : Promise.resolve(n)),
    {
      minTimeout: 1,
      maxAttempts: 5,
    },
  );
  assert.equal(v, 3);

  let calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      return Promise.reject(new Error("always"));
    }, { minTimeout: 1, maxAttempts: 3 }),
    (e) => e instanceof RetryError && (e.cause as Error).message === "always",
  );
  assert.equal(calls, 3);

  calls = 0;
  await assert.rejects(
    retry(() => {
      calls++;
      return Promise.reject(new TypeError("fatal"));
    }, { minTimeout: 1, isRetriable: (e) => !(e instanceof TypeError) }),
    TypeError,
  );
  assert.equal(calls, 1);
});

Deno.test("Batcher: items of one turn share a batch; one batch in flight, the rest queue", async () => {
  const batches: number[][] = [];
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  const b = new Batcher<number, string>(async (items) => {
    batches.push(items);
    await gate;
    return items.map((x) => `r${x}`);
  });
  const first = [b.add(1), b.add(2)];
  await delay(5);
  assert.equal(b.busy, true);
  const second = [b.add(3), b.add(4), b.add(5)];
  await delay(5);
  assert.deepEqual(batches, [[1, 2]], "the second batch waits for the first");
  assert.equal(b.queued, 3);
  const r1 = gate;
  gate = Promise.resolve();
  release();
  await r1;
  assert.deepEqual(await Promise.all(first), ["r1", "r2"]);
  assert.deepEqual(await Promise.all(second), ["r3", "r4", "r5"]);
  assert.deepEqual(batches, [[1, 2], [3, 4, 5]]);
  await b.idle();
  assert.equal(b.busy, false);
});

Deno.test("Batcher: maxItems and maxWeight split batches; a failed batch rejects its items", async () => {
  const batches: string[][] = [];
  const b = new Batcher<string, number>((items) => {
    batches.push(items);
    if (items.includes("bad")) return Promise.reject(new Error("batch failed"));
    return Promise.resolve(items.map((s) => s.length));
  }, { maxItems: 3, maxWeight: 10, weigh: (s) => s.length });
  const ps = ["aaaa", "bbbb", "cccc", "d", "e", "f", "g"].map((s) => b.add(s));
  assert.deepEqual(await Promise.all(ps), [4, 4, 4, 1, 1, 1, 1]);
  assert.deepEqual(batches, [["aaaa", "bbbb"], ["cccc", "d", "e"], ["f", "g"]]);
  const bad = b.add("bad");
  await assert.rejects(bad, /batch failed/);
  // One item heavier than maxWeight still goes (alone).
  assert.equal(await b.add("x".repeat(50)), 50);
});

Deno.test("Batcher.flush starts the queued batch without waiting for its schedule", async () => {
  const batches: number[][] = [];
  let scheduled: (() => void) | undefined;
  const b = new Batcher<number, number>((items) => {
    batches.push(items);
    return Promise.resolve(items);
  }, { schedule: (run) => void (scheduled = run) });
  const ps = [b.add(1), b.add(2)];
  assert.deepEqual(batches, [], "waits for its schedule");
  b.flush();
  assert.deepEqual(await Promise.all(ps), [1, 2]);
  assert.deepEqual(batches, [[1, 2]]);
  scheduled!(); // the schedule firing late finds nothing to do
  await b.idle();
  assert.deepEqual(batches, [[1, 2]]);
});

Deno.test("Batcher: with scheduleChained the batch after a batch waits for its schedule too", async () => {
  for (const chained of [false, true]) {
    const batches: number[][] = [];
    const runs: Array<() => void> = [];
    const b = new Batcher<number, number>((items) => {
      batches.push(items);
      return delay(5).then(() => items);
    }, { schedule: (run) => void runs.push(run), scheduleChained: chained });
    const first = b.add(1);
    assert.equal(runs.length, 1);
    runs.shift()!();
    const second = b.add(2); // queued while the first batch runs
    assert.equal(await first, 1);
    await delay(10);
    if (chained) {
      assert.deepEqual(batches, [[1]], "the second batch waits for its schedule");
      assert.equal(runs.length, 1);
      runs.shift()!();
    } else assert.equal(runs.length, 0, "the second batch went at once");
    assert.equal(await second, 2);
    assert.deepEqual(batches, [[1], [2]]);
    await b.idle();
    if (!chained) continue;
    // A flush while a batch runs sends the next one as soon as it ends, without its schedule.
    const third = b.add(3);
    runs.shift()!();
    const fourth = b.add(4);
    b.flush(); // while the third runs
    assert.equal(await third, 3);
    assert.equal(await fourth, 4);
    assert.equal(runs.length, 0, "the batch after a flush did not wait for its schedule");
    assert.deepEqual(batches, [[1], [2], [3], [4]]);
  }
});

Deno.test("Batcher.flush cancels the schedule it makes unnecessary", async () => {
  let cancelled = 0;
  const b = new Batcher<number, number>((items) => Promise.resolve(items), {
    schedule: (run) => {
      const t = setTimeout(run, 60_000);
      return () => {
        cancelled++;
        clearTimeout(t);
      };
    },
  });
  const p = b.add(1);
  b.flush();
  assert.equal(await p, 1);
  assert.equal(cancelled, 1, "the 60 s timer is gone (the test's op sanitizer also checks)");
});

Deno.test("Batcher.clear rejects what is queued", async () => {
  const b = new Batcher<number, number>((items) => Promise.resolve(items), {
    schedule: () => {},
  });
  const p = b.add(1);
  b.clear(new Error("closed"));
  await assert.rejects(p, /closed/);
  await b.idle();
});

Deno.test("TokenBucket: burst, refill, retryAfterMs, unlimited at rate 0, wait", async () => {
  const b = new TokenBucket({ ratePerSecond: 10, burst: 2 }, 0);
  assert.deepEqual(b.take(0), { ok: true });
  assert.deepEqual(b.take(0), { ok: true });
  assert.deepEqual(b.take(0), { ok: false, retryAfterMs: 100 });
  assert.deepEqual(b.take(50), { ok: false, retryAfterMs: 50 });
  assert.deepEqual(b.take(100), { ok: true });
  assert.equal(b.full(100), false);
  assert.equal(b.full(1000), true);
  const free = new TokenBucket({ ratePerSecond: 0, burst: 1 });
  for (let i = 0; i < 100; i++) assert.equal(free.take().ok, true);

  const paced = new TokenBucket({ ratePerSecond: 50, burst: 1 });
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) await paced.wait();
  assert.ok(performance.now() - t0 >= 30, "two refills of 20 ms each");
});
