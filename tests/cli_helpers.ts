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
const CLI_PERMS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-run=/bin/sh", // listen --exec
];

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

/** Options for {@linkcode CliProcess.waitForStdout} and {@linkcode CliProcess.waitForStderr}. */
export interface WaitOptions {
  /** How many matches to wait for (default 1). */
  count?: number;
  /** Reject after this many milliseconds (default 45 000, a generous upper bound). */
  timeoutMs?: number;
}

/** A CLI process still running (for `chat`); `await using` kills it if still running. */
export interface CliProcess extends AsyncDisposable {
  /** The child process. */
  readonly child: Deno.ChildProcess;
  /** Everything written to stdout so far. */
  readonly stdout: string;
  /** Everything written to stderr so far. */
  readonly stderr: string;
  /** Writes text to its stdin as is. */
  write(text: string): Promise<void>;
  /** Writes a line (a "\n" is added) to its stdin. */
  writeLine(line: string): Promise<void>;
  /** Closes its stdin (EOF). */
  closeStdin(): Promise<void>;
  /**
   * Resolves with stdout so far once it contains `text` at least `count` times (rejects on
   * timeout, or if the process exits first).
   */
  waitForStdout(text: string | RegExp, opts?: WaitOptions): Promise<string>;
  /** As {@linkcode CliProcess.waitForStdout}, on stderr. */
  waitForStderr(text: string | RegExp, opts?: WaitOptions): Promise<string>;
  /** Closes stdin, waits for the exit and returns everything it printed. */
  result(): Promise<CliResult>;
  /** Same as {@linkcode CliProcess.result}: EOF on stdin, then the exit. */
  end(): Promise<CliResult>;
  /** Kills it with `signal` (default SIGTERM) if still running, then waits. */
  kill(signal?: Deno.Signal): Promise<CliResult>;
  /** Kills it (SIGKILL) if still running and waits for the exit. */
  [Symbol.asyncDispose](): Promise<void>;
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  sink: (t: string) => void,
): Promise<void> {
  const dec = new TextDecoder();
  for await (const chunk of stream) sink(dec.decode(chunk, { stream: true }));
  sink(dec.decode());
}

/** How many times `text` occurs in `haystack` (a RegExp is matched globally). */
function countMatches(haystack: string, text: string | RegExp): number {
  if (typeof text === "string") return text === "" ? 1 : haystack.split(text).length - 1;
  const global = new RegExp(text.source, text.flags.includes("g") ? text.flags : text.flags + "g");
  return (haystack.match(global) ?? []).length;
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
  let exited = false;
  const done = (async (): Promise<CliResult> => {
    const status = await child.status;
    await Promise.all([outDone, errDone]);
    clearTimeout(killTimer);
    exited = true;
    notify();
    return { code: status.code, stdout, stderr };
  })();
  const closeStdin = async () => {
    if (stdinClosed) return;
    stdinClosed = true;
    try {
      await writer.close();
    } catch { /* process gone */ }
  };
  const result = async () => {
    await closeStdin();
    return await done;
  };
  const kill = async (signal: Deno.Signal = "SIGTERM") => {
    if (!exited) {
      try {
        child.kill(signal);
      } catch { /* exited */ }
    }
    return await result();
  };
  const waitFor = (
    name: "stdout" | "stderr",
    read: () => string,
    text: string | RegExp,
    { count = 1, timeoutMs = 45_000 }: WaitOptions = {},
  ) => {
    const what = `${text}${count === 1 ? "" : ` x${count}`} on ${name}`;
    return new Promise<string>((resolve, reject) => {
      const check = () => {
        if (countMatches(read(), text) >= count) {
          cleanup();
          resolve(read());
        } else if (exited) {
          cleanup();
          reject(
            new Error(`process exited before ${what}; stdout:\n${stdout}\nstderr:\n${stderr}`),
          );
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; stdout:\n${stdout}\nstderr:\n${stderr}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  };
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    async write(text: string) {
      await writer.write(new TextEncoder().encode(text));
    },
    async writeLine(line: string) {
      await writer.write(new TextEncoder().encode(line + "\n"));
    },
    closeStdin,
    waitForStdout: (text, o) => waitFor("stdout", () => stdout, text, o),
    waitForStderr: (text, o) => waitFor("stderr", () => stderr, text, o),
    result,
    end: result,
    kill,
    async [Symbol.asyncDispose]() {
      await kill("SIGKILL");
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

/** Runs `chat-p2p <args>` and fails, with everything it printed, unless it exits 0. */
export async function runCliOk(args: string[], opts: CliOptions): Promise<CliResult> {
  const r = await runCli(args, opts);
  if (r.code !== 0) {
    throw new Error(
      `chat-p2p ${args.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
    );
  }
  return r;
}

/** Profiles alice and bob under `home`, each with an identity and the other as a contact. */
export async function pairedProfiles(home: string): Promise<{
  alice: CliOptions;
  bob: CliOptions;
  aKey: string;
  bKey: string;
}> {
  const alice: CliOptions = { home, profile: "alice" };
  const bob: CliOptions = { home, profile: "bob" };
  const aKey = (await runCliOk(["init"], alice)).stdout.trim();
  const bKey = (await runCliOk(["init"], bob)).stdout.trim();
  await runCliOk(["add-contact", "bob", bKey], alice);
  await runCliOk(["add-contact", "alice", aKey], bob);
  return { alice, bob, aKey, bKey };
}

/** Every file under `dir` (recursively), by path, as text. */
export function filesUnder(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) { for (const [k, v] of filesUnder(p)) out.set(k, v); }
    else out.set(p, Deno.readTextFileSync(p));
  }
  return out;
}

/** The JSON objects of a command's `--json` output, one a line (blank lines skipped). */
// deno-lint-ignore no-explicit-any
export function jsonLines(text: string): Array<Record<string, any>> {
  return text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}
