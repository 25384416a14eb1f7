/**
 * Chaos under load (issue 12): two relays on Kafka and Redis carry a steady stream of sends to
 * recipients connected to both, while one relay is killed with SIGKILL and started again, Redis
 * is restarted, and the Kafka broker is killed with SIGKILL and started again. Every envelope a
 * sender saw `accepted` reaches its recipient; while the broker is away sends are answered
 * `unavailable` rather than left waiting, and live pushes resume after its return. The targets
 * (an answer within 1 s, pushes within 3 s) are measured by bench/recovery.ts, not asserted here:
 * the bounds below only catch a hang.
 */
import assert from "node:assert/strict";
import { drainAll } from "./crash_helpers.ts";
import { measureOutage } from "./outage.ts";
import { envelope, pairBox, RawClient, type TestMailbox } from "./raw_client.ts";
import { RelayProcess } from "./relay_process.ts";
import { requireManaged, runServicesScript, scaledRelayEnv, servicesTest } from "./services.ts";

/** A refused send waits for no client-side timeout (the bus's publish timeout is 750 ms). */
const REFUSED_WITHIN_MS = 10_000;
/** Live pushes come back on their own after the broker's return (measured about 1 s). */
const LIVE_WITHIN_MS = 30_000;

/**
 * A client that keeps a socket to `url` open, reconnecting when the relay goes away: a reader of
 * `box` when it has one, else a sender (a socket that opens nothing).
 */
class Steady {
  socket?: RawClient;
  stopped = false;
  readonly box?: TestMailbox;
  readonly url: () => string;
  readonly received = new Set<string>();

  constructor(url: () => string, box?: TestMailbox) {
    this.url = url;
    this.box = box;
  }

  /** Connects (retrying while the relay is away) and runs `onFrame` on every frame. */
  async run(onFrame: (c: RawClient, f: Record<string, unknown>) => void): Promise<void> {
    while (!this.stopped) {
      let c: RawClient;
      try {
        c = this.box
          ? await RawClient.reader(this.url(), this.box)
          : await RawClient.connect(this.url());
      } catch {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      this.socket = c;
      for (;;) {
        const f = await c.next(undefined, 600_000).catch(() => undefined);
        if (!f) break;
        onFrame(c, f);
      }
      await c.close();
    }
  }
}

await servicesTest(
  "chaos: relay kill -9, Redis restart, Kafka kill -9 under load: nothing accepted is lost",
  async (svc) => {
    if (!requireManaged(svc, "the chaos test")) return;
    const env = {
      RELAY_FRAME_RATE: "0",
      RELAY_SEND_RATE: "0",
      ...scaledRelayEnv(svc, "chaos"),
    };
    await using a = await RelayProcess.start({ env });
    let b = await RelayProcess.start({ env });
    const urls = [() => a.url, () => b.url];
    try {
      // Recipients on both relays ack what they get; senders on both relays send to all of them.
      const recipients = Array.from({ length: 6 }, (_, i) => new Steady(urls[i % 2], pairBox()));
      const accepted = new Map<string, Steady>();
      const receiving = recipients.map((r) =>
        r.run((c, f) => {
          if (f.type !== "deliver") return;
          const id = (f.envelope as { id: string }).id;
          r.received.add(id);
          c.ack(r.box!, [id]);
        })
      );
      const senders = urls.map((url) => new Steady(url));
      const waiting = new Map<string, Steady>();
      const sending = senders.map((s) =>
        s.run((_c, f) => {
          const to = typeof f.id === "string" ? waiting.get(f.id) : undefined;
          if (to && f.type === "accepted") accepted.set(f.id as string, to);
        })
      );
      const pacing = senders.map(async (s) => {
        for (let i = 0; !s.stopped; i++) {
          const to = recipients[i % recipients.length];
          const e = envelope(to.box!);
          waiting.set(e.id, to);
          try {
            s.socket?.sendEnvelope(e);
          } catch { /* reconnecting */ }
          await new Promise((r) => setTimeout(r, 40));
        }
      });
      const acceptedNow = () => accepted.size;
      const grows = async (what: string) => {
        const before = acceptedNow(), end = Date.now() + 30_000;
        while (acceptedNow() < before + 20) {
          if (Date.now() > end) throw new Error(`no sends accepted after ${what}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      await grows("start");

      // 1. A relay dies mid-stream and comes back on its port.
      await b.stop("SIGKILL");
      b = await RelayProcess.start({ env, port: b.port });
      await grows("the relay's restart");

      // 2. Redis restarts.
      await runServicesScript(["down", "redis"]);
      await new Promise((r) => setTimeout(r, 1000));
      await runServicesScript(["up", "redis"]);
      await grows("the Redis restart");

      // 3. The broker is killed; measured with a sender on one relay, a live recipient on the other.
      const kafka = await measureOutage({
        which: "kafka",
        kill: true,
        url: a.url,
        liveUrl: b.url,
        downMs: 2000,
        timeoutMs: LIVE_WITHIN_MS,
      });
      assert.ok(kafka.refusedMs.length > 0, "sends were refused while the broker was away");
      const slowest = Math.max(...kafka.refusedMs);
      assert.ok(slowest <= REFUSED_WITHIN_MS, `a refused send waited ${Math.round(slowest)} ms`);
      assert.ok(
        kafka.liveAfterMs <= LIVE_WITHIN_MS,
        `live pushes resumed ${Math.round(kafka.liveAfterMs)} ms after the broker was back`,
      );
      await grows("the Kafka restart");

      // Stop the load; every accepted envelope must reach its recipient (live, or now).
      for (const s of senders) s.stopped = true;
      await Promise.all(pacing);
      await new Promise((r) => setTimeout(r, 1000));
      for (const s of [...senders, ...recipients]) {
        s.stopped = true;
        await s.socket?.close();
      }
      await Promise.all([...sending, ...receiving]);
      for (const r of recipients) {
        for (const id of await drainAll(a.url, r.box!)) r.received.add(id);
      }
      const lost = [...accepted].filter(([id, to]) => !to.received.has(id)).map(([id]) => id);
      assert.deepEqual(lost, [], `${lost.length} of ${accepted.size} accepted envelopes lost`);
      assert.ok(accepted.size >= 100, `only ${accepted.size} sends accepted`);
    } finally {
      await b.stop("SIGKILL");
    }
  },
  { sanitizeOps: false, sanitizeResources: false },
);
