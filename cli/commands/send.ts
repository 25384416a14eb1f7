/**
 * `chat-p2p send [<relay-url>] <contact> <text...>`: seals one message, hands it to the relay,
 * waits until the relay has stored it (or, with `--wait delivered`, until the peer's receipt
 * comes), and prints its id. The client library does the work; this file parses the arguments
 * and prints.
 *
 * @module
 */
import {
  ChatClient,
  DEFAULT_TIMEOUT_MS,
  MAX_MESSAGE_BYTES,
  MAX_MESSAGE_CHARACTERS,
  openStore,
  RelayError,
} from "@chat-p2p/client";
import { deadline } from "@chat-p2p/protocol/async";
import {
  type Command,
  type Context,
  err,
  out,
  parseCommandArgs,
  parseTimeout,
  warn,
} from "../context.ts";
import { CliError, EXIT, UsageError } from "../errors.ts";
import { peerLabel } from "../ui/format.ts";
import { checkText, shortText } from "../ui/messages.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import {
  chooseRelay,
  clientOptions,
  connectOrFail,
  notAccepted,
  outcomeWithin,
  RELAY_ENV,
  RELAY_HELP,
  relayFailure,
  relayPositional,
} from "../relay_errors.ts";

const USAGE = `Usage: chat-p2p send [<relay-url>] <contact> <text...> [--wait accepted|delivered]
                     [--timeout <seconds>] [--json]

Encrypts <text> for <contact>, sends it through the relay and waits until the relay has stored
it (accepted), or with --wait delivered until your contact's client has (its receipt). Prints the
message id on stdout. The words of <text> are joined with spaces; "-" reads the whole of stdin
as one message (newlines kept), and "--" goes before text that starts with "-".
${RELAY_HELP}

Arguments:
  <relay-url>  ws://host:port/ws or wss://... (http:// and https:// are mapped to ws/wss)
  <contact>    a contact name (see \`chat-p2p contacts\`)

A message has at most ${MAX_MESSAGE_CHARACTERS.toLocaleString("en-US")} characters and ${
  MAX_MESSAGE_BYTES.toLocaleString("en-US")
} bytes (see the README's limits).

Messages to <contact> that an earlier send or chat wrote to history but never got to the relay
(the program was stopped, or the connection was lost) are sent first, under the same ids.

A message the relay cannot take right now (no answer, "unavailable", a full mailbox) is sent
again until the timeout; if it is still not accepted, send exits 3 and the message stays
queued for the next send or chat. Only a message the relay can never accept is marked failed
(exit 1; \`chat-p2p resend\` queues it again).

With --wait delivered, send also receives what waits for you at the relay (the receipt comes
that way): those messages are stored in your history and counted unread by \`chat-p2p chats\`.

Exit codes: 0 done; 1 failed; 2 usage; 3 not accepted in time (queued, id printed);
4 with --wait delivered: accepted, but no receipt in time (id printed).

Options:
  --relay <url>        the relay (instead of <relay-url>)
  --wait <what>        accepted (default) or delivered
  --timeout <seconds>  how long to wait in all (default ${DEFAULT_TIMEOUT_MS / 1000})
  --json               print {"id","to","contact","state"} instead of the id
  -h, --help           show this help

Environment:
  ${RELAY_ENV}           the relay, when none is given
  ${PASSPHRASE_ENV}      the passphrase of an identity made with \`init --passphrase\`
                       (else it is asked on the terminal)`;

/** All of stdin as text, less one final line break (what `echo` and editors add). */
async function readAll(ctx: Context): Promise<string> {
  const text = await new Response(ctx.io.stdin.readable()).text();
  return text.replace(/\r?\n$/, "");
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
      {
        relay: { type: "string" },
        wait: { type: "string" },
        timeout: { type: "string" },
        json: { type: "boolean" },
      },
      [],
      null,
    );
    const { relay: given, rest } = relayPositional(positionals, values.relay, USAGE);
    if (rest.length < 2) {
      throw new UsageError(`send: missing ${rest.length === 0 ? "<contact> " : ""}<text>`, USAGE);
    }
    const wait = values.wait ?? "accepted";
    if (wait !== "accepted" && wait !== "delivered") {
      throw new UsageError(
        `--wait must be accepted or delivered, got ${JSON.stringify(wait)}`,
        USAGE,
      );
    }
    const timeoutMs = parseTimeout(this, values.timeout, DEFAULT_TIMEOUT_MS);
    const words = rest.slice(1);
    const text = checkText(
      words.length === 1 && words[0] === "-" ? await readAll(ctx) : words.join(" "),
      USAGE,
    );

    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    store.loadPublicKey(); // "no identity" before "unknown contact"
    const peer = store.resolvePeer(rest[0]);
    const relayUrl = chooseRelay(ctx, store, given, USAGE);
    const me = await unlockIdentity(ctx, store);
    const ends = Date.now() + timeoutMs;
    // Deliveries stay at the relay for `sync` or `chat`, unless a receipt is awaited; one failed
    // attempt to connect is final.
    const client = new ChatClient(
      store,
      me,
      clientOptions(ctx, timeoutMs, { receive: wait === "delivered", giveUpAfterMs: 0 }),
    );
    const who = peerLabel(peer.name, peer.fingerprint);
    const print = (id: string, state: string) =>
      out(
        ctx,
        values.json === true ? JSON.stringify({ id, to: peer.key, contact: peer.name, state }) : id,
      );
    try {
      const delivered = Promise.withResolvers<void>();
      let id: string | undefined;
      client.on("delivered", (e) => {
        if (e.messages.some((m) => m.id === id)) delivered.resolve();
      });
      await connectOrFail(client, relayUrl);
      // Earlier messages to this peer that never got an answer from a relay go first, same ids.
      const queued = client.resume(peer.key);
      if (queued.length > 0) {
        err(
          ctx,
          `sending ${queued.length} queued message${queued.length === 1 ? "" : "s"} to ` +
            `${who} first`,
        );
      }
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
        if (last?.state === "failed") throw new CliError(why, { cause: last.error });
        print(id, "sending");
        throw new CliError(`${why} and is sent by the next \`send\` or \`chat\` to ${who}`, {
          exitCode: EXIT.queued,
        });
      }
      if (wait === "delivered") {
        const left = Math.max(0, ends - Date.now());
        const got = await deadline(delivered.promise, left).then(() => true, () => false);
        if (!got && store.history(peer.key).get(id)?.state !== "delivered") {
          print(id, "accepted");
          throw new CliError(
            `the relay has the message, but ${who}'s client did not confirm it within ` +
              `${timeoutMs / 1000} s; it is delivered when ${who} comes online`,
            { exitCode: EXIT.notDelivered },
          );
        }
      }
      print(id, wait);
      if (ctx.io.stderr.isTerminal) {
        err(
          ctx,
          wait === "delivered" ? `✓✓ delivered to ${who}` : `✓ accepted by relay for ${who}`,
        );
      }
    } finally {
      await client.close();
    }
  },
};
