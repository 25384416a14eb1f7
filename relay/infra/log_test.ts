import assert from "node:assert/strict";
import process from "node:process";
import { createLogger, OutageLog, routeRuntimeWarnings } from "./log.ts";

Deno.test("OutageLog: a run of failures is one line, a summary every interval, and one at its end", () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger("warn", (l) => lines.push(JSON.parse(l)));
  const o = new OutageLog(log, "sends refused", 30_000);
  o.ok(0); // nothing to end
  for (let t = 0; t < 50_000; t += 10) o.fail("redis down", t); // 5,000 refusals over 50 s
  o.ok(50_000);
  o.ok(50_001);
  assert.deepEqual(lines.map((l) => [l.msg, l.count, l.since_ms ?? l.duration_ms]), [
    ["sends refused", undefined, undefined],
    ["sends refused: still", 3001, 30_000],
    ["sends refused: over", 5000, 50_000],
  ]);
  assert.equal(lines[0].err, "redis down");
  o.fail("again", 60_000);
  assert.equal(lines.length, 4, "a new outage is reported again");
});

Deno.test("routeRuntimeWarnings: runtime warnings become JSON log lines, whatever their name", () => {
  const lines: string[] = [];
  const restore = routeRuntimeWarnings(createLogger("warn", (l) => lines.push(l)));
  try {
    const w = new Error("Possible EventEmitter memory leak detected. 11 ready listeners added");
    w.name = "MaxListenersExceededWarning";
    process.emitWarning(w);
    process.emitWarning("x is deprecated", "DeprecationWarning");
    process.emitWarning("-1 does not fit", { type: "TimeoutNegativeWarning" });
    const logged = lines.map((l) => JSON.parse(l));
    assert.deepEqual(logged.map((l) => [l.level, l.msg, l.name]), [
      ["warn", "runtime warning", "MaxListenersExceededWarning"],
      ["warn", "runtime warning", "DeprecationWarning"],
      ["warn", "runtime warning", "TimeoutNegativeWarning"],
    ]);
    assert.match(logged[0].message, /memory leak/);
  } finally {
    restore();
  }
});
