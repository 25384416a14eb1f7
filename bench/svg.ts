/**
 * Latency-vs-load chart as a self-contained SVG (no plotting dependency): p50 and p99 against the
 * offered rate, log-log axes, one colour per target, solid p99 and dashed p50.
 *
 * @module
 */

/** One target's curve. */
export interface Series {
  name: string;
  color: string;
  points: Array<{ rate: number; p50: number; p99: number }>;
}

const W = 820, H = 500, L = 70, R = 190, T = 40, B = 60;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function ticks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

function fmt(v: number): string {
  return v >= 1000 ? `${v / 1000}k` : String(v);
}

/** Renders the chart. */
export function latencyChart(series: Series[], title: string, limitMs = 20): string {
  const pts = series.flatMap((s) => s.points).filter((p) => p.rate > 0);
  if (pts.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="80"><text x="10" y="40">no data</text></svg>`;
  }
  const xs = pts.map((p) => p.rate);
  const ys = pts.flatMap((p) => [p.p50, p.p99]).filter((v) => v > 0 && Number.isFinite(v));
  const xlo = 10 ** Math.floor(Math.log10(Math.min(...xs)));
  const xhi = 10 ** Math.ceil(Math.log10(Math.max(...xs)));
  const ylo = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...ys, limitMs))));
  const yhi = 10 ** Math.ceil(Math.log10(Math.max(...ys, limitMs)));
  const x = (v: number) => L + (Math.log10(v / xlo) / Math.log10(xhi / xlo)) * (W - L - R);
  const y = (v: number) =>
    H - B - (Math.log10(Math.max(v, ylo) / ylo) / Math.log10(yhi / ylo)) * (H - T - B);
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
  );
  for (const v of ticks(xlo, xhi)) {
    out.push(
      `<line x1="${x(v)}" y1="${T}" x2="${x(v)}" y2="${H - B}" stroke="#eee"/>`,
      `<text x="${x(v)}" y="${H - B + 16}" text-anchor="middle">${fmt(v)}</text>`,
    );
  }
  for (const v of ticks(ylo, yhi)) {
    out.push(
      `<line x1="${L}" y1="${y(v)}" x2="${W - R}" y2="${y(v)}" stroke="#eee"/>`,
      `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    );
  }
  out.push(
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${
      H - T - B
    }" fill="none" stroke="#999"/>`,
    `<line x1="${L}" y1="${y(limitMs)}" x2="${W - R}" y2="${
      y(limitMs)
    }" stroke="#c00" stroke-dasharray="2,3"/>`,
    `<text x="${W - R - 4}" y="${
      y(limitMs) - 4
    }" text-anchor="end" fill="#c00">p99 limit ${limitMs} ms</text>`,
    `<text x="${(L + W - R) / 2}" y="${
      H - 18
    }" text-anchor="middle">offered load (messages/s, log scale)</text>`,
    `<text transform="translate(18 ${
      (T + H - B) / 2
    }) rotate(-90)" text-anchor="middle">delivery latency (ms, log scale)</text>`,
  );
  let ly = T + 10;
  for (const s of series) {
    const ps = s.points.filter((p) => p.rate > 0).sort((a, b) => a.rate - b.rate);
    for (const [key, dash] of [["p99", ""], ["p50", ' stroke-dasharray="6,4"']] as const) {
      const good = ps.filter((p) => p[key] > 0 && Number.isFinite(p[key]));
      if (good.length === 0) continue;
      const d = good.map((p, i) =>
        `${i ? "L" : "M"}${x(p.rate).toFixed(1)},${y(p[key]).toFixed(1)}`
      ).join(" ");
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
      for (const p of good) {
        out.push(
          `<circle cx="${x(p.rate).toFixed(1)}" cy="${
            y(p[key]).toFixed(1)
          }" r="3" fill="${s.color}"><title>${
            esc(`${s.name} ${key} ${p[key]} ms at ${p.rate}/s`)
          }</title></circle>`,
        );
      }
      out.push(
        `<line x1="${W - R + 14}" y1="${ly}" x2="${
          W - R + 44
        }" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`,
        `<text x="${W - R + 50}" y="${ly + 4}">${esc(`${s.name} ${key}`)}</text>`,
      );
      ly += 20;
    }
  }
  out.push("</svg>");
  return out.join("\n");
}
