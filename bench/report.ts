/**
 * The bench's tables: the main table (metric, result, reference from the same run, ratio, target,
 * met) and the two side-by-side tables of the throughput grids in the layout (chat-p2p
 * beside Centrifugo).
 *
 * @module
 */
import type { AtRate, GridOut } from "./scenarios/grid.ts";

/** One row of the main table. */
export type Row = [string, string, string, string, string, string];

/** a / b rounded to 0.01; NaN when b is not positive. */
export const ratio = (a: number, b: number): number => b > 0 ? Math.round(a / b * 100) / 100 : NaN;

/** "yes" or a bold "no". */
export const yes = (ok: boolean): string => ok ? "yes" : "**no**";

const k = (n: number) => n.toLocaleString("en-US");

/** The grid entry at `rate`, if it ran there. */
export function at(g: GridOut | undefined, rate: number): AtRate | undefined {
  return g?.atRates.find((a) => a.rate === rate);
}

/** "8,000/s [4,000–12,000]": the rate passed in every round, and the rounds' own maxima. */
export function passText(g: GridOut): string {
  const [lo, hi] = g.passRange;
  return `${k(g.passEvery)}/s` + (g.rounds.length > 1 && lo !== hi ? ` [${k(lo)}–${k(hi)}]` : "");
}

/** Total CPU-s per million at `rate` (servers and backends), or "-". */
export function cpuAt(g: GridOut | undefined, rate: number): number {
  return at(g, rate)?.totalCpuPerM ?? NaN;
}

/** p50 / p99 / p99.9 at `rate` (medians over the rounds), or "-". */
export function latAt(g: GridOut | undefined, rate: number): string {
  const a = at(g, rate);
  return a ? `${a.p50} / ${a.p99} / ${a.p999} ms` : "-";
}

/** Markdown of rows under a header. */
export function markdown(header: string[], rows: string[][]): string {
  return [header, header.map(() => "---"), ...rows]
    .map((r) => `| ${r.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`).join("\n");
}

/**
 * A side-by-side table of grid results: passing rate (every round, [range]), lossless rate,
 * p99 at `p99Rates`, CPU-s per million (servers + backends) at `cpuRates`, and the promise.
 */
export function gridTable(gs: GridOut[], p99Rates: number[], cpuRates: number[]): string {
  const header = [
    "setup",
    "passes in every round (p99 ≤ 20 ms, 0 lost) [range of rounds]",
    "lossless in every round",
    `p99 at ${p99Rates.map(k).join(" / ")} msg/s`,
    `CPU-s per M msgs at ${cpuRates.map(k).join(" / ")} msg/s`,
    "an accepted message is",
  ];
  const rows = gs.map((g) => [
    g.name,
    passText(g),
    `${k(g.losslessEvery)}/s`,
    p99Rates.map((r) => at(g, r)?.p99 ?? "-").join(" / ") + " ms",
    cpuRates.map((r) => {
      const c = cpuAt(g, r);
      return Number.isFinite(c) ? String(Math.round(c)) : "-";
    }).join(" / "),
    g.promise,
  ]);
  return markdown(header, rows);
}

/** Main-table row comparing a passing rate with a reference's (target: at least the reference). */
export function rateRow(metric: string, mine: GridOut, ref: GridOut | undefined): Row {
  const r = ref ? ratio(mine.passEvery, ref.passEvery) : NaN;
  return [
    metric,
    `${passText(mine)}; lossless ${k(mine.losslessEvery)}/s`,
    ref ? `${ref.name} ${passText(ref)}; lossless ${k(ref.losslessEvery)}/s` : "not run",
    String(r),
    "≥ 1.0",
    ref ? yes(r >= 1) : "",
  ];
}

/** Main-table row comparing CPU per million at `rate` (target: at most `limit` × the reference). */
export function cpuRow(
  metric: string,
  mine: GridOut,
  ref: GridOut | undefined,
  rate: number,
  limit: number,
): Row {
  const a = cpuAt(mine, rate), b = cpuAt(ref, rate);
  const r = ratio(a, b);
  const split = (g: GridOut) => {
    const x = at(g, rate);
    return x?.backendCpuPerM !== undefined
      ? ` (servers ${Math.round(x.relayCpuPerM)} + backends ${Math.round(x.backendCpuPerM)})`
      : "";
  };
  return [
    metric,
    Number.isFinite(a) ? `${Math.round(a)} CPU-s per M${split(mine)}` : `not run at ${k(rate)}/s`,
    ref && Number.isFinite(b) ? `${ref.name} ${Math.round(b)}${split(ref)}` : "not run",
    String(r),
    `≤ ${limit}×`,
    Number.isFinite(r) ? yes(r <= limit) : "",
  ];
}
