/**
 * The two kinds of failure a command reports. `main.ts` maps them to exit codes in one place:
 * {@linkcode UsageError} exits 2 with the command's usage, {@linkcode CliError} (and anything else)
 * exits 1 with `error: ...`.
 *
 * @module
 */

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
  /** Creates a runtime error with a user-facing message. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CliError";
  }
}

/** The message of any thrown value, for `error: ...` lines. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
