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
