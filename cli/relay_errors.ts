/**
 * Turning relay failures into CLI errors, and the relay options several commands share.
 *
 * @module
 */
import { normalizeRelayUrl } from "@chat-p2p/protocol";
import { type Context, debug } from "./context.ts";
import { CliError, UsageError } from "./errors.ts";
import { type ConnectOptions, RelayError } from "@chat-p2p/client";

/** Normalises a relay URL argument, or throws a usage error. */
export function relayUrlArg(url: string, usage: string): string {
  const n = normalizeRelayUrl(url);
  if (!n) {
    throw new UsageError(
      `not a relay URL: ${
        JSON.stringify(url)
      } (expected ws://host:port/path, wss://..., or http(s)://...)`,
      usage,
    );
  }
  return n;
}

/** Connect options wired to the command's context (verbose protocol log on stderr). */
export function connectOptions(ctx: Context, timeoutMs: number): ConnectOptions {
  return { timeoutMs, log: (line) => debug(ctx, line) };
}

/** A user-facing error for a relay failure (the relay's code and message when it sent them). */
export function relayFailure(e: unknown, what: string): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof RelayError && e.fromRelay) {
    const hint = e.code === "rate_limited" && e.retryAfterMs !== undefined
      ? ` (retry after ${Math.ceil(e.retryAfterMs / 1000)} s)`
      : "";
    return new CliError(`relay refused ${what}: ${e.code}: ${e.message}${hint}`, { cause: e });
  }
  return new CliError(e instanceof Error ? e.message : String(e), { cause: e });
}
