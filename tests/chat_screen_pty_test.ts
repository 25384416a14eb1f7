/**
 * The chat screen (cli/ui/chat_screen.ts) in a real terminal: tmux at 110×30 runs
 * `fixtures/chat_screen_demo.ts`, which hosts the screen as `chat` does; the tests type and paste
 * into it, play the other side through its control socket, and read the screen and what was sent.
 * Each test names the defect of issue 11 it covers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { delay } from "@chat-p2p/protocol/async";
import { cliEnv, PROJECT_ROOT } from "./cli_helpers.ts";
import { Pty } from "./pty.ts";
import { graphemes } from "../cli/ui/text_width.ts";

const DEMO = join(PROJECT_ROOT, "tests", "fixtures", "chat_screen_demo.ts");

/** A line of the demo's out file. */
interface Record {
  pid?: number;
  submitted?: string;
  closed?: string;
}

/** The demo in a terminal, with its control socket and out file. */
class Demo implements AsyncDisposable {
  constructor(
    readonly pty: Pty,
    readonly dir: string,
    readonly pid: number,
    readonly conn: Deno.UnixConn,
  ) {}

  /** Sends a control command (see the demo's module doc). */
  async send(cmd: unknown): Promise<void> {
    await this.conn.write(new TextEncoder().encode(JSON.stringify(cmd) + "\n"));
  }

  /** The records the demo has finished writing (a line still being written is not one yet). */
  async records(): Promise<Record[]> {
    const text = await Deno.readTextFile(join(this.dir, "out"));
    const lines = text.split("\n");
    lines.pop(); // after the last newline: empty, or a record not yet written whole
    return lines.filter((l) => l).map((l) => JSON.parse(l));
  }

  /** The messages sent so far. */
  async submitted(): Promise<string[]> {
    return (await this.records()).flatMap((r) => r.submitted === undefined ? [] : [r.submitted]);
  }

  /** Waits until `n` messages were sent; returns them all. */
  async waitForSubmitted(n: number): Promise<string[]> {
    for (let i = 0; i < 200; i++) {
      const sent = await this.submitted();
      if (sent.length >= n) return sent;
      await delay(50);
    }
    throw new Error(
      `fewer than ${n} messages sent; the terminal shows:\n${await this.pty.screen()}`,
    );
  }

  /** Everything the demo wrote to its terminal. */
  async ttyLog(): Promise<string> {
    return await Deno.readTextFile(join(this.dir, "tty.log"));
  }

  /** `stty -a` of the terminal once the demo had ended. */
  async sttyAfter(): Promise<string> {
    return await Deno.readTextFile(join(this.dir, "stty"));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch { /* closed by the demo's exit */ }
    await this.pty.kill();
    await Deno.remove(this.dir, { recursive: true });
  }
}

/**
 * Starts the demo with `args`, in a shell that, once it ends, saves `stty -a` and prints
 * `PROMPT$ ` as a shell's prompt would appear.
 */
async function startDemo(args: string[] = [], size = { width: 110, height: 30 }): Promise<Demo> {
  const dir = await Deno.makeTempDir({ prefix: "chat-screen-" });
  const control = join(dir, "control.sock");
  const argv = [
    Deno.execPath(),
    "run",
    "-A",
    DEMO,
    "--control",
    control,
    "--out",
    join(dir, "out"),
    "--tty-log",
    join(dir, "tty.log"),
    ...args,
  ];
  const script = `"$@"; s=$?; stty -a > '${join(dir, "stty")}'; printf 'PROMPT$ '; exit $s`;
  const pty = await Pty.start(["sh", "-c", script, "sh", ...argv], {
    ...size,
    cwd: PROJECT_ROOT,
    env: cliEnv({ home: dir }),
  });
  try {
    await pty.waitFor(/^>$/m, { timeoutMs: 30_000 });
    let pid = 0;
    for (let i = 0; i < 100 && pid === 0; i++) {
      try {
        pid = JSON.parse((await Deno.readTextFile(join(dir, "out"))).split("\n")[0]).pid;
      } catch {
        await delay(50);
      }
    }
    const conn = await Deno.connect({ transport: "unix", path: control });
    return new Demo(pty, dir, pid, conn);
  } catch (e) {
    await pty.kill();
    await Deno.remove(dir, { recursive: true });
    throw e;
  }
}

