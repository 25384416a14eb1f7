/**
 * `chat-p2p accept <fingerprint> <name> [--relay <url>]`: accepts a first-contact request.
 *
 * @module
 */
import {
  ChatClient,
  DEFAULT_TIMEOUT_MS,
  explainContactName,
  keyFingerprint,
  openStore,
  RequestStore,
} from "@chat-p2p/client";
import {
  type Command,
  type Context,
  err,
  parseCommandArgs,
  parseTimeout,
  warn,
} from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import {
  clientOptions,
  connectOrFail,
  knownRelay,
  RELAY_ENV,
  relayUrlArg,
} from "../relay_errors.ts";

const USAGE = `Usage: chat-p2p accept <fingerprint> <name> [--relay <url>] [--timeout <seconds>]

Accepts the first-contact request from the key with <fingerprint> (see \`chat-p2p requests\`):
saves it as contact <name>, moves its messages into your history, and sets up your mailbox for
its messages (opened by your next \`sync\` or \`chat\`). The sender gets a delivery receipt for
those messages through the relay (--relay, else $CHAT_RELAY, else the profile's default relay),
or, with none, through your next \`send\`, \`sync\` or \`chat\`.

Arguments:
  <fingerprint>  as \`chat-p2p requests\` shows it (spaces optional), or the sender's key
  <name>         1-32 letters, digits, '_', '-' or '.', starting with a letter or digit

Options:
  --relay <url>        send the receipt now through this relay (ws://host:port/ws, wss://...)
  --timeout <seconds>  how long to wait for the relay (default ${DEFAULT_TIMEOUT_MS / 1000})
  -h, --help           show this help

Environment:
  ${RELAY_ENV}           the relay, when none is given
  ${PASSPHRASE_ENV}      the passphrase, when the profile has one`;

/** The `accept` command. */
export const acceptCommand: Command = {
  name: "accept",
  summary: "accept a first-contact request as a contact",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(this, args, {
      relay: { type: "string" },
      timeout: { type: "string" },
    }, ["fingerprint", "name"]);
    const [which, name] = positionals;
    const badName = explainContactName(name);
    if (badName) {
      throw new UsageError(`invalid contact name ${JSON.stringify(name)}: ${badName}`, USAGE);
    }
    const given = typeof values.relay === "string" ? relayUrlArg(values.relay, USAGE) : undefined;
    const timeoutMs = parseTimeout(this, values.timeout, DEFAULT_TIMEOUT_MS);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const me = await unlockIdentity(ctx, store);
    const relayUrl = knownRelay(ctx, store, given, USAGE);
    const request = new RequestStore(store).find(which);
    if (!request) {
      throw new CliError(`no request from ${which}; see \`chat-p2p requests\``);
    }
    const client = new ChatClient(
      store,
      me,
      clientOptions(ctx, timeoutMs, { receive: false, giveUpAfterMs: 0 }),
    );
    try {
      const moved = await client.acceptRequest(request.key, name);
      const n = moved.length;
      err(
        ctx,
        `accepted ${name} (fingerprint ${keyFingerprint(request.key)}): ${n} message` +
          `${n === 1 ? "" : "s"} moved to your history (\`chat-p2p history ${name}\`)`,
      );
      if (relayUrl) await connectOrFail(client, relayUrl);
    } finally {
      await client.close();
    }
  },
};
