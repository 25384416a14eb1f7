/**
 * Runs the server script named by `STALL_MONITOR_SCRIPT` (its own arguments are this process's)
 * with an event-loop monitor beside it: a 1 ms interval timer that, whenever a tick comes more
 * than `STALL_MONITOR_MS` (default 6) after the last, prints one line to stdout:
 * `STALL <ms> <epoch ms> <ms on a core> <ms waiting for a core> <performance.now()>`, the third and
 * fourth from the main thread's `/proc/thread-self/schedstat` over the same interval, the last on
 * the clock V8's `--trace-gc` lines use (milliseconds since the isolate started, within a few). A
 * first line `CLOCK <epoch ms> <performance.now()>` ties that clock to the wall clock. So a stall
 * is told apart into the thread's own work (JavaScript, garbage collection) and the time the
 * kernel gave the core to someone else. Used by bench/stalls.ts.
 *
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const script = Deno.env.get("STALL_MONITOR_SCRIPT");
if (!script) throw new Error("STALL_MONITOR_SCRIPT is not set");
const limit = Number(Deno.env.get("STALL_MONITOR_MS") ?? 6);
/** Nanoseconds on a core and waiting in the run queue, of this (the main) thread. */
const schedstat = (): [number, number] => {
  const [run, wait] = Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ").map(Number);
  return [run, wait];
};
// How its clock lines up with the wall clock (the parent reads GC lines against it).
console.log(`CLOCK ${Date.now()} ${performance.now().toFixed(1)}`);
let last = performance.now();
let [run0, wait0] = schedstat();
const timer = setInterval(() => {
  const now = performance.now();
  const [run, wait] = schedstat();
  if (now - last > limit) {
    console.log(
      `STALL ${(now - last).toFixed(2)} ${Date.now()} ${((run - run0) / 1e6).toFixed(2)} ${
        ((wait - wait0) / 1e6).toFixed(2)
      } ${now.toFixed(1)}`,
    );
  }
  last = now;
  run0 = run;
  wait0 = wait;
}, 1);
Deno.unrefTimer(timer);
await import(pathToFileURL(resolve(script)).href);
