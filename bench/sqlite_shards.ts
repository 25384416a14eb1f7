/**
 * `deno run -A bench/sqlite_shards.ts [--batch 20] [--puts 30000]`: would spreading the embedded
 * mailbox over several SQLite files (a writer thread each) overlap their fsyncs? Commits the same
 * puts through 1, 2 and 4 writers at once (synchronous=FULL, one file each) and prints puts/s and
 * commit latency for each. bench/README.md, finding 1.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";

const { values } = parseArgs({
  args: Deno.args,
  options: { batch: { type: "string", default: "20" }, puts: { type: "string", default: "30000" } },
});
const batch = Number(values.batch), puts = Number(values.puts);
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(xs.length * p))];

for (const shards of [1, 2, 4]) {
  const dir = await Deno.makeTempDir({ prefix: "chat-shards-" });
  const t0 = performance.now();
  const all = await Promise.all(
    Array.from({ length: shards }, (_, k) =>
      new Promise<number[]>((resolve, reject) => {
        const w = new Worker(new URL("./sqlite_shards_worker.ts", import.meta.url), {
          type: "module",
        });
        w.onmessage = (e: MessageEvent<number[]>) => {
          w.terminate();
          resolve(e.data);
        };
        w.onerror = (e) => {
          e.preventDefault();
          w.terminate();
          reject(new Error(e.message));
        };
        w.postMessage({ path: join(dir, `s${k}.db`), batches: puts / batch / shards, batch });
      })),
  );
  const wall = performance.now() - t0;
  const lat = all.flat().sort((a, b) => a - b);
  console.log(
    `${shards} writer(s), batches of ${batch}: ${Math.round(puts / wall * 1000)} puts/s, ` +
      `commit p50 ${pct(lat, 0.5).toFixed(2)} ms, p99 ${pct(lat, 0.99).toFixed(2)} ms`,
  );
  await Deno.remove(dir, { recursive: true });
}
