/**
 * `chat-p2p sync [<relay-url>] [--json]`: fetches every pending envelope, stores it, acks it,
 * sends delivery receipts and prints the new messages (which then count as read). The client
 * library does the work (in batches: one fsync and one ack per batch); this file parses the
 * arguments and prints.
 *
 * @module
 */
import { ChatClient, DEFAULT_TIMEOUT_MS, openStore, ReadMarks } from "@chat-p2p/client";
import {
  type Command,
  type Context,
  err,
  out,
  parseCommandArgs,
  parseTimeout,
  warn,
} from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import { messageJson, messageLine, rejectedLine, shortText } from "../ui/messages.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import {
  chooseRelay,
  clientOptions,
  connectOrFail,
  RELAY_ENV,
  RELAY_HELP,
  relayFailure,
  relayPositional,
} from "../relay_errors.ts";

const USAGE = `Usage: chat-p2p sync [<relay-url>] [--json] [--timeout <seconds>]

Fetches the messages waiting for you at the relay, stores them in your history, tells the relay
they are safe (ack) and sends each sender a delivery receipt. Prints the new messages, which
then count as read: "[time] name: text", or with --json one JSON object per line:
{"id","from","contact","fingerprint","text","sent_at"} (contact is null for strangers).
Messages whose box does not open with the sender's claimed key are reported on stderr and dropped.
${RELAY_HELP}

Options:
  --relay <url>        the relay (instead of <relay-url>)
  --json               JSON lines on stdout
  --timeout <seconds>  how long to wait for the relay (default ${DEFAULT_TIMEOUT_MS / 1000})
  -h, --help           show this help

Environment:
  ${RELAY_ENV}           the relay, when none is given
  ${PASSPHRASE_ENV}      the passphrase of an identity made with \`init --passphrase\`
                       (else it is asked on the terminal)`;

/** The `sync` command. */
export const syncCommand: Command = {
  name: "sync",
  summary: "fetch waiting messages, store them and print them",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(
      this,
      args,
      {
        relay: { type: "string" },
        json: { type: "boolean" },
        timeout: { type: "string" },
      },
      [],
      1,
    );
    const { relay: given, rest } = relayPositional(positionals, values.relay, USAGE);
    if (rest.length > 0) {
      throw new UsageError(`sync: unexpected argument ${JSON.stringify(rest[0])}`, USAGE);
    }
    const timeoutMs = parseTimeout(this, values.timeout, DEFAULT_TIMEOUT_MS);
    const json = values.json === true;
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const relayUrl = chooseRelay(ctx, store, given, USAGE);
    const me = await unlockIdentity(ctx, store);
    /** The messages printed, per sender: they count as read. */
    const printed = new Map<string, string[]>();

    const client = new ChatClient(store, me, clientOptions(ctx, timeoutMs, { giveUpAfterMs: 0 }));
    let newMessages = 0;
    const done = Promise.withResolvers<void>();
    done.promise.catch(() => {}); // awaited below; may fail before that
    // The relay sends nothing for the whole timeout: it stopped before the end of the backlog.
    let idle: ReturnType<typeof setTimeout> | undefined;
    const alive = () => {
      clearTimeout(idle);
      idle = setTimeout(() =>
        done.reject(
          new CliError(
            `relay ${relayUrl} stopped sending before the end of pending messages ` +
              `(no frame for ${timeoutMs / 1000} s)`,
          ),
        ), timeoutMs);
    };
    const stopWatching = client.on("*", alive);
    client.on("message", ({ message, duplicate }) => {
      if (duplicate) return;
      newMessages++;
      out(ctx, json ? JSON.stringify(messageJson(message)) : messageLine(ctx, message));
      const ids = printed.get(message.from) ?? [];
      ids.push(message.id);
      printed.set(message.from, ids);
    });
    client.on("rejected", (r) => err(ctx, rejectedLine(r)));
    client.on("delivered", (d) => {
      for (const m of d.messages) {
        err(ctx, `  ✓✓ delivered to ${d.contact ?? d.from}: ${shortText(m.text)}`);
      }
    });
    client.on("relay_error", (e) => warn(ctx, `relay error: ${e.code}: ${e.message}`));
    client.on("error", (e) => {
      if (e.during === "receipt") {
        warn(
          ctx,
          `could not send a delivery receipt: ${relayFailure(e.error, "the receipt").message}`,
        );
      } else done.reject(new CliError(e.error.message, { cause: e.error }));
    });
    client.on("synced", () => done.resolve());
    client.on("connection", (e) => {
      if (e.state !== "disconnected" || !e.close) return;
      done.reject(
        new CliError(
          `relay ${relayUrl} closed the connection before all pending messages arrived ` +
            `(code ${e.close.code}${e.close.reason ? `: ${e.close.reason}` : ""})`,
        ),
      );
    });
    try {
      await connectOrFail(client, relayUrl);
      await done.promise;
    } finally {
      stopWatching();
      clearTimeout(idle);
      // What is stored is acked and its senders get receipts, whatever happened (at least once:
      // the rest comes back next time).
      await client.close();
      const marks = new ReadMarks(store);
      for (const [peer, ids] of printed) marks.markRead(peer, ids, ctx.io.now());
      marks.save();
    }
    if (!json) {
      err(
        ctx,
        newMessages === 0
          ? "no new messages"
          : `${newMessages} new message${newMessages === 1 ? "" : "s"}`,
      );
    }
  },
};
