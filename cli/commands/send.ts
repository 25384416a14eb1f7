/**
 * `chat-p2p send <relay-url> <contact> <text...>`: seals one message, hands it to the relay,
 * waits until the relay has stored it, and prints its id. The client library does the work;
 * this file parses the arguments and prints.
 *
 * @module
 */
import { ChatClient, DEFAULT_TIMEOUT_MS, openStore, RelayError } from "@chat-p2p/client";
import {
  type Command,
  type Context,
  err,
  out,
  parseCommandArgs,
  parseTimeout,
  warn,
} from "../context.ts";
import { CliError } from "../errors.ts";
import { readLines } from "../io.ts";
import { peerLabel } from "../ui/format.ts";
import { checkText, shortText } from "../ui/messages.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import {
  clientOptions,
  connectOrFail,
  notAccepted,
  outcomeWithin,
  relayFailure,
  relayUrlArg,
} from "../relay_errors.ts";

const USAGE = `Usage: chat-p2p send <relay-url> <contact> <text...> [--timeout <seconds>]

Encrypts <text> for <contact>, sends it through the relay and waits until the relay has stored
it (accepted). Prints the message id on stdout. The words of <text> are joined with spaces;
use "-" to read the text from stdin, and "--" before text that starts with "-".

Arguments:
  <relay-url>  ws://host:port/ws or wss://... (http:// and https:// are mapped to ws/wss)
  <contact>    a contact name (see \`chat-p2p contacts\`)

Messages to <contact> that an earlier send or chat wrote to history but never got to the relay
(the program was stopped, or the connection was lost) are sent first, under the same ids.

A message the relay cannot take right now (no answer, "unavailable", a full mailbox) is sent
again until the timeout; if it is still not accepted, send exits 1 and the message stays
queued for the next send or chat. Only a message the relay can never accept is marked failed
(\`chat-p2p resend\` queues it again).

Options:
  --timeout <seconds>  how long to wait for the relay (default ${DEFAULT_TIMEOUT_MS / 1000})
  -h, --help           show this help

Environment:
  ${PASSPHRASE_ENV}      the passphrase of an identity made with \`init --passphrase\`
                       (else it is asked on the terminal)`;

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
    // The passphrase first: contacts are encrypted at rest with it.
    const me = await unlockIdentity(ctx, store);
    const peer = store.resolvePeer(positionals[1]);
    // Deliveries stay at the relay for `sync` or `chat`; one failed attempt to connect is final.
    const client = new ChatClient(
      store,
      me,
      clientOptions(ctx, timeoutMs, { receive: false, giveUpAfterMs: 0 }),
    );
    try {
      await connectOrFail(client, relayUrl);
      // Earlier messages to this peer that never got an answer from a relay go first, same ids.
      const queued = client.resume(peer.key);
      if (queued.length > 0) {
        err(
          ctx,
          `sending ${queued.length} queued message${queued.length === 1 ? "" : "s"} to ` +
            `${peerLabel(peer.name, peer.fingerprint)} first`,
        );
      }
      let id: string;
      try {
        id = client.send(peer.key, text);
      } catch (e) {
        if (e instanceof RelayError) throw relayFailure(e, "the message");
        throw e;
      }
      const [outcomes, last] = await Promise.all([
        Promise.all(queued.map((q) => outcomeWithin(client, q.id, timeoutMs))),
        outcomeWithin(client, id, timeoutMs),
      ]);
      queued.forEach((q, i) => {
        const why = notAccepted(client, q.id, outcomes[i], relayUrl, timeoutMs);
        if (why !== undefined) warn(ctx, `queued message not sent: ${shortText(q.text)}: ${why}`);
      });
      const why = notAccepted(client, id, last, relayUrl, timeoutMs);
      if (why !== undefined) {
        const who = peerLabel(peer.name, peer.fingerprint);
        throw new CliError(
          last ? why : `${why} and is sent by the next \`send\` or \`chat\` to ${who}`,
          { cause: last?.state === "failed" ? last.error : undefined },
        );
      }
      out(ctx, id);
      if (ctx.io.stderr.isTerminal) {
        err(ctx, `✓ accepted by relay for ${peer.name ?? peer.fingerprint}`);
      }
    } finally {
      await client.close();
    }
  },
};
