/**
 * `chat-p2p init [--force] [--passphrase]`: creates the profile's Ed25519 identity, optionally
 * with the secret key encrypted under a passphrase.
 *
 * @module
 */
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { type Command, type Context, err, out, parseCommandArgs, warn } from "../context.ts";
import { CliError } from "../errors.ts";
import { DEFAULT_SCRYPT, keyFingerprint, openStore } from "@chat-p2p/client";
import { askNewPassphrase, PASSPHRASE_ENV } from "../ui/passphrase.ts";

const USAGE = `Usage: chat-p2p init [--force] [--passphrase]

Creates a new identity (an Ed25519 key pair) for the profile and prints its public key.
The public key is your address: give it to your contacts.

Options:
  --force       replace an existing identity (the old one is lost for good)
  --passphrase  encrypt the secret key with a passphrase (asked twice, not shown as you type),
                and your history, contacts and sessions on disk with it. Every command but
                id then asks for it. Without one, those files are NOT encrypted at rest.
                Without a terminal, the passphrase is read from ${PASSPHRASE_ENV}.
  -h, --help    show this help

Environment:
  ${PASSPHRASE_ENV}  the passphrase, for scripts: used instead of asking whenever it is set`;

/** The `init` command. */
export const initCommand: Command = {
  name: "init",
  summary: "create your identity (key pair) and print your public key",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values } = parseCommandArgs(this, args, {
      force: { type: "boolean" },
      passphrase: { type: "boolean" },
    }, []);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    if (store.hasIdentity() && values.force !== true) {
      let current = "";
      try {
        current = ` (public key ${toBase64(store.loadPublicKey())})`;
      } catch { /* unreadable: still refuse */ }
      throw new CliError(
        `profile ${store.profile} already has an identity${current}.\n` +
          "Replacing it loses it for good: your contacts know you by this key, and messages " +
          "sent to it could no longer be read.\n" +
          "If that is really what you want, run `chat-p2p init --force`.",
      );
    }
    const protect = values.passphrase === true;
    // Asked before anything is generated or written: a cancelled prompt changes nothing.
    const passphrase = protect ? await askNewPassphrase(ctx, store.profile) : undefined;
    if (!protect && ctx.io.env(PASSPHRASE_ENV)) {
      warn(
        ctx,
        `${PASSPHRASE_ENV} is set but --passphrase was not given: the secret key is stored ` +
          "unencrypted",
      );
    }
    const kp = generateKeyPair();
    store.saveIdentity(kp, passphrase === undefined ? {} : { passphrase });
    const key = toBase64(kp.publicKey);
    out(ctx, key);
    const protection = passphrase === undefined
      ? ""
      : `\nsecret key encrypted with your passphrase (scrypt N=2^${
        Math.log2(DEFAULT_SCRYPT.N)
      }, r=${DEFAULT_SCRYPT.r}, p=${DEFAULT_SCRYPT.p}; XSalsa20-Poly1305); history, contacts ` +
        "and sessions will be encrypted at rest";
    err(
      ctx,
      `${values.force === true ? "replaced" : "created"} identity for profile ${store.profile} ` +
        `in ${store.dir}\nfingerprint: ${keyFingerprint(key)}${protection}`,
    );
  },
};
