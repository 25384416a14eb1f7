/**
 * `chat-p2p init [--force]`: creates the profile's Ed25519 identity.
 *
 * @module
 */
import { generateKeyPair, toBase64 } from "../shared/crypto.ts";
import { type Command, type Context, err, out, parseCommandArgs, warn } from "./context.ts";
import { CliError } from "./errors.ts";
import { keyFingerprint, openStore } from "./profile_store.ts";

const USAGE = `Usage: chat-p2p init [--force]

Creates a new identity (an Ed25519 key pair) for the profile and prints its public key.
The public key is your address: give it to your contacts.

Options:
  --force      replace an existing identity (the old one is lost for good)
  -h, --help   show this help`;

/** The `init` command. */
export const initCommand: Command = {
  name: "init",
  summary: "create your identity (key pair) and print your public key",
  usage: USAGE,
  run(args: string[], ctx: Context): Promise<void> {
    const { values } = parseCommandArgs(this, args, { force: { type: "boolean" } }, []);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    if (store.hasIdentity() && values.force !== true) {
      let current = "";
      try {
        current = ` (public key ${toBase64(store.loadIdentity().publicKey)})`;
      } catch { /* unreadable: still refuse */ }
      throw new CliError(
        `profile ${store.profile} already has an identity${current}.\n` +
          "Replacing it loses it for good: your contacts know you by this key, and messages " +
          "sent to it could no longer be read.\n" +
          "If that is really what you want, run `chat-p2p init --force`.",
      );
    }
    const kp = generateKeyPair();
    store.saveIdentity(kp);
    const key = toBase64(kp.publicKey);
    out(ctx, key);
    err(
      ctx,
      `${values.force === true ? "replaced" : "created"} identity for profile ${store.profile} ` +
        `in ${store.dir}\nfingerprint: ${keyFingerprint(key)}`,
    );
    return Promise.resolve();
  },
};
