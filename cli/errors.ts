/**
 * The two kinds of failure a command reports, and the exit codes. `app.ts` maps them to exit
 * codes in one place: {@linkcode UsageError} exits 2 with the command's usage,
 * {@linkcode CliError} exits with its `exitCode` (1 unless it says otherwise) and anything else
 * exits 1, each with `error: ...`.
 *
 * @module
 */

/** Exit codes; the README's table lists them. */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** A runtime failure: `error: ...` says what. */
  failure: 1,
  /** The command line is wrong: the usage follows the error. */
  usage: 2,
  /** A message is safe in history but the relay did not accept it in time: it stays queued. */
  queued: 3,
  /** `send --wait delivered`: the relay has the message, no receipt came in time. */
  notDelivered: 4,
} as const;

/** One of {@linkcode EXIT}'s codes. */
export type ExitCode = typeof EXIT[keyof typeof EXIT];

/** The command line itself is wrong (unknown option, missing argument, malformed value). */
export class UsageError extends Error {
  /** Usage text of the command the error is about, printed after the message. */
  readonly usage: string | undefined;

  /** Creates a usage error; `usage` is the help of the command it concerns, if known. */
  constructor(message: string, usage?: string) {
    super(message);
    this.name = "UsageError";
    this.usage = usage;
  }
}

/** A runtime failure with a message meant for the user (no stack trace unless --verbose). */
export class CliError extends Error {
  /** The process's exit code (default {@linkcode EXIT}.failure). */
  readonly exitCode: ExitCode;

  /** Creates a runtime error with a user-facing message. */
  constructor(message: string, options?: ErrorOptions & { exitCode?: ExitCode }) {
    super(message, options);
    this.name = "CliError";
    this.exitCode = options?.exitCode ?? EXIT.failure;
  }
}

/**
 * Ends the command with `code` and nothing more to say (it was said already): a chat left on a
 * signal exits 128 + its number.
 */
export class ExitStatus extends Error {
  /** The process's exit code. */
  readonly code: number;

  /** Creates the exit with `code`. */
  constructor(code: number) {
    super(`exit ${code}`);
    this.name = "ExitStatus";
    this.code = code;
  }
}

/** The message of any thrown value, for `error: ...` lines. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