/** The screen's rows, trailing empty rows removed. */
async function rows(pty: Pty): Promise<string[]> {
  const lines = (await pty.screen()).split("\n");
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** Waits until the screen's rows (trailing empty ones removed) end with `tail`. */
async function waitForRows(pty: Pty, tail: string[], timeoutMs = 10_000): Promise<string[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const seen = await rows(pty);
    if (JSON.stringify(seen.slice(-tail.length)) === JSON.stringify(tail)) return seen;
    if (Date.now() > end) {
      assert.deepEqual(seen.slice(-tail.length), tail, `the screen:\n${seen.join("\n")}`);
    }
    await delay(50);
  }
}

/** The status row when it shows only the draft's length: `n/max` at the right. */
function lengthRow(n: number, max = 16_384, width = 110): string {
  const counter = `${n.toLocaleString("en-US")}/${max.toLocaleString("en-US")}`;
  return " ".repeat(width - 1 - counter.length) + counter;
}

/** Asserts the demo has ended with `status` and left the terminal as it found it. */
async function assertLeftCleanly(demo: Demo, status: number, reason: string): Promise<void> {
  assert.equal(await demo.pty.waitForExit(), status, await demo.pty.screen());
  const screen = await rows(demo.pty);
  // The shell's prompt starts its own line: nothing of the chat (no "> ") before it.
  assert.equal(screen[screen.length - 1], "PROMPT$", screen.join("\n"));
  assert.ok(
    !screen.some((l) => l === ">" || l.startsWith("> ")),
    `a prompt was left:\n${screen.join("\n")}`,
  );
  const stty = await demo.sttyAfter();
  for (const mode of ["icanon", "echo", "isig"]) {
    assert.match(stty, new RegExp(`(^|\\s)${mode}(\\s|$)`), `${mode} is back on:\n${stty}`);
  }
  const log = await demo.ttyLog();
  assert.ok(log.lastIndexOf("\x1b[?2004l") > log.lastIndexOf("\x1b[?2004h"), "paste mode off");
  assert.ok(log.lastIndexOf("\x1b[?25h") > log.lastIndexOf("\x1b[?25l"), "cursor shown");
  if (reason) assert.deepEqual((await demo.records()).at(-1), { closed: reason });
}

Deno.test("chat screen (defect 1): incoming lines show above a draft wrapped over three rows of CJK and emoji", async () => {
  await using demo = await startDemo();
  // 107 columns of "a" leave one column on the first row: 中 (two columns) starts the second.
  const draft = "a".repeat(107) + "中文😀" + "b".repeat(102) + "tail";
  await demo.pty.type(draft);
  const draftRows = ["> " + "a".repeat(107), "  中文😀" + "b".repeat(102), "  tail"];
  await waitForRows(demo.pty, [...draftRows, lengthRow(216)]);
  await demo.send({ print: "bob: the first incoming line" });
  await demo.send({ print: "bob: the second, 你好 🙂" });
  const seen = await waitForRows(demo.pty, [
    "bob: the first incoming line",
    "bob: the second, 你好 🙂",
    ...draftRows,
    lengthRow(216),
  ]);
  assert.equal(seen.filter((l) => l.includes("aaaa")).length, 1, "the draft's first row once");
  await demo.pty.press("Enter");
  assert.deepEqual(await demo.waitForSubmitted(1), [draft]);
});

Deno.test("chat screen (defect 1): many incoming lines while the draft fills the screen's lower half", async () => {
  await using demo = await startDemo();
  // One word per row (5 + 103 spaces fill the 108 columns after the prompt): 40 rows, more than
  // the 15 (half the screen) the draft may take.
  const words = Array.from({ length: 40 }, (_, i) => `row${String(i).padStart(2, "0")}`);
  const draft = words.join(" ".repeat(103));
  await demo.pty.type(draft);
  await demo.pty.waitFor("row39");
  for (let i = 0; i < 30; i++) await demo.send({ print: `bob: incoming ${i}` });
  // The draft shows its last 15 rows (the cursor is at its end), below the latest lines.
  const seen = await waitForRows(demo.pty, [
    ...Array.from({ length: 13 }, (_, i) => `bob: incoming ${17 + i}`),
    ...words.slice(25).map((w) => "  " + w),
    lengthRow(draft.length),
  ]);
  assert.equal(seen.length, 30);
  const scrollback = await demo.pty.scrollback();
  for (let i = 0; i < 30; i++) {
    assert.equal(scrollback.split(`bob: incoming ${i}\n`).length, 2, `line ${i} once`);
  }
});

