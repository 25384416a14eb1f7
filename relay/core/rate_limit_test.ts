import assert from "node:assert/strict";
import { TokenBucket } from "@chat-p2p/protocol/async";
import { KeyedBuckets } from "./rate_limit.ts";

Deno.test("token bucket: a burst passes, the next take says when to retry, refill restores", () => {
  const b = new TokenBucket({ ratePerSecond: 10, burst: 3 }, 0);
  for (let i = 0; i < 3; i++) assert.deepEqual(b.take(0), { ok: true });
  assert.deepEqual(b.take(0), { ok: false, retryAfterMs: 100 });
  assert.deepEqual(b.take(50), { ok: false, retryAfterMs: 50 });
  assert.deepEqual(b.take(100), { ok: true });
  assert.equal(b.full(10_000), true);
});

Deno.test("token bucket: rate 0 means unlimited", () => {
  const b = new TokenBucket({ ratePerSecond: 0, burst: 0 }, 0);
  for (let i = 0; i < 1000; i++) assert.equal(b.take(0).ok, true);
});

Deno.test("keyed buckets: keys are independent and idle full buckets are forgotten", () => {
  const k = new KeyedBuckets({ ratePerSecond: 1, burst: 1 });
  assert.equal(k.take("a", 0).ok, true);
  assert.equal(k.take("a", 0).ok, false);
  assert.equal(k.take("b", 0).ok, true);
  assert.equal(k.size, 2);
  k.take("c", 20_000); // triggers a sweep: a and b have refilled
  assert.equal(k.size, 1);
});

Deno.test("keyed buckets: made-up keys cannot grow them past their bound", () => {
  const k = new KeyedBuckets({ ratePerSecond: 1, burst: 1 }, 100);
  for (let i = 0; i < 1000; i++) {
    k.take(`key-${i}`, 0);
    assert.ok(k.size <= 100, `${k.size} keys kept`);
  }
  assert.equal(k.take("x", 0).ok, true);
  assert.equal(k.take("x", 0).ok, false, "still limiting");
});

Deno.test("keyed buckets: at the bound a new key forgets the full ones, and all when that frees too little", () => {
  const spec = { ratePerSecond: 1, burst: 1 };
  // 20 of 100 refilled by t=1000: forgetting them makes room, the other 80 keep limiting.
  const k = new KeyedBuckets(spec, 100);
  for (let i = 0; i < 100; i++) k.take(`key-${i}`, i < 20 ? 0 : 900);
  k.take("new", 1000);
  assert.equal(k.size, 81);
  assert.equal(k.take("key-50", 1000).ok, false, "a kept bucket still limits");
  // 5 of 100 refilled: not a tenth of the room, so everything goes at once (rather than a walk
  // over every bucket for each of the next few new keys).
  const j = new KeyedBuckets(spec, 100);
  for (let i = 0; i < 100; i++) j.take(`key-${i}`, i < 5 ? 0 : 900);
  j.take("new", 1000);
  assert.equal(j.size, 1);
});
