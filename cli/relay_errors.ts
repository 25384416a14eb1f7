/**
 * Turning relay failures into CLI errors, and the relay options several commands share.
 *
 * @module
 */
import { parseRelayUrl } from "@chat-p2p/protocol";
import { type Context, debug } from "./context.ts";
import { CliError, UsageError } from "./errors.ts";
import {
  type ChatClient,
  type ChatClientOptions,
  RelayError,
  type SendOutcome,
} from "@chat-p2p/client";
import { deadline } from "@chat-p2p/protocol/async";

/** The canonical form of a relay URL argument (docs/PROTOCOL.md §9), or a usage error. */
export function relayUrlArg(url: string, usage: string): string {
  const r = parseRelayUrl(url);
  if (!r.ok) {
    throw new UsageError(
      `not a relay URL: ${JSON.stringify(url)}: ${r.message.replace(/^Not a relay URL: /, "")} ` +
        "(expected ws://host:port/path, wss://..., or http(s)://...)",
      usage,
    );
  }
  return r.value;
}

/**
 * Client options wired to the command's context: its clock, the timeout, the verbose protocol
 * log on stderr.
 */
export function clientOptions(
  ctx: Context,
  timeoutMs: number,
  extra: ChatClientOptions = {},
): ChatClientOptions {
  return { timeoutMs, log: (line) => debug(ctx, line), now: () => ctx.io.now(), ...extra };
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

/** Connects `client` to `relayUrl`, or throws the failure as a CLI error. */
export async function connectOrFail(client: ChatClient, relayUrl: string): Promise<void> {
  try {
    await client.connect(relayUrl);
  } catch (e) {
    throw relayFailure(e, "the connection");
  }
}

/** What became of a queued message within `ms`: its outcome, or undefined (still queued). */
export function outcomeWithin(
  client: ChatClient,
  id: string,
  ms: number,
): Promise<SendOutcome | undefined> {
  return deadline(client.outcome(id), ms).catch(() => undefined);
}

/**
 * Why message `id` was not accepted, given its `outcome` (undefined: still queued after `ms`):
 * undefined when it was accepted; the relay's refusal when it failed; its last refusal or the
 * timeout, and that it stays queued, when it is still queued.
 */
export function notAccepted(
  client: ChatClient,
  id: string,
  outcome: SendOutcome | undefined,
  relayUrl: string,
  ms: number,
): string | undefined {
  if (outcome?.state === "accepted") return undefined;
  if (outcome) return relayFailure(outcome.error, "the message").message;
  const lastError = client.queued().find((m) => m.id === id)?.lastError;
  return (lastError
    ? relayFailure(lastError, "the message").message
    : `relay ${relayUrl} did not accept the message within ${ms / 1000} s`) + "; it stays queued";
}
