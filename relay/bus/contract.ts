/**
 * The contract every `Bus` adapter passes: announcements reach every other subscribed instance
 * (every other relay) and never the one that published them, per-mailbox order holds, and publish
 * resolves only once taken.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Bus } from "../ports/bus.ts";
import type { ContractOptions } from "../mailbox/contract.ts";

/** Makes `n` bus instances that share one medium (like `n` relays on one Kafka topic). */
export type BusFactory = (n: number) => Promise<Bus[]>;

/** Waits until `cond()` holds, polling, or fails after `ms`. */
export async function waitFor(cond: () => boolean, ms = 20_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Registers the bus contract tests for one adapter. */
export function busContract(name: string, make: BusFactory, options: ContractOptions = {}): void {
  const t = (title: string, n: number, fn: (buses: Bus[]) => Promise<void>) =>
    Deno.test({
      name: `${name} bus contract: ${title}`,
      ...options.testOptions,
      fn: async () => {
        const buses = await make(n);
        try {
          await fn(buses);
        } finally {
          for (const b of buses) await b.close();
        }
      },
    });

  t("every other instance receives an announcement; the publisher does not", 3, async (buses) => {
    const seen = buses.map(() => [] as string[]);
    for (const [i, b] of buses.entries()) {
      await b.subscribe((mb, raw) => seen[i].push(`${mb}:${raw}`));
    }
    await buses[0].publish("alice", "e1");
    await waitFor(() => seen[1].length + seen[2].length === 2, 20_000, "e1 at the other two");
    // Each published after the one before arrived, for the same mailbox: whoever has e2 is past
    // e1 (bus 0's own), whoever has e3 is past e2 (bus 2's own).
    await buses[2].publish("alice", "e2");
    await waitFor(() => seen[0].length > 0 && seen[1].length === 2, 20_000, "e2 at the other two");
    await buses[0].publish("alice", "e3");
    await waitFor(() => seen[1].length === 3 && seen[2].length > 1, 20_000, "e3 at the other two");
    assert.deepEqual(seen, [
      ["alice:e2"],
      ["alice:e1", "alice:e2", "alice:e3"],
      ["alice:e1", "alice:e3"],
    ]);
  });

  t("per-mailbox order holds for concurrent publishes", 2, async (buses) => {
    const got: string[] = [];
    await buses[1].subscribe((mb, raw) => {
      if (mb === "carol") got.push(raw);
    });
    await buses[0].subscribe(() => {});
    const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
    await Promise.all(sent.map((raw) => buses[0].publish("carol", raw)));
    await waitFor(() => got.length >= sent.length, 20_000, "200 announcements");
    assert.deepEqual(got, sent);
  });

  t("after close, an instance receives nothing more", 3, async (buses) => {
    const late: string[] = [];
    const other: string[] = [];
    await buses[0].subscribe((_mb, raw) => late.push(raw));
    await buses[1].subscribe((_mb, raw) => other.push(raw));
    await buses[2].subscribe(() => {});
    await buses[0].close();
    await buses[2].publish("dave", "after-close");
    await waitFor(() => other.length === 1, 20_000, "the live instance's copy");
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(late, []);
  });

  t("check reports ok", 1, async ([b]) => {
    const s = await b.check();
    assert.equal(s.ok, true, s.detail);
  });
}