Deno.test("chat screen (defect 2): a 16,384-character paste shows at once and is sent whole; one more is refused", async () => {
  await using demo = await startDemo();
  const pasted = graphemes("中文 abc 😀 ".repeat(2_000)).slice(0, 16_384).join("");
  const started = performance.now();
  await demo.pty.paste(pasted);
  await demo.pty.waitFor("16,384/16,384");
  const ms = Math.round(performance.now() - started);
  console.log(`paste of 16,384 characters shown in ${ms} ms`);
  assert.ok(ms < 3_000, `the paste took ${ms} ms to appear`);
  await demo.pty.paste("x");
  await demo.pty.waitFor("not added: the message would be 16,385 characters; the limit is 16,384");
  await demo.pty.press("Enter");
  assert.deepEqual(await demo.waitForSubmitted(1), [pasted]);
});

Deno.test("chat screen (defect 2): 70,000 characters are refused at once, and Ctrl-C works during and after", async () => {
  await using demo = await startDemo();
  const huge = "0123456789".repeat(7_000);
  const started = performance.now();
  await demo.pty.paste(huge);
  await demo.pty.waitFor(
    "not added: the message would be 70,000 characters; the limit is 16,384",
  );
  const ms = Math.round(performance.now() - started);
  console.log(`paste of 70,000 characters refused in ${ms} ms`);
  assert.ok(ms < 3_000, `refusing took ${ms} ms`);
  assert.equal((await rows(demo.pty)).at(-2), ">", "the draft stays empty");
  // Ctrl-C right behind another huge paste, before it is even processed: the chat leaves.
  await demo.pty.paste(huge);
  await demo.pty.press("C-c");
  await assertLeftCleanly(demo, 0, "interrupt");
  assert.deepEqual(await demo.submitted(), []);
});

Deno.test("chat screen (defect 2): the caller's byte limit refuses what passes the character limit", async () => {
  await using demo = await startDemo(["--max-length", "1000", "--max-bytes", "1000"]);
  await demo.pty.paste("中".repeat(334)); // 334 characters, 1,002 bytes
  await demo.pty.waitFor("not added: the message would be 1,002 bytes; the limit is 1,000");
  await demo.pty.paste("中".repeat(333));
  await demo.pty.waitFor("333/1,000");
  await demo.pty.press("Enter");
  assert.deepEqual(await demo.waitForSubmitted(1), ["中".repeat(333)]);
});

Deno.test("chat screen (defect 3): a pasted block is one message, blank lines kept; Alt-Enter and a trailing \\ type newlines", async () => {
  await using demo = await startDemo();
  const block = "line one\n\nline three\n    indented\n";
  await demo.pty.paste(block);
  const seen = await waitForRows(demo.pty, [
    "> line one",
    "",
    "  line three",
    "      indented",
    "",
    lengthRow(block.length),
  ]);
  assert.equal(seen.filter((l) => l.startsWith(">")).length, 1, "one prompt");
  await demo.pty.press("BSpace");
  await demo.pty.press("Enter");
  await demo.waitForSubmitted(1);
  await demo.pty.type("a");
  await demo.pty.press("M-Enter");
  await demo.pty.type("b\\");
  await demo.pty.press("Enter");
  await waitForRows(demo.pty, ["> a", "  b", "", lengthRow(4)]);
  await demo.pty.type("c");
  await waitForRows(demo.pty, ["> a", "  b", "  c", lengthRow(5)]);
  await demo.pty.press("Enter");
  assert.deepEqual(await demo.waitForSubmitted(2), [block.slice(0, -1), "a\nb\nc"]);
  const screen = (await rows(demo.pty)).join("\n");
  assert.match(screen, /^you: line one\n\n {2}line three\n {6}indented {2}…$/m, screen);
  assert.match(screen, /^you: a\n {2}b\n {2}c {2}…\n>$/m, screen);
});

Deno.test("chat screen (defect 3): without bracketed paste, a pasted block is still one message", async () => {
  await using demo = await startDemo(["--no-bracketed-paste"]);
  assert.ok(!(await demo.ttyLog()).includes("\x1b[?2004h"), "paste mode not asked for");
  await demo.pty.paste("first line\nsecond line\n");
  assert.deepEqual(await demo.waitForSubmitted(1), ["first line\nsecond line"]);
  await demo.pty.type("typed");
  await demo.pty.press("Enter");
  assert.deepEqual(await demo.waitForSubmitted(2), ["first line\nsecond line", "typed"]);
});

