/**
 * bob's `chat-p2p chat` with alice in a real terminal (tmux), against a real relay, for the pty
 * tests and the paste bench: {@linkcode openChat} makes both profiles and starts the chat.
 *
 * @module
 */
import { delay } from "@chat-p2p/protocol/async";
import {
  cliCommand,
  cliEnv,
  type CliOptions,
  pairedProfiles,
  PROJECT_ROOT,
  runCliOk,
} from "./cli_helpers.ts";
import { Pty } from "./pty.ts";

const WIDTH = 110;

/** bob's chat with alice in a terminal, and the people around it. */
export class ChatSession implements AsyncDisposable {
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
export async function openChat(
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
