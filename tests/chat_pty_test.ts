/**
 * The real `chat-p2p chat` in a real terminal against a real relay: tmux at 110×30 runs the CLI
 * as bob; alice is the CLI in subprocesses (send, sync). Each test names the defect of issue 11
 * it covers. (The chat screen on its own, with a scripted host, is chat_screen_pty_test.ts.)
 */
import assert from "node:assert/strict";
import { delay } from "@chat-p2p/protocol/async";
import { closedPort } from "./fake_relay.ts";
import {
  cliCommand,
  cliEnv,
  type CliOptions,
  pairedProfiles,
  PROJECT_ROOT,
  runCli,
  runCliOk,
} from "./cli_helpers.ts";
import { Pty } from "./pty.ts";
import { RelayProcess } from "./relay_process.ts";

const WIDTH = 110;

/** bob's chat with alice in a terminal, and the people around it. */
class ChatSession implements AsyncDisposable {
  constructor(
    readonly pty: Pty,
    readonly home: string,
    readonly alice: CliOptions,
    readonly bob: CliOptions,
  ) {}

  /** The screen's rows, trailing empty ones removed. */
  async rows(): Promise<string[]> {
    const lines = (await this.pty.screen()).split("\n");
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines;
  }

  /** Waits until some row matches `re`; returns the rows. */
  async waitForRow(re: RegExp, timeoutMs = 15_000): Promise<string[]> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const rows = await this.rows();
      if (rows.some((r) => re.test(r))) return rows;
      if (Date.now() > end) {
        throw new Error(
          `timed out waiting for a row matching ${re}; the screen:\n${rows.join("\n")}`,
        );
      }
      await delay(50);
    }
  }

  /** What alice's sync prints as JSON (and acks: bob gets the receipts). */
  async aliceSync(relay: string): Promise<Array<{ id: string; text: string }>> {
    const r = await runCliOk(["sync", relay, "--json"], this.alice);
    return r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.pty.kill();
    await Deno.remove(this.home, { recursive: true });
  }
}

/**
 * alice and bob with each other as contacts; bob's `chat <relay> alice` in tmux, in a shell that
 * prints `PROMPT$ ` once it ends (where a shell's prompt would be). Waits for the chat's prompt.
 */
async function openChat(
  relay: string,
  extraEnv: Record<string, string> = {},
): Promise<ChatSession> {
  const home = await Deno.makeTempDir({ prefix: "chat-pty-e2e-" });
  const { alice, bob } = await pairedProfiles(home);
  const { cmd, args } = cliCommand(["chat", relay, "alice"]);
  const script = `"$@"; s=$?; printf 'PROMPT$ '; exit $s`;
  const pty = await Pty.start(["sh", "-c", script, "sh", cmd, ...args], {
    width: WIDTH,
    height: 30,
    cwd: PROJECT_ROOT,
    env: cliEnv({ ...bob, env: { NO_COLOR: "1", ...extraEnv } }),
  });
  const session = new ChatSession(pty, home, alice, bob);
  try {
    await session.waitForRow(/^>$/, 30_000);
  } catch (e) {
    await session[Symbol.asyncDispose]();
    throw e;
  }
  return session;
}

/** The chat's process: the descendant of `root` running cli/main.ts, not a shell around it. */
async function chatPid(root: number): Promise<number> {
  const children = async (pid: number) => {
    const r = await new Deno.Command("pgrep", { args: ["-P", String(pid)], stdout: "piped" })
      .output();
    return new TextDecoder().decode(r.stdout).split("\n").filter(Boolean).map(Number);
  };
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.shift()!;
    const argv = (await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "")).split("\0");
    if (!/(^|\/)sh$/.test(argv[0]) && argv.some((a) => a.endsWith("main.ts"))) return pid;
    todo.push(...await children(pid));
  }
  throw new Error(`no chat process under ${root}`);
}

/** Asserts the chat ended with `status` and the shell's prompt starts a line of its own. */
async function assertLeft(s: ChatSession, status: number): Promise<string[]> {
  assert.equal(await s.pty.waitForExit(), status, (await s.rows()).join("\n"));
  const rows = await s.rows();
  assert.equal(rows.at(-1), "PROMPT$", rows.join("\n"));
  assert.ok(
    !rows.some((r) => r === ">" || r.startsWith("> ")),
    `a prompt was left:\n${rows.join("\n")}`,
  );
  return rows;
}

