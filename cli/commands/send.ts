/**
 * `chat-p2p send <relay-url> <contact> <text...>`: seals one message, hands it to the relay,
 * waits until the relay has stored it, and prints its id.
 *
 * @module
 */
import { MAX_TEXT_CHARS, sealEnvelope } from "@chat-p2p/protocol";
import {
  type Command,
  type Context,
  err,
  out,
  parseCommandArgs,
  parseTimeout,
  warn,
} from "../context.ts";
import { UsageError } from "../errors.ts";
import { peerLabel, preview, sanitizeForTerminal } from "../ui/format.ts";
import { readLines } from "../io.ts";
import {
  connectRelay,
  DEFAULT_TIMEOUT_MS,
  openStore,
  queuedOutgoing,
  RelayError,
} from "@chat-p2p/client";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import { connectOptions, relayFailure, relayUrlArg } from "../relay_errors.ts";

const USAGE = `Usage: chat-p2p send <relay-url> <contact> <text...> [--timeout <seconds>]

Encrypts <text> for <contact>, sends it through the relay and waits until the relay has stored
it (accepted). Prints the message id on stdout. The words of <text> are joined with spaces;
use "-" to read the text from stdin, and "--" before text that starts with "-".

Arguments:
  <relay-url>  ws://host:port/ws or wss://... (http:// and https:// are mapped to ws/wss)
  <contact>    a contact name (see \`chat-p2p contacts\`)

Messages to <contact> that an earlier send or chat wrote to history but never got to the relay
(the program was stopped, or the connection was lost) are sent first, under the same ids.

Options:
  --timeout <seconds>  how long to wait for the relay (default ${DEFAULT_TIMEOUT_MS / 1000})
  -h, --help           show this help

Environment:
  ${PASSPHRASE_ENV}      the passphrase of an identity made with \`init --passphrase\`
                       (else it is asked on the terminal)`;

/** Validates message text, throwing a usage error when empty or too long. */
export function checkText(text: string, usage: string): string {
  if (text.trim() === "") throw new UsageError("the message text is empty", usage);
  if (text.length > MAX_TEXT_CHARS) {
    throw new UsageError(
      `the message is ${text.length} characters long; at most ${MAX_TEXT_CHARS} are allowed`,
      usage,
    );
  }
  return text;
}

async function readAll(ctx: Context): Promise<string> {
  const lines: string[] = [];
  for await (const line of readLines(ctx.io.stdin.readable())) lines.push(line);
  return lines.join("\n");
}

/** The `send` command. */
export const sendCommand: Command = {
  name: "send",
  summary: "send one message and print its id",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(
      this,
      args,
      { timeout: { type: "string" } },
      ["relay-url", "contact", "text"],
      null,
    );
    const relayUrl = relayUrlArg(positionals[0], USAGE);
    const timeoutMs = parseTimeout(this, values.timeout, DEFAULT_TIMEOUT_MS);
    const words = positionals.slice(2);
    const text = checkText(
      words.length === 1 && words[0] === "-" ? await readAll(ctx) : words.join(" "),
      USAGE,
    );

    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    store.loadPublicKey(); // "no identity" before "unknown contact"
    const peer = store.resolvePeer(positionals[1]);
    const me = await unlockIdentity(ctx, store);
    const sentAt = ctx.io.now().toISOString();
    const envelope = sealEnvelope({ v: 1, kind: "message", text, sent_at: sentAt }, me, peer.key);
    // Earlier messages to this peer that never got an answer from a relay go first, same ids.
    const queued = queuedOutgoing(store, me, peer.key);

    let session;
    try {
      session = await connectRelay(relayUrl, me, connectOptions(ctx, timeoutMs));
    } catch (e) {
      throw relayFailure(e, "the connection");
    }
    const log = store.history(peer.key);
    const resends: Promise<void>[] = [];
    try {
      if (queued.length > 0) {
        err(
          ctx,
          `sending ${queued.length} queued message${queued.length === 1 ? "" : "s"} to ` +
            `${peerLabel(peer.name, peer.fingerprint)} first`,
        );
      }
      for (const q of queued) {
        resends.push(
          session.send(q.envelope, { timeoutMs }).then(
            () => void log.appendState(q.envelope.id, "accepted", ctx.io.now().toISOString()),
            (e: unknown) => {
              // Refused by the relay: failed for good. Timeout or lost connection: still queued.
              if (e instanceof RelayError && e.fromRelay) {
                log.appendState(q.envelope.id, "failed", ctx.io.now().toISOString());
              }
              warn(
                ctx,
                `queued message not sent: ${sanitizeForTerminal(preview(q.text))}: ${
                  relayFailure(e, "the message").message
                }`,
              );
            },
          ),
        );
      }
      // Written before sending, so a message the relay may hold is never missing from history.
      log.appendMessage({ id: envelope.id, dir: "out", text, sent_at: sentAt, at: sentAt });
      try {
        await session.send(envelope, { timeoutMs });
      } catch (e) {
        log.appendState(envelope.id, "failed", ctx.io.now().toISOString());
        throw relayFailure(e, "the message");
      }
      log.appendState(envelope.id, "accepted", ctx.io.now().toISOString());
      out(ctx, envelope.id);
      if (ctx.io.stderr.isTerminal) {
        err(ctx, `✓ accepted by relay for ${peer.name ?? peer.fingerprint}`);
      }
    } finally {
      await Promise.all(resends);
      await session.close();
    }
  },
};
