/**
 * Turning relay failures into CLI errors, and the relay options several commands share: which
 * relay a command uses (the URL given, else `CHAT_RELAY`, else the profile's `config` relay).
 *
 * @module
 */
import { normalizeRelayUrl } from "@chat-p2p/protocol";
import { type Context, debug } from "./context.ts";
import { CliError, UsageError } from "./errors.ts";
import {
  type ChatClient,
  type ChatClientOptions,
  ProfileConfig,
  type ProfileStore,
  RelayError,
  type SendOutcome,
} from "@chat-p2p/client";
import { deadline } from "@chat-p2p/protocol/async";

/** The environment variable naming the relay to use when a command names none. */
export const RELAY_ENV = "CHAT_RELAY";

/** The help text's lines about choosing a relay, for every command that talks to one. */
export const RELAY_HELP =
  `The relay is <relay-url> or --relay when given, else $${RELAY_ENV}, else the profile's
\`chat-p2p config set relay <url>\`.`;

/** True for an argument meant as a URL rather than a contact name (names have no "://"). */
function looksLikeRelayUrl(arg: string | undefined): boolean {
  return arg !== undefined && /^[a-z][a-z0-9+.-]*:\/\//i.test(arg);
}

/**
 * Takes an optional leading relay URL off `positionals` (a contact name can never look like one)
 * and returns it, normalised, with the rest; `--relay` is the same thing as an option, and both
 * together are a usage error.
 */
export function relayPositional(
  positionals: string[],
  option: string | boolean | undefined,
  usage: string,
): { relay: string | undefined; rest: string[] } {
  const given = looksLikeRelayUrl(positionals[0]) ? positionals[0] : undefined;
  if (given !== undefined && typeof option === "string") {
    throw new UsageError("give the relay once: as <relay-url> or as --relay", usage);
  }
  const relay = given ?? (typeof option === "string" ? option : undefined);
  return {
    relay: relay === undefined ? undefined : relayUrlArg(relay, usage),
    rest: given === undefined ? positionals : positionals.slice(1),
  };
}

/**
 * The relay a command uses: `given` (an argument or --relay, normalised by
 * {@linkcode relayPositional}), else `CHAT_RELAY`, else the profile's config; normalised.
 * Undefined when there is none.
 */
export function knownRelay(
  ctx: Context,
  store: ProfileStore,
  given: string | undefined,
  usage: string,
): string | undefined {
  if (given !== undefined) return given;
  const env = ctx.io.env(RELAY_ENV);
  if (env) return relayUrlArg(env, usage, RELAY_ENV);
  return new ProfileConfig(store).get("relay");
}

/** {@linkcode knownRelay}, or a usage error that says how to set one. */
export function chooseRelay(
  ctx: Context,
  store: ProfileStore,
  given: string | undefined,
  usage: string,
): string {
  const relay = knownRelay(ctx, store, given, usage);
  if (relay !== undefined) return relay;
  throw new UsageError(
    `no relay given: name one (ws://host:port/ws), set ${RELAY_ENV}, or save one with ` +
      "`chat-p2p config set relay <url>`",
    usage,
  );
}

/** Normalises a relay URL argument, or throws a usage error. */
export function relayUrlArg(url: string, usage: string, from?: string): string {
  const n = normalizeRelayUrl(url);
  if (!n) {
    throw new UsageError(
      `${from ? `${from} is ` : ""}not a relay URL: ${
        JSON.stringify(url)
      } (expected ws://host:port/path, wss://..., or http(s)://...)`,
      usage,
    );
  }
  return n;
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
