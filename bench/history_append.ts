/**
 * History append cost through client/store/message_log.ts: median ms per `appendMessage` on an empty log
 * and on a log already holding 100k messages, and the time to open the 100k log.
 *
 * Usage: deno run -A bench/history_append.ts <dir>   (prints one JSON line)
 *
 * @module
 */
import { join } from "node:path";
import { MessageLog } from "@chat-p2p/client";

const dir = Deno.args[0] ?? await Deno.makeTempDir();
const APPENDS = 200;
const at = new Date().toISOString();

function timeAppends(log: MessageLog, tag: string): number {
  const ts: number[] = [];
  for (let i = 0; i < APPENDS; i++) {
    const t = performance.now();
    log.appendMessage({ id: `${tag}${i}`, dir: "in", text: "hello there", sent_at: at, at });
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return Math.round(ts[Math.floor(ts.length / 2)] * 1000) / 1000;
}

const empty = join(dir, "empty.jsonl");
await Deno.remove(empty).catch(() => {});
const appendAt0Ms = timeAppends(MessageLog.open(empty), "a");

const big = join(dir, "big.jsonl");
const lines: string[] = [];
for (let i = 0; i < 100_000; i++) {
  lines.push(
    JSON.stringify({
      t: "msg",
      id: `old${i}`,
      dir: i % 2 ? "in" : "out",
      text: `message number ${i}`,
      sent_at: at,
      at,
    }),
  );
}
await Deno.writeTextFile(big, lines.join("\n") + "\n");
const t = performance.now();
const log = MessageLog.open(big);
const openAt100kMs = Math.round((performance.now() - t) * 10) / 10;
const appendAt100kMs = timeAppends(log, "b");
console.log(JSON.stringify({ appendAt0Ms, appendAt100kMs, openAt100kMs, appends: APPENDS }));
