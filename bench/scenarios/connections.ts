/**
 * Connection ramp: `total` idle sockets, each with its mailbox open (v1: authenticated), opened
 * by several generator processes (each with `concurrency` handshakes in flight); server RSS per
 * socket and handshake+open times.
 *
 * RSS is read 2 s after the ramp and again after `settleMs` of idling: V8's memory reducer only
 * returns the handshakes' garbage and the heap's growth reserve to the OS after some seconds
 * without allocation (about 20-30 s here), and an idle relay holds its sockets for far longer
 * than that. Both figures are reported; the settled one is compared with the target.
 *
 * @module
 */
import { all, Gen } from "../lib/gen.ts";
import { Hist } from "../lib/hist.ts";
import { cpuSeconds, fdCount, rssKb, type Server, sleep } from "../lib/proc.ts";

/** Result of a connection ramp. */
export interface ConnOut {
  target: number;
  connected: number;
  failed: number;
  firstError?: string;
  gens: number;
  rampSec: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  /** (RSS after `settleSec` idle - RSS before) / connected, KiB. */
  kbPerSocket: number;
  /** The same, 2 s after the last socket authenticated. */
  kbPerSocketAfterRamp: number;
  /** How long the sockets idled before the settled reading. */
  settleSec: number;
  /** KiB/socket read every 5 s while settling, to show when the heap shrank. */
  settleSamples: Array<{ atSec: number; kbPerSocket: number }>;
  fdsBefore: number;
  fdsAfter: number;
  /** Server CPU-ms per accepted handshake (upgrade + challenge + auth verify). */
  cpuMsPerHandshake: number;
  handshake: { p50: number; p99: number; p999: number; max: number };
  auth: { p50: number; p99: number; p999: number; max: number };
}

/**
 * Ramps `server` to `total` idle authenticated sockets (with `centrifugoSecret`: Centrifugo
 * connections, each subscribed to a channel of its own).
 */
export async function connectionRamp(
  server: Pick<Server, "pid" | "url">,
  name: string,
  total: number,
  gensN: number,
  concurrency: number,
  settleMs = 40_000,
  centrifugoSecret?: string,
): Promise<ConnOut> {
  await sleep(500);
  const rss0 = rssKb(server.pid);
  const fd0 = fdCount(server.pid);
  const cpu0 = cpuSeconds(server.pid);
  const gens = Gen.startMany(gensN, `${name}-conn`);
  try {
    const per = Math.ceil(total / gensN);
    const t0 = performance.now();
    const rs = await all(
      gens,
      "idle",
      (i) => ({
        url: server.url,
        count: Math.min(per, total - i * per),
        concurrency,
        gen: i,
        ...(centrifugoSecret ? { protocol: "centrifugo", secret: centrifugoSecret } : {}),
      }),
      1_800_000,
    );
    const rampSec = (performance.now() - t0) / 1000;
    await sleep(2000);
    const rssRamp = rssKb(server.pid);
    const fd1 = fdCount(server.pid);
    const cpu = cpuSeconds(server.pid) - cpu0;
    let connectedNow = 0;
    for (const r of rs) connectedNow += r.connected;
    const perSocket = (rss: number) =>
      connectedNow ? Math.round((rss - rss0) / connectedNow * 10) / 10 : NaN;
    const settleSamples: Array<{ atSec: number; kbPerSocket: number }> = [];
    let rss1 = rssRamp;
    for (let at = 2; at * 1000 < settleMs;) {
      const step = Math.min(5, settleMs / 1000 - at);
      await sleep(step * 1000);
      at += step;
      rss1 = rssKb(server.pid);
      settleSamples.push({ atSec: at, kbPerSocket: perSocket(rss1) });
    }
    const hs = new Hist();
    const auth = new Hist();
    let connected = 0, failed = 0;
    let firstError: string | undefined;
    for (const r of rs) {
      hs.merge(Hist.fromJSON(r.hs));
      auth.merge(Hist.fromJSON(r.auth));
      connected += r.connected;
      failed += r.failed;
      firstError ??= r.firstError;
    }
    const pick = (h: Hist) => {
      const s = h.summaryMs();
      return { p50: s.p50, p99: s.p99, p999: s.p999, max: s.max };
    };
    return {
      target: total,
      connected,
      failed,
      firstError,
      gens: gensN,
      rampSec: Math.round(rampSec * 10) / 10,
      rssBeforeMb: Math.round(rss0 / 1024),
      rssAfterMb: Math.round(rss1 / 1024),
      kbPerSocket: perSocket(rss1),
      kbPerSocketAfterRamp: perSocket(rssRamp),
      settleSec: Math.round(settleMs / 1000),
      settleSamples,
      fdsBefore: fd0,
      fdsAfter: fd1,
      cpuMsPerHandshake: connected ? Math.round(cpu * 1000 / connected * 100) / 100 : NaN,
      handshake: pick(hs),
      auth: pick(auth),
    };
  } finally {
    await Promise.all(gens.map((g) => g.exit()));
  }
}
