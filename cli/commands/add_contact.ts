/**
 * `chat-p2p add-contact <name> <public-key> [--force]`: saves a contact, or with --force gives
 * an existing one a new key (loudly when the old key was verified).
 *
 * @module
 */
import { explainPublicKey, toBase64 } from "@chat-p2p/protocol";
import { type Command, type Context, err, parseCommandArgs, warn } from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import {
  addContact,
  ClientError,
  explainContactName,
  keyFingerprint,
  normalizeContactName,
  openStore,
  verificationState,
} from "@chat-p2p/client";

const USAGE = `Usage: chat-p2p add-contact <name> <public-key> [--force]

Saves a contact. <name> is what you call them, in any script (Zoë, 李雷, "Ana María"): 1-32
letters, digits, single spaces, '_', '-', '.' or ''', starting with a letter or digit. It is
only a label, never a file name. <public-key> is the base64 key your contact's \`chat-p2p id\`
prints; compare the fingerprint shown here with theirs, or better, the safety number
(\`chat-p2p verify <name>\`).

A name already saved with another key is refused. --force gives that contact the new key; when
the old key was verified, think twice: a new key means a new install, or someone between you.
The contact then shows as "key changed" until you verify the new key.

Options:
  --force      replace the key of the contact with this name
  -h, --help   show this help`;

/** The `add-contact` command. */
export const addContactCommand: Command = {
  name: "add-contact",
  summary: "save a contact's public key under a name",
  usage: USAGE,
  run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(this, args, { force: { type: "boolean" } }, [
      "name",
      "public-key",
    ]);
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
    if (key === me) {
      throw new CliError(
        "that is your own public key (see `chat-p2p id`); add your contact's key instead",
      );
    }
    let result;
    try {
      result = addContact(store, name, key, { force: values.force === true });
    } catch (e) {
      if (e instanceof ClientError && e.code === "key_changed") {
        throw new CliError(
          `${e.message}. Do not trust it until you have compared safety numbers with them ` +
            "(in person or on a call); --force saves it, unverified",
        );
      }
      const n = normalizeContactName(name);
      const sameName = store.loadContacts().some((c) => c.name === n && c.key !== key);
      if (e instanceof ClientError && e.code === "contact_exists" && sameName) {
        throw new CliError(`${e.message}; --force replaces it, or choose another name`);
      }
      throw e;
    }
    const { contact, replaced } = result;
    const fp = keyFingerprint(contact.key);
    if (!replaced) {
      err(ctx, `added ${contact.name} (fingerprint ${fp})`);
      return Promise.resolve();
    }
    if (verificationState(replaced) === "verified") {
      warn(
        ctx,
        `${contact.name}'s verified key (fingerprint ${
          keyFingerprint(replaced.key)
        }) is replaced ` +
          `by an unverified one (fingerprint ${fp}); compare safety numbers: chat-p2p verify ` +
          JSON.stringify(contact.name),
      );
    }
    err(ctx, `replaced the key of ${contact.name} (fingerprint ${fp})`);
    return Promise.resolve();
  },
};
