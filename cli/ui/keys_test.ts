import assert from "node:assert/strict";
import { type Key, KeyDecoder, type KeyName } from "./keys.ts";

const key = (name: KeyName): Key => ({ kind: "key", name });
const text = (t: string): Key => ({ kind: "text", text: t });

Deno.test("keys: text runs, control keys and cursor keys", () => {
  const d = new KeyDecoder();
  assert.deepEqual(d.feed("hi\x1b[D\x1b[C\x1bOH\x1b[F\r"), [
    text("hi"),
    key("left"),
    key("right"),
    key("home"),
    key("end"),
    key("enter"),
  ]);
  assert.deepEqual(
    d.feed("\x01\x05\x15\x0b\x17\x7f\x08\x03\x04\x0c\x0a"),
    ([
      "home",
      "end",
      "killToStart",
      "killToEnd",
      "deleteWordBack",
      "backspace",
      "backspace",
      "interrupt",
      "eof",
      "redraw",
      "newline",
    ] as KeyName[]).map(key),
  );
  assert.deepEqual(d.feed("\x1b[3~\x1b[1~\x1b[4~\x1b[7~\x1b[8~"), [
    key("delete"),
    key("home"),
    key("end"),
    key("home"),
    key("end"),
  ]);
  assert.deepEqual(d.feed("\x1b[1;5D\x1b[1;5C\x1bb\x1bf\x1bd\x1b\x7f"), [
    key("wordLeft"),
    key("wordRight"),
    key("wordLeft"),
    key("wordRight"),
    key("deleteWordForward"),
    key("deleteWordBack"),
  ]);
});

Deno.test("keys: Alt-Enter and modified Enter are a newline", () => {
  const d = new KeyDecoder();
  assert.deepEqual(d.feed("\x1b\r"), [key("newline")]);
  assert.deepEqual(d.feed("\x1b[27;2;13~"), [key("newline")]);
  assert.deepEqual(d.feed("\x1b[13;2u"), [key("newline")]);
  assert.deepEqual(d.feed("\x1bOM"), [key("enter")], "keypad Enter");
});

Deno.test("keys: unknown sequences and stray controls are dropped, never typed", () => {
  const d = new KeyDecoder();
  assert.deepEqual(d.feed("a\x1b[15~b\x1b[2;5R\x00\x07c\x1b[200X"), [
    text("a"),
    text("b"),
    text("c"),
  ]);
  assert.deepEqual(d.feed("\x1bx"), [], "Alt + an unbound key");
  assert.deepEqual(d.feed("\t"), [text("\t")], "tab is text");
});

Deno.test("keys: sequences split across reads wait for their rest", () => {
  const d = new KeyDecoder();
  assert.deepEqual(d.feed("x\x1b"), [text("x")]);
  assert.ok(d.hasPending);
  assert.deepEqual(d.feed("["), []);
  assert.deepEqual(d.feed("1;5"), []);
  assert.deepEqual(d.feed("Dy"), [key("wordLeft"), text("y")]);
  assert.ok(!d.hasPending);
});

Deno.test("keys: flush turns a lone ESC into Esc, ESC + key into Alt + key", () => {
  const d = new KeyDecoder();
  assert.deepEqual(d.feed("\x1b"), []);
  assert.deepEqual(d.flush(), [key("escape")]);
  assert.deepEqual(d.flush(), [], "nothing left");
  assert.deepEqual(d.feed("\x1bO"), []);
  assert.deepEqual(d.flush(), [], "Alt-O does nothing");
  assert.deepEqual(d.feed("\x1b\x1b[A"), [key("escape"), key("up")]);
});

Deno.test("keys: a bracketed paste is one event, however it is split, CR as newline", () => {
  const d = new KeyDecoder();
  const chunks = ["a\x1b[20", "0~line one\r\rline", " \x1b[D three\r\n\x1b", "[201", "~b"];
  const keys = chunks.flatMap((c) => d.feed(c));
  assert.deepEqual(keys, [
    text("a"),
    { kind: "paste", text: "line one\n\nline \x1b[D three\n", dropped: 0 },
    text("b"),
  ]);
  assert.ok(!d.inPaste);
});

Deno.test("keys: a paste past the cap is counted, not kept", () => {
  const d = new KeyDecoder(10);
  const keys = [
    ...d.feed("\x1b[200~" + "x".repeat(8)),
    ...d.feed("y".repeat(70_000)),
    ...d.feed("\x1b[201~\x03"),
  ];
  assert.deepEqual(keys, [
    { kind: "paste", text: "xxxxxxxxyy", dropped: 69_998 },
    key("interrupt"),
  ]);
});

Deno.test("keys: UTF-8 text keeps its characters", () => {
  const d = new KeyDecoder();
  assert.deepEqual(d.feed("中文 😀 é"), [text("中文 😀 é")]);
});
