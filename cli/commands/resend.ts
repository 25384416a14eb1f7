/**
 * `chat-p2p resend <contact> [<id>] [--relay <url>]`: puts failed messages back in the queue.
 * The client library's outbox does the work; this file parses the arguments and prints.
 *
 * @module
 */
import {
  ChatClient,
  DEFAULT_TIMEOUT_MS,
  openStore,
  type ProfileStore,
  requeueFailed,
} from "@chat-p2p/client";
import {
  type Command,
  type Context,
  err,
  out,
  parseCommandArgs,
  parseTimeout,
  warn,
} from "../context.ts";
import { CliError, EXIT } from "../errors.ts";
import { peerLabel } from "../ui/format.ts";
import { shortText } from "../ui/messages.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import {
  clientOptions,
  knownRelay,
  notAccepted,
  outcomeWithin,
  RELAY_ENV,
  relayFailure,
  relayPositional,
} from "../relay_errors.ts";

const USAGE = `Usage: chat-p2p resend <contact> [<id>] [--relay <url>] [--timeout <seconds>]

Puts the messages to <contact> that failed (refused by the relay for good, "✗ failed" in
\`chat-p2p history\`) back in the queue, or only the one with <id>, and prints their ids. The next
\`send\` or \`chat\` to <contact> sends them, under the same ids. When a relay is known (--relay,
$${RELAY_ENV} or \`chat-p2p config set relay\`) they are sent now, with any other message to
<contact> still queued, and resend waits until the relay has them, like \`send\` (exit 3 when
some stay queued).

Options:
  --relay <url>        send them now through this relay (ws://host:port/ws, wss://...)
  --queue-only         only queue them again, even when a relay is known
  --json               print {"id","state"} per message instead of the ids
  --timeout <seconds>  how long to wait for the relay (default ${DEFAULT_TIMEOUT_MS / 1000})
  -h, --help           show this help

Environment:
  ${RELAY_ENV}           the relay, when --relay is not given
  ${PASSPHRASE_ENV}      with a relay: the passphrase of an identity made with
                       \`init --passphrase\` (else it is asked on the terminal)`;

/** Nothing to resend: fine without an id; with one, say what that message is. */
function nothingFailed(
  ctx: Context,
  store: ProfileStore,
  peer: string,
  who: string,
  id: string | undefined,
): void {
  if (id === undefined) return err(ctx, `no failed messages to ${who}`);
  const e = store.history(peer).get(id);
  throw new CliError(
    e && e.dir === "out"
      ? `message ${id} to ${who} did not fail (it is ${e.state})`
      : `no message ${id} to ${who} in your history`,
  );
}

/** The `resend` command. */
export const resendCommand: Command = {
  name: "resend",
  summary: "queue failed messages to a contact again (and send them)",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(
      this,
      args,
      {
        relay: { type: "string" },
        "queue-only": { type: "boolean" },
        timeout: { type: "string" },
        json: { type: "boolean" },
      },
      ["contact"],
      2,
    );
    const given = relayPositional([], values.relay, USAGE).relay;
    const timeoutMs = parseTimeout(this, values.timeout, DEFAULT_TIMEOUT_MS);
    const id = positionals[1] as string | undefined;
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    store.loadPublicKey(); // "no identity" before "unknown contact"
    const peer = store.resolvePeer(positionals[0], { allowUnknownKey: true });
    const who = peerLabel(peer.name, peer.fingerprint);
    const print = (id: string, state: string) =>
      out(ctx, values.json === true ? JSON.stringify({ id, state }) : id);
    const relayUrl = values["queue-only"] === true
      ? undefined
      : knownRelay(ctx, store, given, USAGE);
    if (!relayUrl) {
      // Only history changes: no key needed, so no passphrase asked.
      const ids = requeueFailed(store, peer.key, ctx.io.now(), id);
      if (ids.length === 0) return nothingFailed(ctx, store, peer.key, who, id);
      for (const i of ids) print(i, "sending");
      err(
        ctx,
        `${ids.length} message${ids.length === 1 ? "" : "s"} queued again; the next ` +
          `\`send\` or \`chat\` to ${who} sends ${ids.length === 1 ? "it" : "them"}`,
      );
      return;
    }
    const client = new ChatClient(
      store,
      await unlockIdentity(ctx, store),
      clientOptions(ctx, timeoutMs, { receive: false, giveUpAfterMs: 0 }),
    );
    try {
      // What was queued before (an earlier resend without a relay, say) goes too.
      const queued = [...client.resume(peer.key), ...client.resend(peer.key, id)]
        .filter((m) => id === undefined || m.id === id);
      if (queued.length === 0) return nothingFailed(ctx, store, peer.key, who, id);
      try {
        await client.connect(relayUrl);
      } catch (e) {
        const n = queued.length;
        for (const m of queued) print(m.id, "sending");
        throw new CliError(
          `${relayFailure(e, "the connection").message}; ${n} message${n === 1 ? "" : "s"} ` +
            `queued again for the next \`send\` or \`chat\` to ${who}`,
          { cause: e, exitCode: EXIT.queued },
        );
      }
      const outcomes = await Promise.all(queued.map((m) => outcomeWithin(client, m.id, timeoutMs)));
      let failed = 0;
      let stillQueued = 0;
      queued.forEach((m, i) => {
        const outcome = outcomes[i];
        const why = notAccepted(client, m.id, outcome, relayUrl, timeoutMs);
        if (why === undefined) return print(m.id, "accepted");
        if (outcome?.state === "failed") failed++;
        else {
          stillQueued++;
          print(m.id, "sending");
        }
        warn(ctx, `not sent: ${shortText(m.text)}: ${why}`);
      });
      if (failed + stillQueued > 0) {
        throw new CliError(`${failed + stillQueued} of ${queued.length} message(s) not accepted`, {
          exitCode: failed > 0 ? EXIT.failure : EXIT.queued,
        });
      }
    } finally {
      await client.close();
    }
  },
};
