import assert from "node:assert/strict";
import {
  graphemes,
  graphemeWidth,
  rowsOf,
  TAB_WIDTH,
  textWidth,
  truncateToWidth,
} from "./text_width.ts";

Deno.test("text_width: clusters are what a person sees as one character", () => {
  assert.deepEqual(graphemes("e\u0301a"), ["e\u0301", "a"]);
  assert.deepEqual(graphemes("👨‍👩‍👧🇩🇪"), ["👨‍👩‍👧", "🇩🇪"]);
  assert.equal(graphemes("😀".repeat(8193)).length, 8193);
});

Deno.test("text_width: narrow, wide, emoji, combining, tab", () => {
  const cases: Array<[string, number]> = [
    ["a", 1],
    ["é", 1],
    ["e\u0301", 1],
    ["中", 2],
    ["ｱ", 1], // halfwidth katakana
    ["Ａ", 2], // fullwidth A
    ["😀", 2],
    ["❤️", 2], // text-default heart in emoji presentation (VS16)
    ["❤", 1],
    ["🇩🇪", 2],
    ["\u0301", 0], // a combining mark on its own
    ["\u200b", 0], // zero-width space
    ["\t", TAB_WIDTH],
    ["…", 1], // ambiguous: narrow
  ];
  for (const [g, w] of cases) assert.equal(graphemeWidth(g), w, JSON.stringify(g));
  assert.equal(textWidth("héllo 中文 😀"), 13);
  assert.equal(textWidth("plain ascii"), 11);
  assert.equal(textWidth(""), 0);
});

Deno.test("text_width: rowsOf wraps as a terminal does, wide characters whole", () => {
  assert.equal(rowsOf("", 10), 1);
  assert.equal(rowsOf("a".repeat(10), 10), 1, "a full row does not start another");
  assert.equal(rowsOf("a".repeat(11), 10), 2);
  assert.equal(rowsOf("a\nb\n", 10), 3, "each newline starts a row, empty ones too");
  // 9 columns of a, then 中 does not fit in the last column: it starts row 2.
  assert.equal(rowsOf("a".repeat(9) + "中", 10), 2);
  assert.equal(rowsOf("中".repeat(5), 10), 1);
  assert.equal(rowsOf("中".repeat(5) + "x", 10), 2);
  assert.equal(rowsOf("😀".repeat(100), 110), 2);
});

Deno.test("text_width: truncateToWidth cuts by columns and says so", () => {
  assert.equal(truncateToWidth("hello", 5), "hello");
  assert.equal(truncateToWidth("hello world", 8), "hello w…");
  assert.equal(truncateToWidth("中文中文", 6), "中文…");
  assert.equal(textWidth(truncateToWidth("中文中文", 6)), 5, "never past the width");
});
