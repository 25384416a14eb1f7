/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof`): top functions by self time, top by
 * inclusive time, and self time per source file.
 *
 * Usage: deno run -A bench/profile_summary.ts <file.cpuprofile> [--top 20] [--exclude REGEX]
 * (`--exclude` drops samples with a matching frame on their stack, e.g. the handshake:
 * `--exclude '#auth relay/core/session.ts'`).
 *
 * @module
 */
import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
/** The parts of a .cpuprofile this reads. */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** One row of the summary. */
export interface ProfileRow {
  name: string;
  ms: number;
  pct: number;
}

/** Summary of a profile. */
export interface ProfileSummary {
  totalMs: number;
  /** Time not idle: everything except (idle) and excluded stacks. */
  busyMs: number;
  /** Samples dropped because a frame on their stack matched `exclude`. */
  excludedMs: number;
  excludeRule?: string;
  topSelf: ProfileRow[];
  topTotal: ProfileRow[];
  byFile: ProfileRow[];
}

function shortUrl(url: string): string {
  if (!url) return "";
  const m = /\/(relay|shared|cli|bench|tests)\/[^/]+$/.exec(url);
  if (m) return m[0].slice(1);
  const npm = /npm\/registry\.npmjs\.org\/([^/]+)\/[^/]+\/(.*)$/.exec(url);
  if (npm) return `npm:${npm[1]}/${npm[2]}`;
  return url.replace(/^file:\/\/\/.*\/node_modules\//, "npm:").replace(/^ext:/, "ext:");
}

function keyOf(f: CallFrame): string {
  const name = f.functionName || "(anonymous)";
  const u = shortUrl(f.url);
  return u ? `${name} ${u}:${f.lineNumber + 1}` : name;
}

/** Computes the summary. */
export function summarise(p: CpuProfile, top = 20, exclude?: RegExp): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    // timeDeltas[i + 1] is the time spent in sample i (the last sample gets the mean).
    const d = i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : total / Math.max(1, i);
    const dt = Math.max(0, d);
    selfUs.set(p.samples[i], (selfUs.get(p.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const file = new Map<string, number>();
  let idle = 0;
  let excluded = 0;
  const stackMatches = (id: number) => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      if (exclude!.test(keyOf(byId.get(cur)!.callFrame))) return true;
    }
    return false;
  };
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    if (exclude && stackMatches(id)) {
      excluded += us;
      continue;
    }
    if (n.callFrame.functionName === "(idle)") idle += us;
    const k = keyOf(n.callFrame);
    self.set(k, (self.get(k) ?? 0) + us);
    const f = shortUrl(n.callFrame.url) || n.callFrame.functionName || "(native)";
    file.set(f, (file.get(f) ?? 0) + us);
    // inclusive: charge every distinct function on the stack once
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const kk = keyOf(byId.get(cur)!.callFrame);
      if (seen.has(kk)) continue;
      seen.add(kk);
      incl.set(kk, (incl.get(kk) ?? 0) + us);
    }
  }
  const busy = total - idle - excluded;
  const rows = (m: Map<string, number>, skip: (k: string) => boolean = () => false) =>
    [...m].filter(([k]) => !skip(k)).sort((a, b) => b[1] - a[1]).slice(0, top).map((
      [name, us],
    ) => ({
      name,
      ms: Math.round(us / 100) / 10,
      pct: busy > 0 ? Math.round(us / busy * 1000) / 10 : 0,
    }));
  const noise = (k: string) => k === "(idle)" || k === "(root)" || k === "(program)";
  return {
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    excludedMs: Math.round(excluded / 1000),
    ...(exclude ? { excludeRule: String(exclude) } : {}),
    topSelf: rows(self, noise),
    topTotal: rows(incl, noise),
    byFile: rows(file, noise),
  };
}

/** Text form of the summary. */
export function render(s: ProfileSummary): string {
  const t = (title: string, rows: ProfileRow[]) =>
    [
      `${title}`,
      ...rows.map((r) =>
        `  ${r.pct.toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(6)} ms  ${r.name}`
      ),
    ]
      .join("\n");
  return [
    `profile: ${s.totalMs} ms sampled, ${s.busyMs} ms busy (percentages are of busy time)` +
    (s.excludeRule ? `; ${s.excludedMs} ms under ${s.excludeRule} left out` : ""),
    t("top self time:", s.topSelf),
    t("top inclusive time:", s.topTotal),
    t("self time by file:", s.byFile),
  ].join("\n");
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { top: { type: "string", default: "20" }, exclude: { type: "string" } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) {
    console.error("usage: deno run -A bench/profile_summary.ts <file.cpuprofile> [--top N]");
    Deno.exit(2);
  }
  const p = JSON.parse(Deno.readTextFileSync(positionals[0])) as CpuProfile;
  const ex = values.exclude ? new RegExp(values.exclude) : undefined;
  console.log(render(summarise(p, Number(values.top), ex)));
}