Deno.test("chat screen (defect 4): a message's mark changes on its own line, also a wrapped one above others", async () => {
  await using demo = await startDemo();
  await demo.pty.type("hello");
  await demo.pty.press("Enter");
  await waitForRows(demo.pty, ["you: hello  …", ">"]);
  await demo.send({ mark: "m1", state: "accepted" });
  await waitForRows(demo.pty, ["you: hello  ✓", ">"]);
  await demo.send({ mark: "m1", state: "delivered" });
  await waitForRows(demo.pty, ["you: hello  ✓✓", ">"]);
  // Two rows, with a line from the other side below it; the draft being typed stays.
  const long = "w".repeat(150);
  await demo.pty.type(long);
  await demo.pty.press("Enter");
  await demo.waitForSubmitted(2);
  await demo.send({ print: "bob: a reply" });
  await demo.pty.type("draft");
  const before = [`you: ${long.slice(0, 105)}`, `${long.slice(105)}  …`, "bob: a reply", "> draft"];
  await waitForRows(demo.pty, before);
  await demo.send({ mark: "m2", state: "failed" });
  const after = await waitForRows(demo.pty, [
    `you: ${long.slice(0, 105)}`,
    `${long.slice(105)}  ✗`,
    "bob: a reply",
    "> draft",
  ]);
  assert.equal(after.filter((l) => l.includes("hello")).length, 1, "one line per message");
  await demo.pty.press("Enter");
  assert.deepEqual(await demo.waitForSubmitted(3), ["hello", long, "draft"]);
});

Deno.test("chat screen (defect 4): a mark for a line scrolled off the screen comes as a short line", async () => {
  await using demo = await startDemo();
  await demo.pty.type("an early message that will scroll away");
  await demo.pty.press("Enter");
  await waitForRows(demo.pty, ["you: an early message that will scroll away  …", ">"]);
  for (let i = 0; i < 40; i++) await demo.send({ print: `bob: line ${i}` });
  await waitForRows(demo.pty, ["bob: line 39", ">"]);
  await demo.send({ mark: "m1", state: "delivered" });
  await waitForRows(demo.pty, ["you: an early message that will scroll away  ✓✓", ">"]);
  await demo.send({ print: "bob: later" });
  await demo.send({ mark: "m1", state: "failed" });
  // The copy is on the screen now, so the next mark changes it in place.
  await waitForRows(demo.pty, [
    "you: an early message that will scroll away  ✗",
    "bob: later",
    ">",
  ]);
  const scrollback = (await demo.pty.scrollback()).replace(/ +$/gm, "");
  assert.match(scrollback, /^you: an early message that will scroll away {2}…$/m, scrollback);
  assert.ok(scrollback.startsWith("you: an early message"), `no copies of drafts:\n${scrollback}`);
});

Deno.test("chat screen (defect 6): Ctrl-D on an empty line and /quit leave the prompt on a fresh line", async () => {
  {
    await using demo = await startDemo();
    await demo.pty.type("x");
    await demo.pty.press("C-d");
    await delay(200);
    assert.equal(await demo.pty.exitStatus(), null, "Ctrl-D with a draft deletes, not leaves");
    await demo.pty.press("BSpace", "C-d");
    await assertLeftCleanly(demo, 0, "eof");
    assert.deepEqual((await rows(demo.pty)).slice(-2), ["left the chat (eof)", "PROMPT$"]);
  }
  {
    await using demo = await startDemo();
    await demo.pty.type("/quit");
    await demo.pty.press("Enter");
    await assertLeftCleanly(demo, 0, "closed");
    assert.deepEqual(await demo.submitted(), ["/quit"]);
  }
});

Deno.test("chat screen (defect 6): Ctrl-C asks before throwing a draft away; on an empty line it leaves", async () => {
  {
    await using demo = await startDemo();
    await demo.pty.type("half-typed");
    await demo.pty.press("C-c");
    await waitForRows(demo.pty, [
      "> half-typed",
      "Ctrl-C again discards the draft and leaves; any other key keeps it",
    ]);
    await demo.pty.type("!");
    await waitForRows(demo.pty, ["> half-typed!"]);
    await demo.pty.press("C-c");
    await demo.pty.waitFor("Ctrl-C again");
    await demo.pty.press("C-c");
    await assertLeftCleanly(demo, 0, "interrupt");
    assert.deepEqual(await demo.submitted(), []);
  }
  {
    await using demo = await startDemo();
    await demo.pty.press("C-c");
    await assertLeftCleanly(demo, 0, "interrupt");
  }
});

