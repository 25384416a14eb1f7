/**
 * Helpers for end-to-end suites that drive the real `chat-p2p` command line: run it (or the
 * executable named by `CHAT_P2P_BIN`) as a subprocess under a temporary HOME. Relays for these
 * suites come from `relay_process.ts`.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Project root (the directory holding deno.json). */
export const PROJECT_ROOT: string = dirname(dirname(fileURLToPath(import.meta.url)));

/** Permissions the CLI runs with, as in the `cli` task. */
const CLI_PERMS = ["--allow-net", "--allow-read", "--allow-write", "--allow-env"];

/** Result of a finished CLI run. */
export interface CliResult {
  /** Exit code. */
  code: number;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
}

/** Options for {@linkcode runCli} and {@linkcode spawnCli}. */
export interface CliOptions {
  /** HOME of the run: the profile lives in `<home>/.chat-<profile>/`. */
  home: string;
  /** CHAT_PROFILE (unset: the CLI's default profile). */
  profile?: string;
  /** Text written to stdin, then stdin is closed (default: empty stdin). */
  stdin?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Kill the process after this many milliseconds (default 60 000). */
  timeoutMs?: number;
}

/**
 * The environment a CLI subprocess gets: a clean one with HOME/CHAT_PROFILE from `opts`, PATH,
 * and Deno's cache directory pinned to the caller's (a fresh HOME would otherwise make Deno
 * download every npm package again).
 */
export function cliEnv(opts: CliOptions): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ["PATH", "TMPDIR", "LANG", "LC_ALL", "TZ", "NPM_CONFIG_REGISTRY"]) {
    const v = Deno.env.get(name);
    if (v !== undefined) env[name] = v;
  }
  const denoDir = Deno.env.get("DENO_DIR") ??
    (Deno.env.get("HOME") ? join(Deno.env.get("HOME")!, ".cache", "deno") : undefined);
  if (denoDir) env.DENO_DIR = denoDir;
  env.HOME = opts.home;
  if (opts.profile !== undefined) env.CHAT_PROFILE = opts.profile;
  return { ...env, ...(opts.env ?? {}) };
}

/** The command line that runs the CLI: `CHAT_P2P_BIN` when set, else `deno run ... cli/main.ts`. */
export function cliCommand(args: string[]): { cmd: string; args: string[] } {
  const bin = Deno.env.get("CHAT_P2P_BIN");
  if (bin) return { cmd: bin, args };
  return {
    cmd: Deno.execPath(),
    args: ["run", ...CLI_PERMS, join(PROJECT_ROOT, "cli", "main.ts"), ...args],
  };
}

/** A CLI process still running (for `chat`). */
export interface CliProcess {
  /** The child process. */
  readonly child: Deno.ChildProcess;
  /** Writes text to its stdin as is. */
  write(text: string): Promise<void>;
  /** Writes a line (a "\n" is added) to its stdin. */
  writeLine(line: string): Promise<void>;
  /** Closes its stdin (EOF). */
  closeStdin(): Promise<void>;
  /** Resolves when stdout so far contains `text` (or rejects after `timeoutMs`). */
  waitForStdout(text: string | RegExp, timeoutMs?: number): Promise<string>;
  /** Waits for the exit and returns everything it printed. */
  result(): Promise<CliResult>;
  /** Kills it (SIGTERM) if still running, then waits. */
  kill(): Promise<CliResult>;
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  sink: (t: string) => void,
): Promise<void> {
  const dec = new TextDecoder();
  for await (const chunk of stream) sink(dec.decode(chunk, { stream: true }));
  sink(dec.decode());
}

/** Starts the CLI with piped stdin/stdout/stderr; the caller drives stdin. */
export function spawnCli(args: string[], opts: CliOptions): CliProcess {
  const { cmd, args: argv } = cliCommand(args);
  const child = new Deno.Command(cmd, {
    args: argv,
    cwd: PROJECT_ROOT,
    env: cliEnv(opts),
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  const outDone = collect(child.stdout, (t) => {
    stdout += t;
    notify();
  });
  const errDone = collect(child.stderr, (t) => {
    stderr += t;
    notify();
  });
  const writer = child.stdin.getWriter();
  let stdinClosed = false;
  const killTimer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, opts.timeoutMs ?? 60_000);
  const done = (async (): Promise<CliResult> => {
    const status = await child.status;
    await Promise.all([outDone, errDone]);
    clearTimeout(killTimer);
    notify();
    return { code: status.code, stdout, stderr };
  })();
  let exited = false;
  done.then(() => (exited = true));
  const closeStdin = async () => {
    if (stdinClosed) return;
    stdinClosed = true;
    try {
      await writer.close();
    } catch { /* process gone */ }
  };
  return {
    child,
    async write(text: string) {
      await writer.write(new TextEncoder().encode(text));
    },
    async writeLine(line: string) {
      await writer.write(new TextEncoder().encode(line + "\n"));
    },
    closeStdin,
    waitForStdout(text: string | RegExp, timeoutMs = 15_000) {
      const has = () => (typeof text === "string" ? stdout.includes(text) : text.test(stdout));
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          if (has()) {
            cleanup();
            resolve(stdout);
          } else if (exited) {
            cleanup();
            reject(
              new Error(
                `process exited before printing ${text}; stdout:\n${stdout}\nstderr:\n${stderr}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(`timed out waiting for ${text}; stdout:\n${stdout}\nstderr:\n${stderr}`),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async result() {
      await closeStdin();
      return await done;
    },
    async kill() {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      await closeStdin();
      return await done;
    },
  };
}

/** Runs `chat-p2p <args>` to completion: `{code, stdout, stderr}`. */
export async function runCli(args: string[], opts: CliOptions): Promise<CliResult> {
  const p = spawnCli(args, opts);
  if (opts.stdin !== undefined && opts.stdin !== "") {
    await p.write(opts.stdin).catch(() => {}); // it may exit without reading
  }
  return await p.result();
}
