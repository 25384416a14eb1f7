/**
 * Measures what senders and live recipients see while a backend is away: how long a send waits
 * for its answer during the outage, and how long after the service is back live pushes resume.
 * Used by the chaos test (bounds) and by bench/recovery.ts (the figures).
 *
 * @module
 */
import { deadline, isTimeoutError } from "@chat-p2p/protocol/async";
import { envelope, pairBox, RawClient } from "./raw_client.ts";
import { runServicesScript, servicePid } from "./services.ts";

/** What one outage looked like from the clients' side. */
export interface OutageFigures {
  /** Answer time of each send refused during the outage, ms. */
  refusedMs: number[];
  /** Sends accepted during the whole run. */
  accepted: string[];
  /** From the service answering again (`services.sh up` returned) to the first live push. */
  liveAfterMs: number;
  /** How long `services.sh up` took (a killed broker recovers its log first). */
  upMs: number;
}

/**
 * Runs one outage of `which` under a steady stream of sends (one every `everyMs`, each waiting
 * for its answer) through `url`, with a live recipient on `liveUrl`: stops the service (`kill`:
 * SIGKILL, as a crash; otherwise a clean `services.sh down`), keeps sending for `downMs`, starts
 * it again, and waits until a push reaches the live recipient.
 */
export async function measureOutage(opts: {
  which: "kafka" | "redis";
  url: string;
  liveUrl?: string;
  kill?: boolean;
  downMs?: number;
  everyMs?: number;
  timeoutMs?: number;
}): Promise<OutageFigures> {
  const { which, url, kill = false, downMs = 3000, everyMs = 50, timeoutMs = 60_000 } = opts;
  const carol = pairBox();
  await using c = await RawClient.reader(opts.liveUrl ?? url, carol);
  await using a = await RawClient.connect(url);
  const accepted: string[] = [], refusedMs: number[] = [];
  const at = { phase: "before" as "before" | "down" | "back", up: 0, live: 0 };
  const sending = (async () => {
    while (at.live === 0) {
      const e = envelope(carol);
      const t0 = performance.now();
      a.sendEnvelope(e);
      for (;;) {
        const f = await a.next(undefined, timeoutMs);
        if (f.type === "accepted" && f.id === e.id) {
          accepted.push(e.id);
          break;
        }
        if (f.type === "error" && f.id === e.id) {
          if (at.phase === "down") refusedMs.push(performance.now() - t0);
          break;
        }
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  const watching = (async () => {
    for (;;) {
      await c.next("deliver", timeoutMs);
      if (at.phase === "back") {
        at.live = performance.now();
        return;
      }
    }
  })();
  await new Promise((r) => setTimeout(r, 500));
  at.phase = "down";
  if (kill) {
    const pid = servicePid(which);
    if (pid === undefined) throw new Error(`scripts/services.sh runs no ${which} to kill`);
    Deno.kill(pid, "SIGKILL");
  } else await runServicesScript(["down", which]);
  await new Promise((r) => setTimeout(r, downMs));
  const t0 = performance.now();
  await runServicesScript(["up", which]);
  at.up = performance.now();
  at.phase = "back";
  await deadline(watching, timeoutMs).catch((e) => {
    throw isTimeoutError(e) ? new Error(`no live push within ${timeoutMs} ms`) : e;
  });
  await sending;
  return { refusedMs, accepted, liveAfterMs: at.live - at.up, upMs: at.up - t0 };
}
