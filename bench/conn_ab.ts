/**
 * `deno run -A bench/conn_ab.ts --a <checkout> --b <checkout> [--rounds 2] [--sockets 5000]
 * [--settle-ms 40000]`: idle memory per socket and handshake p99 of two checkouts of the relay,
 * A B A B…, each a fresh embedded relay under the connections section's ramp (4 generators, 16
 * handshakes in flight each). Prints KiB of RSS per socket at each settle sample, so a change to
 * per-socket state is judged on alternating runs, not on two full benches apart.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { stopAll } from "./lib/proc.ts";
import { embeddedTarget } from "./lib/targets.ts";
import { connectionRamp } from "./scenarios/connections.ts";

const { values: o } = parseArgs({
  args: Deno.args,
  options: {
    a: { type: "string" },
    b: { type: "string" },
    rounds: { type: "string", default: "2" },
    sockets: { type: "string", default: "5000" },
    "settle-ms": { type: "string", default: "40000" },
  },
});
if (!o.a || !o.b) {
  console.error(
    "usage: deno run -A bench/conn_ab.ts --a DIR --b DIR [--rounds N] [--sockets N] [--settle-ms MS]",
  );
  Deno.exit(2);
}
const work = await Deno.makeTempDir({ prefix: "chat-conn-ab-" });
const sides = [["A", o.a], ["B", o.b]] as const;
try {
  for (let round = 1; round <= Number(o.rounds); round++) {
    for (const [side, dir] of sides) {
      const ctx = { work, relayScript: join(resolve(dir), "relay/main.ts") };
      const { target, stop } = await embeddedTarget(ctx, `conn-${side}`).start();
      try {
        const c = await connectionRamp(
          { pid: target.pids[0], url: target.senderUrl },
          `conn-${side}`,
          Number(o.sockets),
          4,
          16,
          Number(o["settle-ms"]),
          target.secret,
        );
        const samples = c.settleSamples.map((s) => `${s.atSec}s ${s.kbPerSocket}`).join(", ");
        console.log(
          `${side}#${round}: ${c.connected} up; KiB/socket ${c.kbPerSocket} after ${c.settleSec} s ` +
            `(${c.kbPerSocketAfterRamp} after the ramp; ${samples}); handshake p50/p99 ` +
            `${c.handshake.p50}/${c.handshake.p99} ms`,
        );
      } finally {
        await stop();
      }
    }
  }
} finally {
  await stopAll();
  await Deno.remove(work, { recursive: true }).catch(() => {});
}
