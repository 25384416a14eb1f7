/**
 * `chat-p2p remove-contact <name>` and `chat-p2p rename-contact <old> <new>`.
 *
 * @module
 */
import { type Command, type Context, err, parseCommandArgs, warn } from "../context.ts";
import { keyFingerprint, openStore, removeContact, renameContact } from "@chat-p2p/client";

const REMOVE_USAGE = `Usage: chat-p2p remove-contact <name>

Forgets a contact's name. The conversation stays in your history under their key:
\`chat-p2p history <fingerprint>\` shows it, and adding the key again brings the name back.

Options:
  -h, --help   show this help`;

const RENAME_USAGE = `Usage: chat-p2p rename-contact <old> <new>

Gives a contact another name; the key, the verification and the history stay. <new> follows the
rules of \`chat-p2p add-contact\`.

Options:
  -h, --help   show this help`;

/** The `remove-contact` command. */
export const removeContactCommand: Command = {
  name: "remove-contact",
  summary: "forget a contact (the history stays)",
  usage: REMOVE_USAGE,
  run(args: string[], ctx: Context): Promise<void> {
    const { positionals } = parseCommandArgs(this, args, {}, ["name"]);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const c = removeContact(store, positionals[0]);
    const fp = keyFingerprint(c.key);
    err(ctx, `removed ${c.name} (fingerprint ${fp}); the history stays: chat-p2p history "${fp}"`);
    return Promise.resolve();
  },
};

/** The `rename-contact` command. */
export const renameContactCommand: Command = {
  name: "rename-contact",
  summary: "give a contact another name",
  usage: RENAME_USAGE,
  run(args: string[], ctx: Context): Promise<void> {
    const { positionals } = parseCommandArgs(this, args, {}, ["old", "new"]);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const before = store.resolvePeer(positionals[0]).name;
    const c = renameContact(store, positionals[0], positionals[1]);
    err(ctx, `renamed ${before} to ${c.name}`);
    return Promise.resolve();
  },
};
