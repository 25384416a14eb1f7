/**
 * The chat screen in-process, on a terminal double: what it writes and how it closes. The real
 * terminal behaviour (wrapping, marks in place, pastes) is in tests/chat_screen_pty_test.ts.
 */
import assert from "node:assert/strict";
import { delay } from "@chat-p2p/protocol/async";
import { type ChatScreen, openChatScreen } from "./chat_screen.ts";
import type { QuitSignal, Terminal } from "./terminal.ts";

/** A terminal double: keys in, writes recorded, raw mode and listeners observable. */
function fakeTerminal(columns = 110, rows = 30) {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const input = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  const writes: string[] = [];
  const raw: boolean[] = [];
  let onSignal: ((s: QuitSignal) => void) | undefined;
  const term: Terminal = {
    input,
    write: (text) => void writes.push(text),
    setRaw: (r) => void raw.push(r),
    size: () => ({ columns, rows }),
    onResize: () => () => {},
    onSignal(listener) {
      onSignal = listener;
      return () => onSignal = undefined;
    },
  };
  return {
    term,
    writes,
    raw,
    /** Sends `text` as one read and lets the screen handle it. */
    async send(text: string): Promise<void> {
      controller.enqueue(new TextEncoder().encode(text));
      await delay(5);
    },
    endInput: () => controller.close(),
    signal: (s: QuitSignal) => onSignal?.(s),
    /** Bytes written since the last call. */
    take(): string {
      return writes.splice(0).join("");
    },
  };
}

function open(term: Terminal, maxLength = 16_384): ChatScreen {
  return openChatScreen({ terminal: term, color: false, limits: { maxLength } });
}

Deno.test("chat_screen: a keystroke in a 16,000-character draft redraws the visible rows, not the draft", async () => {
  const t = fakeTerminal();
  using screen = open(t.term);
  await t.send("\x1b[200~" + "0123456789".repeat(1_600) + "\x1b[201~");
  const paste = t.take();
  await t.send("x");
  const keystroke = t.take();
  // The draft may take half the screen: 15 rows of 110 columns, plus escapes.
  for (const [what, out] of [["paste", paste], ["keystroke", keystroke]]) {
    assert.ok(out.length < 15 * 110 + 500, `${what} wrote ${out.length} characters`);
  }
  assert.match(
    keystroke,
    / {2}4567890123456789x\r\n {96}16,001\/16,384/,
    "the end of the draft, then the length",
  );
  await t.send("\r");
  const sent = await screen[Symbol.asyncIterator]().next();
  assert.equal(sent.value, "0123456789".repeat(1_600) + "x");
});

Deno.test("chat_screen: close restores the terminal and ends the iteration; later lines are plain", async () => {
  const t = fakeTerminal();
  const screen = open(t.term);
  const iteration = (async () => {
    const got: string[] = [];
    for await (const text of screen) got.push(text);
    return got;
  })();
  await t.send("one");
  await t.send("\r");
  screen.close();
  screen.close(); // idempotent
  assert.deepEqual(await iteration, ["one"]);
  assert.equal(await screen.closed, "closed");
  assert.deepEqual(t.raw, [true, false]);
  const out = t.take();
  assert.ok(out.startsWith("\x1b[?2004h"), "bracketed paste asked for");
  assert.ok(out.endsWith("\x1b[?2004l\x1b[?25h"), "paste mode off and the cursor shown, last");
  screen.printLine("bob: \x1b[31mhi");
  screen.printMessage("m1", [{ text: "you", style: "cyan" }, { text: ": yo" }], "sending");
  screen.setMark("m1", "delivered");
  assert.equal(t.take(), "bob: \\u001b[31mhi\nyou: yo  … \nyou: yo  ✓✓\n");
});

Deno.test("chat_screen: a quit signal, the end of input, Ctrl-D and Ctrl-C close it, saying why", async () => {
  const cases: Array<[string, (t: ReturnType<typeof fakeTerminal>) => Promise<void> | void]> = [
    ["SIGTERM", (t) => t.signal("SIGTERM")],
    ["eof", (t) => t.endInput()],
    ["eof", (t) => t.send("\x04")],
    ["interrupt", (t) => t.send("\x03")],
    ["interrupt", async (t) => {
      await t.send("draft\x03");
      assert.match(t.take(), /Ctrl-C again discards the draft/);
      await t.send("\x03");
    }],
  ];
  for (const [reason, act] of cases) {
    const t = fakeTerminal();
    const screen = open(t.term);
    await act(t);
    assert.equal(await screen.closed, reason);
    assert.deepEqual(t.raw, [true, false], reason);
  }
});

Deno.test("chat_screen: marks of lines not drawn yet are drawn with the line", async () => {
  const t = fakeTerminal();
  using screen = open(t.term);
  t.take();
  screen.printMessage("m1", "you: hi", "sending");
  screen.setMark("m1", "accepted");
  screen.setMark("unknown", "failed"); // ignored
  await delay(0);
  const out = t.take();
  assert.match(out, /you: hi {2}✓ \r\n/);
  assert.doesNotMatch(out, /…|✗/);
});

Deno.test("chat_screen: without bracketed paste, Enters that come with text are newlines", async () => {
  const t = fakeTerminal();
  using screen = open(t.term);
  const sent = screen[Symbol.asyncIterator]();
  await t.send("one\rtwo\r"); // a paste: the last Enter waits
  await t.send("three"); // more text: the paste went on
  await t.send("\r"); // typed alone: sent at once
  assert.deepEqual((await sent.next()).value, "one\ntwo\nthree");
  await t.send("four\r");
  await t.send("\x1b[A"); // a key, not text: the waiting Enter was typed
  assert.deepEqual((await sent.next()).value, "four");
});
