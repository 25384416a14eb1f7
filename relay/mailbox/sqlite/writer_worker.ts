/**
 * Worker entry for {@linkcode SqliteWriter}: owns the mailbox's write connection so that each
 * commit's fsync waits here, not on the relay's event loop. The messages, in order, are
 * `open`, then `batch` …, then `close` ({@linkcode serveWriter} in writer.ts).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { serveWriter } from "./writer.ts";

serveWriter(self);