Deno.test("chat (defect 1): messages arriving while a three-row draft is typed all show, above it", async () => {
  await using relay = await RelayProcess.start();
  await using s = await openChat(relay.url);
  const draft = "a".repeat(107) + "中文😀" + "b".repeat(102) + "tail";
  await s.pty.type(draft);
  await s.waitForRow(/^ {2}tail$/);
  await runCliOk(["send", relay.url, "bob", "first while you type"], s.alice);
  await runCliOk(["send", relay.url, "bob", "second, 你好 🙂"], s.alice);
  const rows = await s.waitForRow(/\] alice: second, 你好 🙂$/);
  const first = rows.findIndex((r) => r.endsWith("] alice: first while you type"));
  const second = rows.findIndex((r) => r.endsWith("] alice: second, 你好 🙂"));
  const prompt = rows.findIndex((r) => r.startsWith("> aaa"));
  assert.ok(first >= 0 && first < second && second < prompt, rows.join("\n"));
  assert.deepEqual(rows.slice(prompt, prompt + 3), [
    "> " + "a".repeat(107),
    "  中文😀" + "b".repeat(102),
    "  tail",
  ]);
  assert.equal(rows.filter((r) => r.includes("aaaa")).length, 1, "the draft once, no copies");
  await s.pty.press("Enter");
  await s.waitForRow(/^b+tail {2}✓$/);
  const got = await s.aliceSync(relay.url);
  assert.deepEqual(got.map((m) => m.text), [draft]);
  await s.pty.type("/quit");
  await s.pty.press("Enter");
  await assertLeft(s, 0);
  // Shown by the chat: read.
  const chats = await runCliOk(["chats", "--json"], s.bob);
  assert.deepEqual(chats.stdout.trim().split("\n").map((l) => JSON.parse(l).unread), [0]);
});

Deno.test("chat (defect 2): a 16,384-character paste appears and is sent in well under a second", async () => {
  await using relay = await RelayProcess.start();
  await using s = await openChat(relay.url);
  const text = "0123456789abcdef".repeat(1_024); // 16,384 characters
  const started = performance.now();
  await s.pty.paste(text);
  await s.waitForRow(/16,384\/16,384$/);
  const shown = performance.now() - started;
  await s.pty.press("Enter");
  // Taller than the screen, so its ✓ comes on a one-row copy of it, once the relay has it.
  await s.waitForRow(/\] you: 0123456789abcdef.*… {2}✓$/);
  const sent = performance.now() - started;
  console.log(
    `paste of 16,384 characters: on screen after ${Math.round(shown)} ms, accepted by the relay ` +
      `after ${Math.round(sent)} ms (tmux paste included)`,
  );
  assert.ok(sent < 5_000, `pasting and sending took ${Math.round(sent)} ms`);
  const got = await s.aliceSync(relay.url);
  assert.equal(got.length, 1, "sent once");
  assert.equal(got[0].text, text);
  // Past the limit: refused at once, nothing added.
  await s.pty.paste("x".repeat(70_000));
  await s.waitForRow(/^not added: the message would be 70,000 characters; the limit is 16,384$/);
  await s.pty.press("C-c");
  await assertLeft(s, 0);
});

Deno.test("chat (defect 3): a pasted block is one message, blank lines kept, received as one", async () => {
  await using relay = await RelayProcess.start();
  await using s = await openChat(relay.url);
  const block = "line one\n\nline three\n    indented";
  await s.pty.paste(block + "\n");
  await s.pty.press("BSpace"); // the paste's last newline
  await s.waitForRow(/^ {6}indented$/);
  await s.pty.press("Enter");
  await s.waitForRow(/^ {6}indented {2}✓$/);
  await s.pty.type("typed");
  await s.pty.press("M-Enter");
  await s.pty.type("on two lines");
  await s.pty.press("Enter");
  await s.waitForRow(/^ {2}on two lines {2}✓$/);
  const got = await s.aliceSync(relay.url);
  assert.deepEqual(got.map((m) => m.text), [block, "typed\non two lines"]);
  const rows = await s.rows();
  assert.equal(rows.filter((r) => r.startsWith(">")).length, 1, `one prompt:\n${rows.join("\n")}`);
  await s.pty.press("C-d");
  await assertLeft(s, 0);
});

