/**
 * A real pseudo-terminal for tests: runs a command in a detached tmux session of a fixed size,
 * types and pastes into it, and reads the screen back as a person would see it. Each
 * {@linkcode Pty} has its own tmux server (a socket in a temporary directory, no user config),
 * so tests never touch a developer's tmux, and `await using` always kills it.
 *
 * tmux comes from Debian (`.ci/run` installs it when missing).
 *
 * @example
 * ```ts
 * await using pty = await Pty.start(["bash", "--norc"], { env: { PATH: "/usr/bin:/bin" } });
 * await pty.type("echo hi");
 * await pty.press("Enter");
 * await pty.waitFor(/^hi$/m);
 * ```
 *
 * @module
 */
import { join } from "node:path";
import { delay } from "@chat-p2p/protocol/async";

/** Options for {@linkcode Pty.start}. */
export interface PtyOptions {
  /** Columns (default 110). */
  width?: number;
  /** Rows (default 30). */
  height?: number;
  /** The command's whole environment (nothing else is inherited; TERM is tmux's). */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
}

/** Options for {@linkcode Pty.waitFor}. */
export interface WaitOptions {
  /** Give up after this many milliseconds (default 15 000). */
  timeoutMs?: number;
  /** Match against the scrollback too, not only the visible screen. */
  scrollback?: boolean;
}

/** The session's name inside its private tmux server. */
const SESSION = "pty";

/** A command running in a tmux pane. */
export class Pty implements AsyncDisposable {
  readonly #dir: string;
  #killed = false;
  #pid = 0;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  /** Process id of the pane's process, which leads the command's process group. */
  get pid(): number {
    return this.#pid;
  }

  get #statusFile(): string {
    return join(this.#dir, "status");
  }

  /** Starts `argv` in a new detached session of `width`×`height`. */
  static async start(argv: string[], opts: PtyOptions = {}): Promise<Pty> {
    const dir = await Deno.makeTempDir({ prefix: "chat-pty-" });
    const pty = new Pty(dir);
    // remain-on-exit keeps the pane, and so its last screen, after the command ends (without
    // tmux's "Pane is dead" line); no status line, so the pane is the whole window.
    await Deno.writeTextFile(
      join(dir, "tmux.conf"),
      "set -g remain-on-exit on\nset -g remain-on-exit-format ''\nset -g status off\n" +
        "set -g history-limit 50000\nset -g escape-time 0\n",
    );
    try {
      await pty.#tmux([
        "new-session",
        "-d",
        "-s",
        SESSION,
        "-x",
        String(opts.width ?? 110),
        "-y",
        String(opts.height ?? 30),
        ...(opts.cwd ? ["-c", opts.cwd] : []),
        "--",
        // The exit status goes to a file: tmux's own #{pane_dead_status} is sometimes never set
        // when its server was started from Deno. The shell waits for the command and writes it.
        "/bin/sh",
        "-c",
        '"$@"; echo $? > "$0"',
        pty.#statusFile,
        ...argv,
      ], { env: opts.env ?? {} });
      pty.#pid = Number(await pty.#tmux(["display-message", "-p", "-t", SESSION, "#{pane_pid}"]));
    } catch (err) {
      await pty.kill();
      throw err;
    }
    return pty;
  }

  /** Runs `tmux <args>` against this session's server; returns its stdout. */
  async #tmux(
    args: string[],
    opts: { env?: Record<string, string>; stdin?: string } = {},
  ): Promise<string> {
    const child = new Deno.Command("tmux", {
      args: ["-S", join(this.#dir, "socket"), "-f", join(this.#dir, "tmux.conf"), ...args],
      env: opts.env,
      clearEnv: opts.env !== undefined,
      stdin: opts.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    if (opts.stdin !== undefined) {
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(opts.stdin));
      await w.close();
    }
    const r = await child.output();
    if (!r.success) {
      throw new Error(`tmux ${args[0]} failed: ${new TextDecoder().decode(r.stderr).trim()}`);
    }
    return new TextDecoder().decode(r.stdout);
  }

  /** Types `text` as keystrokes, literally (no key names). */
  async type(text: string): Promise<void> {
    await this.#tmux(["send-keys", "-t", SESSION, "-l", "--", text]);
  }

  /** Presses keys by tmux name: "Enter", "C-c", "C-d", "Up", "M-Enter", "BSpace", ... */
  async press(...keys: string[]): Promise<void> {
    await this.#tmux(["send-keys", "-t", SESSION, ...keys]);
  }

  /**
   * Pastes `text` in one go, as a terminal does: through a tmux buffer, newlines sent as Enter
   * (CR), and wrapped in bracketed-paste markers when the program asked for them.
   */
  async paste(text: string): Promise<void> {
    await this.#tmux(["load-buffer", "-b", "paste", "-"], { stdin: text });
    await this.#tmux(["paste-buffer", "-b", "paste", "-d", "-p", "-t", SESSION]);
  }

  /** Resizes the terminal to `width`×`height`; the command gets SIGWINCH. */
  async resize(width: number, height: number): Promise<void> {
    await this.#tmux(["resize-window", "-t", SESSION, "-x", String(width), "-y", String(height)]);
  }

  /** The visible screen: one line per row, trailing spaces removed (so wait for "Prompt:"). */
  async screen(): Promise<string> {
    return await this.#tmux(["capture-pane", "-p", "-t", SESSION]);
  }

  /** Everything still in the pane: scrollback and screen, wrapped rows joined into lines. */
  async scrollback(): Promise<string> {
    return await this.#tmux(["capture-pane", "-p", "-J", "-S", "-", "-t", SESSION]);
  }

  /**
   * Resolves with the screen (or scrollback) once it matches `text`; rejects with what was on
   * the screen when `timeoutMs` passes first.
   */
  async waitFor(text: string | RegExp, opts: WaitOptions = {}): Promise<string> {
    const end = Date.now() + (opts.timeoutMs ?? 15_000);
    for (;;) {
      const seen = opts.scrollback ? await this.scrollback() : await this.screen();
      if (typeof text === "string" ? seen.includes(text) : text.test(seen)) return seen;
      if (Date.now() > end) {
        throw new Error(`timed out waiting for ${text} in the terminal; it shows:\n${seen}`);
      }
      await delay(50);
    }
  }

  /**
   * The command's exit status once it has ended (128 + the signal's number when a signal ended
   * it, as a shell reports it), else null.
   */
  async exitStatus(): Promise<number | null> {
    try {
      const text = await Deno.readTextFile(this.#statusFile);
      return text.endsWith("\n") ? Number(text) : null; // else still being written
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  }

  /** Waits for the command to end and returns its exit status. */
  async waitForExit(timeoutMs = 15_000): Promise<number> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.exitStatus();
      if (status !== null) return status;
      if (Date.now() > end) {
        throw new Error(`the command did not exit; the terminal shows:\n${await this.screen()}`);
      }
      await delay(50);
    }
  }

  /**
   * Kills the command and its children (SIGKILL to the pane's process group, in case they ignore
   * the hangup), the session and its tmux server, and removes the temporary directory.
   * Idempotent.
   */
  async kill(): Promise<void> {
    if (this.#killed) return;
    this.#killed = true;
    if (this.#pid > 0) {
      try {
        Deno.kill(-this.#pid, "SIGKILL"); // the pane's whole process group
      } catch { /* already gone */ }
    }
    await this.#tmux(["kill-server"]).catch(() => {}); // already gone
    await Deno.remove(this.#dir, { recursive: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill();
  }
}
