/**
 * Worker for `bench/sqlite_shards.ts`: one SQLite writer (relay/mailbox/sqlite/writer.ts) committing
 * `batches` batches of `batch` 400-byte puts over 100 mailboxes; posts its commit latencies.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { SqliteWriter, type WriteOp } from "../relay/mailbox/sqlite/writer.ts";

self.onmessage = (e: MessageEvent<{ path: string; batches: number; batch: number }>) => {
  const { path, batches, batch } = e.data;
  const w = new SqliteWriter(path, {
    limits: { maxCount: 1e9, maxBytes: 1e15, maxAgeMs: 1e15 },
    reserveBytes: 0,
  });
  const raw = "x".repeat(400);
  const ms: number[] = [];
  for (let i = 0; i < batches; i++) {
    const ops: WriteOp[] = [];
    for (let j = 0; j < batch; j++) {
      ops.push({ op: "put", mailbox: `m${(i * batch + j) % 100}`, id: `i${i}-${j}`, raw, now: 1 });
    }
    const t = performance.now();
    w.apply(ops);
    ms.push(performance.now() - t);
  }
  w.close();
  self.postMessage(ms);
};
