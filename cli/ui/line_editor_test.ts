import assert from "node:assert/strict";
import { layoutRows, LineEditor } from "./line_editor.ts";
import { graphemes, graphemeWidth } from "./text_width.ts";

/** The draft with a `|` where the cursor is. */
function shown(ed: LineEditor): string {
  const gs = ed.clusters;
  return gs.slice(0, ed.cursor).join("") + "|" + gs.slice(ed.cursor).join("");
}

function editor(text = "", maxLength = 100): LineEditor {
  const ed = new LineEditor({ maxLength });
  assert.equal(ed.insert(text), undefined);
  return ed;
}

Deno.test("line_editor: moving and deleting by cluster, word and line", () => {
  const ed = editor("hello big world");
  assert.equal(shown(ed), "hello big world|");
  ed.wordLeft();
  assert.equal(shown(ed), "hello big |world");
  ed.deleteWordBack();
  assert.equal(shown(ed), "hello |world");
  ed.home();
  assert.equal(shown(ed), "|hello world");
  ed.deleteForward();
  ed.right();
  ed.insert("X");
  assert.equal(shown(ed), "eX|llo world");
  ed.wordRight();
  assert.equal(shown(ed), "eXllo| world");
  ed.deleteWordForward();
  assert.equal(shown(ed), "eXllo|");
  ed.left();
  ed.backspace();
  assert.equal(shown(ed), "eXl|o");
  ed.killToEnd();
  assert.equal(shown(ed), "eXl|");
  ed.left();
  ed.killToStart();
  assert.equal(shown(ed), "|l");
  ed.end();
  assert.equal(shown(ed), "l|");
  assert.ok(!ed.right(), "at the end, right does nothing");
});

Deno.test("line_editor: home, end and kills work on the draft's line, not the whole draft", () => {
  const ed = editor("one\ntwo three\nfour");
  ed.vertical(-1, 80);
  assert.equal(shown(ed), "one\ntwo |three\nfour");
  ed.home();
  assert.equal(shown(ed), "one\n|two three\nfour");
  ed.end();
  assert.equal(shown(ed), "one\ntwo three|\nfour");
  ed.killToEnd();
  assert.equal(shown(ed), "one\ntwo three|four", "at a line's end, Ctrl-K joins the next line");
  ed.killToStart();
  assert.equal(shown(ed), "one\n|four");
});

Deno.test("line_editor: clusters stay whole; joining across the cursor is re-segmented", () => {
  const ed = editor("🇩🇪 e");
  assert.equal(ed.length, 3);
  ed.backspace();
  assert.equal(shown(ed), "🇩🇪 |", "one backspace removes a whole cluster");
  ed.insert("e");
  ed.insert("\u0301");
  assert.equal(ed.length, 3, "e + combining accent is one character");
  assert.equal(shown(ed), "🇩🇪 e\u0301|");
  ed.home();
  ed.insert("👍🏽");
  assert.equal(ed.clusters[0], "👍🏽");
  assert.equal(shown(ed), "👍🏽|🇩🇪 e\u0301");
});

Deno.test("line_editor: control characters are dropped, newlines and tabs kept", () => {
  const ed = editor("a\x1b[31mb\x00\tc\nd\x07");
  assert.equal(ed.text, "a[31mb\tc\nd");
});

Deno.test("line_editor: input past the length limit is refused whole, the draft unchanged", () => {
  const ed = editor("", 5);
  assert.equal(ed.insert("abc"), undefined);
  assert.equal(
    ed.insert("def"),
    "not added: the message would be 6 characters; the limit is 5",
  );
  assert.equal(shown(ed), "abc|");
  assert.equal(ed.insert("😀👨‍👩‍👧"), undefined, "emoji count as one character each");
  assert.equal(ed.length, 5);
  assert.match(ed.insert("x")!, /would be 6 characters/);
  assert.match(ed.insert("x", 70_000)!, /the paste is far too long \(70,001 characters\)/);
  // 8,193 emoji are 8,193 characters, not 16,386.
  const big = new LineEditor({ maxLength: 8_192 });
  assert.match(big.insert("😀".repeat(8_193))!, /would be 8,193 characters; the limit is 8,192/);
});

Deno.test("line_editor: the caller's check sees the whole draft as it would be", () => {
  const checked: string[] = [];
  const ed = new LineEditor({
    maxLength: 100,
    check: (t) => {
      checked.push(t);
      const bytes = new TextEncoder().encode(t).length;
      return bytes > 12 ? `${bytes} bytes is over 12` : undefined;
    },
  });
  assert.equal(ed.insert("中文"), undefined); // 6 bytes
  ed.home();
  assert.equal(ed.insert("ab"), undefined);
  assert.deepEqual(checked, ["中文", "ab中文"]);
  assert.equal(ed.insert("中文"), "not added: 14 bytes is over 12");
  assert.equal(ed.text, "ab中文");
});

Deno.test("line_editor: layoutRows wraps by columns, wide characters whole, at newlines", () => {
  const rows = (text: string, width: number) => {
    const gs = graphemes(text);
    return layoutRows(gs, gs.map(graphemeWidth), width);
  };
  assert.deepEqual(rows("", 4), [0]);
  assert.deepEqual(rows("abc", 4), [0]);
  assert.deepEqual(rows("abcd", 4), [0, 4], "a full last row leaves a row for the cursor");
  assert.deepEqual(rows("abcde", 4), [0, 4]);
  assert.deepEqual(rows("abc中", 4), [0, 3], "中 does not fit in the last column");
  assert.deepEqual(rows("ab\ncd", 4), [0, 3]);
  assert.deepEqual(rows("ab\n", 4), [0, 3], "a row for the cursor after a final newline");
  assert.deepEqual(rows("\n\n", 4), [0, 1, 2]);
});

Deno.test("line_editor: layout puts the cursor at its row and column", () => {
  const ed = editor("中文abc\nxy");
  assert.deepEqual(ed.layout(4), { starts: [0, 2, 6], row: 2, col: 2 });
  ed.vertical(-1, 4);
  assert.deepEqual(ed.layout(4), { starts: [0, 2, 6], row: 1, col: 2 });
  assert.equal(shown(ed), "中文ab|c\nxy");
  ed.vertical(-1, 4);
  assert.equal(shown(ed), "中|文abc\nxy", "column 2 is after 中");
});

Deno.test("line_editor: up and down walk the sent messages at the first and last row", () => {
  const ed = editor("first");
  assert.equal(ed.submit(), "first");
  ed.insert("second");
  ed.submit();
  ed.insert("draft");
  assert.ok(ed.vertical(-1, 80));
  assert.equal(ed.text, "second");
  ed.vertical(-1, 80);
  assert.equal(ed.text, "first");
  assert.ok(!ed.vertical(-1, 80), "no older message");
  ed.vertical(1, 80);
  ed.vertical(1, 80);
  assert.equal(ed.text, "draft", "the draft comes back");
  assert.ok(!ed.vertical(1, 80));
});