Deno.test("chat (defect 4): a message's marks change on its own line: … then ✓ then ✓✓", async () => {
  await using relay = await RelayProcess.start();
  await using s = await openChat(relay.url);
  await s.pty.type("hello alice");
  await s.pty.press("Enter");
  await s.waitForRow(/\] you: hello alice {2}✓$/);
  await s.aliceSync(relay.url); // alice's client stores it and sends the receipt
  const rows = await s.waitForRow(/\] you: hello alice {2}✓✓$/);
  assert.equal(rows.filter((r) => r.includes("hello alice")).length, 1, rows.join("\n"));
  assert.ok(!rows.some((r) => /accepted:|delivered:/.test(r)), rows.join("\n"));
  // /help and /history inside the chat.
  await s.pty.type("/help");
  await s.pty.press("Enter");
  await s.waitForRow(/^\/history {2}the whole conversation$/);
  await s.pty.type("/history");
  await s.pty.press("Enter");
  const after = await s.waitForRow(/^\/quit {5}leave/);
  await delay(200);
  const again = (await s.rows()).filter((r) => r.includes("hello alice"));
  assert.equal(again.length, 2, `the conversation again, once:\n${after.join("\n")}`);
  await s.pty.press("C-d");
  await assertLeft(s, 0);
});

Deno.test("chat (defect 5): the relay down at the start: the chat opens, queues, and sends once it is up", async () => {
  const port = closedPort();
  const url = `ws://127.0.0.1:${port}/ws`;
  await using s = await openChat(url);
  await s.waitForRow(/^offline: cannot reach relay .*connection refused; what you type is queued/);
  await s.pty.type("sent later");
  await s.pty.press("Enter");
  await s.waitForRow(/\] you: sent later {2}…$/);
  await using relay = await RelayProcess.start({ port });
  await s.waitForRow(/\] you: sent later {2}✓$/, 45_000); // the next reconnect attempt
  await s.waitForRow(/^connected to ws:\/\/127\.0\.0\.1/);
  assert.deepEqual((await s.aliceSync(relay.url)).map((m) => m.text), ["sent later"]);
  await s.pty.press("C-d");
  await assertLeft(s, 0);
});

Deno.test("chat (defect 6): /quit with a queued message says so and exits 3; the prompt is on its own line", async () => {
  await using s = await openChat(`ws://127.0.0.1:${closedPort()}/ws`);
  await s.pty.type("nobody hears this");
  await s.pty.press("Enter");
  await s.waitForRow(/you: nobody hears this {2}…$/);
  await s.pty.type("/quit");
  await s.pty.press("Enter");
  await assertLeft(s, 3);
  const text = await s.pty.scrollback(); // wrapped rows joined
  assert.match(text, /… still queued: nobody hears this/);
  assert.match(text, /1 message stays queued and is sent by the next `send` or `chat` to alice/);
  const h = await runCli(["history", "alice", "--json"], s.bob);
  assert.deepEqual(h.stdout.trim().split("\n").map((l) => JSON.parse(l).state), ["sending"]);
});

Deno.test("chat (defect 6): Ctrl-C asks before dropping a draft, Ctrl-C/Ctrl-D leave cleanly, SIGTERM exits 143", async () => {
  await using relay = await RelayProcess.start();
  {
    await using s = await openChat(relay.url);
    await s.pty.type("half-typed");
    await s.pty.press("C-c");
    await s.waitForRow(/^Ctrl-C again discards the draft and leaves/);
    await s.pty.type("!");
    await s.waitForRow(/^> half-typed!$/);
    await s.pty.press("C-c");
    await s.waitForRow(/^Ctrl-C again/);
    await s.pty.press("C-c");
    await assertLeft(s, 0);
  }
  {
    await using s = await openChat(relay.url);
    await s.pty.press("C-d");
    await assertLeft(s, 0);
  }
  {
    await using s = await openChat(relay.url);
    await s.pty.type("a draft");
    await s.waitForRow(/^> a draft$/);
    Deno.kill(await chatPid(s.pty.pid), "SIGTERM");
    await assertLeft(s, 143);
  }
});
