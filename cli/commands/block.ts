/**
 * `chat-p2p block <fingerprint>`: blocks the sender of a first-contact request.
 *
 * @module
 */
import { ChatClient, keyFingerprint, openStore, RequestStore } from "@chat-p2p/client";
import { decodePublicKey } from "@chat-p2p/protocol";
import { type Command, type Context, err, parseCommandArgs, warn } from "../context.ts";
import { CliError } from "../errors.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";

const USAGE = `Usage: chat-p2p block <fingerprint>

Blocks the key with <fingerprint> (see \`chat-p2p requests\`), or the base64 key itself: its
request is deleted now, and its first-contact messages are dropped when they arrive from now on,
unread. Contacts cannot be blocked this way.

Options:
  -h, --help   show this help

Environment:
  ${PASSPHRASE_ENV}      the passphrase, when the profile has one`;

/** The `block` command. */
export const blockCommand: Command = {
  name: "block",
  summary: "block the sender of a first-contact request",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { positionals } = parseCommandArgs(this, args, {}, ["fingerprint"]);
    const [which] = positionals;
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const me = await unlockIdentity(ctx, store);
    const key = new RequestStore(store).find(which)?.key ??
      (decodePublicKey(which) ? which : undefined);
    if (!key) throw new CliError(`no request from ${which}; see \`chat-p2p requests\``);
    const client = new ChatClient(store, me, { receive: false });
    try {
      client.block(key);
    } finally {
      await client.close();
    }
    err(ctx, `blocked ${keyFingerprint(key)}: its request is deleted and later ones are dropped`);
  },
};