Deno.test("chat screen (defect 6): SIGTERM and an uncaught error restore the terminal too", async () => {
  {
    await using demo = await startDemo();
    await demo.pty.type("a draft");
    await demo.pty.waitFor("> a draft");
    Deno.kill(demo.pid, "SIGTERM");
    await assertLeftCleanly(demo, 128 + 15, "SIGTERM");
  }
  {
    await using demo = await startDemo();
    await demo.pty.type("a draft");
    await demo.pty.waitFor("> a draft");
    await demo.send({ crash: "boom in the host" });
    await assertLeftCleanly(demo, 1, "").catch(async (e) => {
      throw new Error(`${e}\n${await demo.pty.scrollback()}`);
    });
    assert.match(await demo.pty.scrollback(), /error: Uncaught.*boom in the host/);
  }
});

Deno.test("chat screen (6): line editing keys, history, and a redraw on resize", async () => {
  await using demo = await startDemo();
  const pty = demo.pty;
  await pty.type("hello world");
  await pty.press("Left", "Left", "Left", "Left", "Left");
  await pty.type("big ");
  await pty.press("Home");
  await pty.type("[");
  await pty.press("End");
  await pty.type("]");
  await pty.press("C-a", "Delete", "C-e", "BSpace");
  await waitForRows(pty, ["> hello big world"]);
  await pty.press("C-w");
  await pty.type("there");
  await pty.press("C-a", "M-f", "C-k");
  await waitForRows(pty, ["> hello"]);
  await pty.press("Enter");
  await pty.type("to be cut");
  await pty.press("C-u");
  await pty.type("second");
  await pty.press("Enter");
  await demo.waitForSubmitted(2);
  await pty.press("Up", "Up");
  await waitForRows(pty, ["> hello"]);
  await pty.press("Down", "Enter");
  assert.deepEqual(await demo.waitForSubmitted(3), ["hello", "second", "second"]);
  // A draft of 150 columns on 110, then on 60 columns: wrapped again to the new width.
  const draft = "0123456789".repeat(15);
  await pty.type(draft);
  await waitForRows(pty, ["> " + draft.slice(0, 108), "  " + draft.slice(108), lengthRow(150)]);
  await pty.resize(60, 20);
  await waitForRows(pty, [
    "> " + draft.slice(0, 58),
    "  " + draft.slice(58, 116),
    "  " + draft.slice(116),
    lengthRow(150, 16_384, 60),
  ]);
  const seen = await rows(pty);
  assert.ok(seen.every((l) => l.length <= 60), seen.join("\n"));
  assert.match(seen.join("\n"), /^you: hello {2}…\nyou: second {2}…\nyou: second {2}…\n> 0123/m);
});

Deno.test("chat screen (7): text from others cannot move the cursor, and is measured as shown", async () => {
  await using demo = await startDemo();
  await demo.send({ print: "keep me" });
  const hostile = "\x1b[2J\x1b[Hevil\x07\r" + "z".repeat(80);
  // Sanitized it is 5 + 6 + 6 + 4 + 6 + 6 + 80 = 113 columns (two rows); raw it would be 90.
  await demo.send({ message: "x1", line: `bob: ${hostile}`, state: "sending" });
  await demo.send({ print: "below" });
  const sanitized = "bob: \\u001b[2J\\u001b[Hevil\\u0007\\u000d" + "z".repeat(80) + "  …";
  await waitForRows(demo.pty, [
    "keep me",
    sanitized.slice(0, 110),
    sanitized.slice(110),
    "below",
    ">",
  ]);
  await demo.send({ mark: "x1", state: "delivered" });
  await waitForRows(demo.pty, [
    "keep me",
    sanitized.slice(0, 110),
    sanitized.slice(110).replace("…", "✓✓"),
    "below",
    ">",
  ]);
});

Deno.test("chat screen (6): colour only when the caller allows it", async () => {
  for (const color of [true, false]) {
    await using demo = await startDemo(color ? ["--color"] : []);
    await demo.pty.type("hi");
    await demo.pty.press("Enter");
    await waitForRows(demo.pty, ["you: hi  …", ">"]);
    // deno-lint-ignore no-control-regex
    const sgr = /\x1b\[[0-9;]*m/.test(await demo.ttyLog());
    assert.equal(sgr, color, `colour sequences ${color ? "missing" : "written"}`);
  }
});
