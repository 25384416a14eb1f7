import assert from "node:assert/strict";
import { Metrics } from "./metrics.ts";

Deno.test("metrics: label order does not split a series, and values are escaped", async () => {
  const m = new Metrics();
  m.inc("frames_in_total", { type: "send" });
  m.inc("frames_in_total", { type: "send" }, 2);
  m.inc("errors_total", { code: "a", scope: "b" });
  m.inc("errors_total", { scope: "b", code: "a" });
  m.inc("errors_total", { code: 'q"\\\n' });
  assert.equal(m.get("frames_in_total", { type: "send" }), 3);
  assert.equal(m.get("errors_total", { scope: "b", code: "a" }), 2);
  const text = await m.render();
  assert.match(text, /^chat_relay_frames_in_total\{type="send"\} 3$/m);
  assert.match(text, /^chat_relay_errors_total\{code="a",scope="b"\} 2$/m);
  assert.match(text, /^chat_relay_errors_total\{code="q___"\} 1$/m);
});

Deno.test("metrics: a gauge that does not answer in time is left out, the rest is served", async () => {
  const m = new Metrics();
  m.inc("lease_lapses_total");
  m.gauge("stalled", () => new Promise<number>(() => {})); // a backend that never answers
  m.gauge("failing", () => Promise.reject(new Error("down")));
  m.gauge("connections", () => 3);
  m.gauge("slow_but_in_time", () => new Promise<number>((r) => setTimeout(() => r(7), 20)));
  const t0 = performance.now();
  const text = await m.render(200);
  const took = performance.now() - t0;
  assert.ok(took < 2000, `render took ${took} ms`);
  assert.match(text, /^chat_relay_lease_lapses_total 1$/m);
  assert.match(text, /^chat_relay_connections 3$/m);
  assert.match(text, /^chat_relay_slow_but_in_time 7$/m);
  assert.doesNotMatch(text, /stalled|failing/);
});
