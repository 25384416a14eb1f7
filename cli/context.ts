/**
 * What every command receives: the process boundary, the selected profile and the output
 * preferences, plus the small helpers commands share to write lines and parse their arguments.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { styleText } from "node:util";
import { UsageError } from "./errors.ts";
import type { Io } from "./io.ts";

/** Per-invocation state handed to a command. */
export interface Context {
  /** Where output goes and where input comes from. */
  readonly io: Io;
  /** Profile name: `--profile`, else `CHAT_PROFILE`, else "default". */
  readonly profile: string;
  /** `--verbose`: stack traces and protocol logging on stderr. */
  readonly verbose: boolean;
  /** True when stdout may carry colour (a terminal, and `NO_COLOR` unset). */
  readonly color: boolean;
}

/** A sub-command of `chat-p2p`. */
export interface Command {
  /** Name typed on the command line. */
  readonly name: string;
  /** Other names that run it (`inbox` for `chats`). */
  readonly aliases?: readonly string[];
  /** One line for the top-level help. */
  readonly summary: string;
  /** Full help, printed by `--help` and after usage errors. */
  readonly usage: string;
  /** Runs the command; throws {@linkcode UsageError} or another error on failure. */
  run(args: string[], ctx: Context): Promise<void>;
}

/** Writes one line to stdout. */
export function out(ctx: Context, line: string): void {
  ctx.io.stdout.write(line + "\n");
}

/** Writes one line to stderr. */
export function err(ctx: Context, line: string): void {
  ctx.io.stderr.write(line + "\n");
}

/** Writes a `warning: ...` line to stderr. */
export function warn(ctx: Context, message: string): void {
  err(ctx, `warning: ${message}`);
}

/** Writes a protocol/debug line to stderr when `--verbose` is on. */
export function debug(ctx: Context, message: string): void {
  if (ctx.verbose) err(ctx, `debug: ${message}`);
}

/** Text styles used by the CLI. */
export type Style = "bold" | "dim" | "green" | "yellow" | "red" | "cyan" | "magenta";

/** Styles `text` for stdout when colour is allowed, else returns it unchanged. */
export function paint(ctx: Context, style: Style, text: string): string {
  return ctx.color ? styleText(style, text, { validateStream: false }) : text;
}

/** True when colour is allowed on a stream: a terminal and `NO_COLOR` unset or empty. */
export function colorAllowed(io: Io, isTerminal: boolean): boolean {
  const noColor = io.env("NO_COLOR");
  return isTerminal && (noColor === undefined || noColor === "");
}

/** Option spec accepted by {@linkcode parseCommandArgs} (the subset of node:util's we use). */
export type OptionSpec = Record<
  string,
  { type: "boolean" | "string"; short?: string }
>;

/** Result of {@linkcode parseCommandArgs}. */
export interface ParsedArgs {
  /** Option values by long name: `true` for booleans that were given, strings for values. */
  values: Record<string, string | boolean | undefined>;
  /** Positional arguments in order. */
  positionals: string[];
}

/**
 * Parses a command's arguments strictly with node:util `parseArgs`, turning every problem into a
 * {@linkcode UsageError} carrying the command's usage. `min`/`max` bound the positional count
 * (`max` null: unbounded); `names` names the positionals for the "missing" message.
 */
export function parseCommandArgs(
  cmd: Pick<Command, "name" | "usage">,
  args: string[],
  options: OptionSpec,
  names: string[],
  max: number | null = names.length,
): ParsedArgs {
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new UsageError(msg, cmd.usage);
  }
  const { positionals } = parsed;
  if (positionals.length < names.length) {
    const missing = names.slice(positionals.length).map((n) => `<${n}>`).join(" ");
    throw new UsageError(`${cmd.name}: missing ${missing}`, cmd.usage);
  }
  if (max !== null && positionals.length > max) {
    const extra = positionals.slice(max).map((p) => JSON.stringify(p)).join(" ");
    throw new UsageError(`${cmd.name}: unexpected argument ${extra}`, cmd.usage);
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [k, v] of Object.entries(parsed.values)) {
    if (typeof v === "string" || typeof v === "boolean") values[k] = v;
  }
  return { values, positionals };
}

/** Parses `--timeout <seconds>` into milliseconds (default `defaultMs`). */
export function parseTimeout(
  cmd: Pick<Command, "usage">,
  value: string | boolean | undefined,
  defaultMs: number,
): number {
  if (value === undefined) return defaultMs;
  const s = typeof value === "string" ? Number(value) : NaN;
  if (typeof value !== "string" || value.trim() === "" || !Number.isFinite(s) || s <= 0) {
    throw new UsageError(
      `--timeout must be a positive number of seconds, got ${JSON.stringify(value)}`,
      cmd.usage,
    );
  }
  return Math.round(s * 1000);
}
