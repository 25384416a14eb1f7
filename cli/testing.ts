/**
 * Test helpers for the CLI's own unit tests: run commands in-process against a temporary HOME
 * with captured stdout/stderr (no subprocess, no network).
 *
 * @module
 */
import { run } from "./app.ts";
import type { Io } from "./io.ts";

/** Output of an in-process run. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Raw-mode switches of a pretend terminal stdin, in order. */
  rawModes: boolean[];
}

/** Options for {@linkcode runInProcess}. */
export interface RunOptions {
  /** HOME for the run. */
  home: string;
  /** CHAT_PROFILE, if set. */
  profile?: string;
  /** Text on stdin (not a terminal). */
  stdin?: string;
  /** Extra environment. */
  env?: Record<string, string>;
  /** Pretend stdout is a terminal. */
  stdoutTty?: boolean;
  /**
   * Pretend stdin is a terminal: `stdin` is then served by `read()` in chunks of at most
   * `ttyChunk` bytes (default: one keystroke each), and raw-mode switches are recorded in
   * `rawModes` of {@linkcode captureIo}'s result.
   */
  stdinTty?: boolean;
  /** Bytes per `read()` of a pretend terminal. */
  ttyChunk?: number;
  /** Fixed clock. */
  now?: () => Date;
}

/** A captured {@linkcode Io}. */
export function captureIo(
  opts: RunOptions,
): { io: Io; stdout: () => string; stderr: () => string; rawModes: boolean[] } {
  let out = "";
  let errText = "";
  const rawModes: boolean[] = [];
  const ttyBytes = new TextEncoder().encode(opts.stdin ?? "");
  let ttyOffset = 0;
  const chunk = opts.ttyChunk ?? 1;
  const env: Record<string, string> = { HOME: opts.home, ...(opts.env ?? {}) };
  if (opts.profile !== undefined) env.CHAT_PROFILE = opts.profile;
  const io: Io = {
    stdout: { write: (t) => void (out += t), isTerminal: opts.stdoutTty ?? false },
    stderr: { write: (t) => void (errText += t), isTerminal: false },
    stdin: opts.stdinTty
      ? {
        isTerminal: true,
        readable: () => new Blob([ttyBytes.subarray(ttyOffset)]).stream(),
        setRaw: (raw: boolean) => void rawModes.push(raw),
        read: (buf: Uint8Array) => {
          if (ttyOffset >= ttyBytes.length) return Promise.resolve(null);
          const n = Math.min(buf.length, chunk, ttyBytes.length - ttyOffset);
          buf.set(ttyBytes.subarray(ttyOffset, ttyOffset + n));
          ttyOffset += n;
          return Promise.resolve(n);
        },
      }
      : {
        isTerminal: false,
        readable: () => new Blob([opts.stdin ?? ""]).stream(),
      },
    env: (name) => env[name],
    now: opts.now ?? (() => new Date()),
  };
  return { io, stdout: () => out, stderr: () => errText, rawModes };
}

/** Runs `chat-p2p <argv>` in-process. */
export async function runInProcess(argv: string[], opts: RunOptions): Promise<RunResult> {
  const c = captureIo(opts);
  const code = await run(argv, c.io);
  return { code, stdout: c.stdout(), stderr: c.stderr(), rawModes: c.rawModes };
}

/** A fresh temporary HOME; remove it with `Deno.remove(home, { recursive: true })`. */
export function tempHome(): string {
  return Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
}

/** Runs `fn` with a fresh temporary HOME, removed afterwards whatever happens. */
export async function withHome(fn: (home: string) => Promise<void> | void): Promise<void> {
  const home = tempHome();
  try {
    await fn(home);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
}
