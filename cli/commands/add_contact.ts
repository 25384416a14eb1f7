/**
 * `chat-p2p add-contact <name> <public-key>`: saves a contact.
 *
 * @module
 */
import { explainPublicKey, toBase64 } from "@chat-p2p/protocol";
import { type Command, type Context, err, parseCommandArgs, warn } from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import { explainContactName, keyFingerprint, openStore } from "@chat-p2p/client";
import { unlockFiles } from "../ui/passphrase.ts";

const USAGE = `Usage: chat-p2p add-contact <name> <public-key>

Saves a contact. <name> is 1-32 letters, digits, '_', '-' or '.', starting with a letter or
digit. <public-key> is the base64 key your contact's \`chat-p2p id\` prints; compare the
fingerprint shown here with theirs.

Options:
  -h, --help   show this help`;

/** The `add-contact` command. */
export const addContactCommand: Command = {
  name: "add-contact",
  summary: "save a contact's public key under a name",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { positionals } = parseCommandArgs(this, args, {}, ["name", "public-key"]);
    const name = positionals[0];
    const key = positionals[1].trim();
    const badName = explainContactName(name);
    if (badName) {
      throw new UsageError(`invalid contact name ${JSON.stringify(name)}: ${badName}`, USAGE);
    }
    const badKey = explainPublicKey(key);
    if (badKey) throw new UsageError(`invalid public key for ${name}: ${badKey}`, USAGE);

    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const me = toBase64(store.loadPublicKey());
    await unlockFiles(ctx, store);
    if (key === me) {
      throw new CliError(
        "that is your own public key (see `chat-p2p id`); add your contact's key instead",
      );
    }
    const contacts = store.loadContacts();
    const sameName = contacts.find((c) => c.name === name);
    if (sameName) {
      throw new CliError(
        sameName.key === key
          ? `${name} is already saved with this key`
          : `a contact named ${name} already exists with another key (${sameName.key}); ` +
            "choose another name",
      );
    }
    const sameKey = contacts.find((c) => c.key === key);
    if (sameKey) throw new CliError(`this key is already saved as ${sameKey.name}`);
    store.saveContacts([...contacts, { name, key }]);
    err(ctx, `added ${name} (fingerprint ${keyFingerprint(key)})`);
  },
};
