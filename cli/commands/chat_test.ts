import assert from "node:assert/strict";
import { reconnectDelay } from "./chat.ts";

Deno.test("reconnectDelay: exponential steps with ±25 % jitter, capped at 30 s", () => {
  const steps = [500, 1000, 2000, 4000, 8000, 15000, 30000, 30000, 30000];
  steps.forEach((base, attempt) => {
    assert.equal(reconnectDelay(attempt, () => 0), base * 0.75);
    assert.equal(reconnectDelay(attempt, () => 0.5), base);
    assert.equal(reconnectDelay(attempt, () => 0.999999), Math.round(base * 1.249999));
  });
  const seen = new Set(Array.from({ length: 50 }, () => reconnectDelay(3)));
  assert.ok(seen.size > 1, "random jitter by default");
  for (const d of seen) assert.ok(d >= 3000 && d <= 5000, String(d));
});
