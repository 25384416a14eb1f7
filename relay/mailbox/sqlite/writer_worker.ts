/**
 * Worker entry for {@linkcode SqliteWriter}: owns the mailbox's write connection so that each
 * commit's fsync waits here, not on the relay's event loop. Messages, in order:
 *
 * - in: `{ t: "open", path, limits }`, then `{ t: "batch", n, ops }` …, then `{ t: "close", n }`
 * - out: `{ t: "ready", totals }` or `{ t: "failed", message }` for the open; `{ n, results,
 *   totals }` or `{ n, error }` for each batch; `{ n, closed: true }` for the close. `totals`
 *   is what the store holds over all mailboxes (for the relay's metrics).
 *
 * `ops` and `results` are JSON text of `WriteOp[]` and `WriteResult[]`: one string crosses the
 * thread boundary faster than the structured clone of an array of objects (profiled: the clone
 * was the relay thread's largest single cost after the move to a worker).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { MailboxLimits } from "../../ports/mailbox.ts";
import { SqliteWriter } from "./writer.ts";
import { errorMessage } from "../../ports/errors.ts";

/** What the mailbox sends to the writer. */
export type WriterRequest =
  | { t: "open"; path: string; limits: MailboxLimits }
  | { t: "batch"; n: number; ops: string }
  | { t: "close"; n: number };

let writer: SqliteWriter | undefined;

self.onmessage = (e: MessageEvent<WriterRequest>) => {
  const m = e.data;
  if (m.t === "open") {
    try {
      writer = new SqliteWriter(m.path, m.limits);
      self.postMessage({ t: "ready", totals: writer.totals() });
    } catch (err) {
      self.postMessage({ t: "failed", message: errorMessage(err) });
    }
  } else if (m.t === "batch") {
    if (!writer) return self.postMessage({ n: m.n, error: "sqlite writer is not open" });
    try {
      const results = JSON.stringify(writer.apply(JSON.parse(m.ops)));
      self.postMessage({ n: m.n, results, totals: writer.totals() });
    } catch (err) {
      self.postMessage({ n: m.n, error: errorMessage(err) });
    }
  } else if (m.t === "close") {
    try {
      writer?.close();
    } finally {
      writer = undefined;
      self.postMessage({ n: m.n, closed: true });
    }
  }
};
