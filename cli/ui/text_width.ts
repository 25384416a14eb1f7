/**
 * How many terminal columns text takes, counted per grapheme cluster (what a person sees as one
 * character: `é` written as e + U+0301, a flag, a family emoji). East Asian wide and fullwidth
 * characters and emoji take two columns, combining marks and other invisible characters none,
 * and a tab is shown as {@linkcode TAB_WIDTH} spaces. Ambiguous-width characters count as
 * narrow, as terminals outside East Asian locales draw them.
 *
 * @example
 * ```ts
 * import { textWidth } from "./text_width.ts";
 * textWidth("héllo 中文 😀"); // 5 + 1 + 4 + 1 + 2 = 13
 * ```
 *
 * @module
 */
import { eastAsianWidth } from "get-east-asian-width";

/** Columns a tab takes on the chat screen (it is drawn as that many spaces). */
export const TAB_WIDTH = 4;

const segmenter = new Intl.Segmenter();
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Default_Ignorable_Code_Point}]/u;
const PICTOGRAPHIC = /\p{Extended_Pictographic}/u;
const REGIONAL_INDICATOR = /\p{Regional_Indicator}/u;
const ASCII = /^[\x20-\x7e]*$/;

/** The grapheme clusters of `text`, in order. */
export function graphemes(text: string): string[] {
  const out: string[] = [];
  for (const { segment } of segmenter.segment(text)) out.push(segment);
  return out;
}

/** Columns one grapheme cluster takes: 0, 1 or 2 (a tab: {@linkcode TAB_WIDTH}). */
export function graphemeWidth(g: string): number {
  const cp = g.codePointAt(0);
  if (cp === undefined) return 0;
  if (cp === 0x09) return TAB_WIDTH;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return 0; // controls (sanitized away before)
  if (cp < 0x7f) return 1; // ASCII, the common case
  if (ZERO_WIDTH.test(g)) return 0;
  // An emoji in emoji presentation (VS16), and a flag (two regional indicators), take two columns
  // even when their first code point alone is narrow.
  if (g.includes("\uFE0F") && PICTOGRAPHIC.test(g)) return 2;
  if (REGIONAL_INDICATOR.test(g) && g.length >= 4) return 2;
  return eastAsianWidth(cp);
}

/** Columns `text` takes on one row (the sum over its grapheme clusters). */
export function textWidth(text: string): number {
  let w = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f) w++;
    else return w + slowWidth(text.slice(i));
  }
  return w;
}

function slowWidth(text: string): number {
  let w = 0;
  for (const { segment } of segmenter.segment(text)) w += graphemeWidth(segment);
  return w;
}

/**
 * Rows `text` fills on a terminal `columns` wide, written from the first column: each `\n` starts
 * a new row, and long lines wrap as terminals wrap them (a two-column character that does not
 * fit in the last column of a row starts the next one). Empty text still takes one row.
 */
export function rowsOf(text: string, columns: number): number {
  let rows = 0;
  for (const line of text.split("\n")) {
    if (ASCII.test(line)) {
      rows += Math.max(1, Math.ceil(line.length / columns));
      continue;
    }
    let col = 0;
    rows++;
    for (const { segment } of segmenter.segment(line)) {
      const w = graphemeWidth(segment);
      if (col + w > columns && col > 0) {
        rows++;
        col = 0;
      }
      col += w;
    }
  }
  return rows;
}

/** `text` cut to at most `width` columns, ending in "…" when it was cut. */
export function truncateToWidth(text: string, width: number): string {
  if (textWidth(text) <= width) return text;
  let out = "";
  let w = 0;
  for (const { segment } of segmenter.segment(text)) {
    const gw = graphemeWidth(segment);
    if (w + gw > width - 1) break;
    out += segment;
    w += gw;
  }
  return out + "…";
}
