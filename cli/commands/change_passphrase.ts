/**
 * `chat-p2p passphrase [--remove]`: sets, changes or removes the passphrase that protects the
 * identity's secret key. The key pair stays the same (contacts keep knowing you by it); only
 * identity.json is rewritten, atomically, so an interruption leaves the old file or the new one.
 *
 * @module
 */
import { type Command, type Context, err, parseCommandArgs, warn } from "../context.ts";
import { CliError } from "../errors.ts";
import { DEFAULT_SCRYPT, openStore } from "@chat-p2p/client";
import {
  askNewPassphrase,
  NEW_PASSPHRASE_ENV,
  PASSPHRASE_ENV,
  unlockIdentity,
} from "../ui/passphrase.ts";

const USAGE = `Usage: chat-p2p passphrase [--remove]

Sets or changes the passphrase that encrypts your secret key in identity.json, or removes it.
Your key pair, and so your address, stays the same. With a passphrase your history, contacts,
sessions and requests are encrypted on disk too (with a key derived from your identity, so
changing the passphrase rewrites nothing); setting or removing it rewrites those files, one at
a time, atomically.

Asks for the current passphrase (when there is one), then for the new one twice, not shown as
you type. Without a terminal, the current passphrase comes from ${PASSPHRASE_ENV} and the new
one from ${NEW_PASSPHRASE_ENV}.

Options:
  --remove    store the secret key unencrypted again (asks for the current passphrase)
  -h, --help  show this help

Environment:
  ${PASSPHRASE_ENV}      the current passphrase
  ${NEW_PASSPHRASE_ENV}  the new passphrase`;

/** The `passphrase` command. */
export const passphraseCommand: Command = {
  name: "passphrase",
  summary: "set, change or remove the passphrase of your secret key",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values } = parseCommandArgs(this, args, { remove: { type: "boolean" } }, []);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const wasProtected = store.isProtected(); // "no identity" comes from here
    if (values.remove === true && !wasProtected) {
      throw new CliError(
        `the identity of profile ${store.profile} has no passphrase; nothing was changed`,
      );
    }
    // The current passphrase first, and the new one before anything is written: a wrong or
    // cancelled entry changes nothing.
    const kp = await unlockIdentity(ctx, store);
    if (values.remove === true) {
      store.saveIdentity(kp);
      err(
        ctx,
        `passphrase removed: the secret key of profile ${store.profile} is stored unencrypted ` +
          `in ${store.identityPath}, and so are its history, contacts and sessions`,
      );
      return;
    }
    const passphrase = await askNewPassphrase(ctx, store.profile, NEW_PASSPHRASE_ENV, "passphrase");
    store.saveIdentity(kp, { passphrase });
    err(
      ctx,
      `passphrase ${wasProtected ? "changed" : "set"} for profile ${store.profile}: secret key ` +
        `encrypted (scrypt N=2^${
          Math.log2(DEFAULT_SCRYPT.N)
        }, r=${DEFAULT_SCRYPT.r}, p=${DEFAULT_SCRYPT.p}; XSalsa20-Poly1305); history, contacts ` +
        "and sessions encrypted at rest (XChaCha20-Poly1305)",
    );
  },
};
