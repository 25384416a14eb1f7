/**
 * Connection ramp: `total` authenticated idle sockets opened by several generator processes
 * (each with `concurrency` handshakes in flight); server RSS per socket and handshake+auth times.
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
  /** (RSS after - RSS before) / connected, KiB. */
  kbPerSocket: number;
  fdsBefore: number;
  fdsAfter: number;
  /** Server CPU-ms per accepted handshake (upgrade + challenge + auth verify). */
  cpuMsPerHandshake: number;
  handshake: { p50: number; p99: number; p999: number; max: number };
  auth: { p50: number; p99: number; p999: number; max: number };
}

/** Ramps `server` to `total` idle authenticated sockets. */
export async function connectionRamp(
  server: Server,
  name: string,
  total: number,
  gensN: number,
  concurrency: number,
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
      (i) => ({ url: server.url, count: Math.min(per, total - i * per), concurrency }),
      1_800_000,
    );
    const rampSec = (performance.now() - t0) / 1000;
    await sleep(2000);
    const rss1 = rssKb(server.pid);
    const fd1 = fdCount(server.pid);
    const cpu = cpuSeconds(server.pid) - cpu0;
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
      kbPerSocket: connected ? Math.round((rss1 - rss0) / connected * 10) / 10 : NaN,
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
