/**
 * `chat-p2p contacts [--json]`: lists saved contacts.
 *
 * @module
 */
import { type Command, type Context, err, out, paint, parseCommandArgs, warn } from "../context.ts";
import { keyFingerprint, openStore } from "@chat-p2p/client";
import { unlockFiles } from "../ui/passphrase.ts";

const USAGE = `Usage: chat-p2p contacts [--json]

Lists saved contacts: name, fingerprint and public key.

Options:
  --json       one JSON object per line: {"name", "public_key", "fingerprint"}
  -h, --help   show this help`;

/** The `contacts` command. */
export const contactsCommand: Command = {
  name: "contacts",
  summary: "list saved contacts",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values } = parseCommandArgs(this, args, { json: { type: "boolean" } }, []);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    await unlockFiles(ctx, store);
    const contacts = store.loadContacts();
    if (values.json === true) {
      for (const c of contacts) {
        out(
          ctx,
          JSON.stringify({ name: c.name, public_key: c.key, fingerprint: keyFingerprint(c.key) }),
        );
      }
      return;
    }
    if (contacts.length === 0) {
      err(ctx, "no contacts yet: add one with `chat-p2p add-contact <name> <public-key>`");
      return;
    }
    const width = Math.max(...contacts.map((c) => c.name.length));
    for (const c of contacts) {
      out(
        ctx,
        `${paint(ctx, "bold", c.name.padEnd(width))}  ${
          paint(ctx, "dim", keyFingerprint(c.key))
        }  ${c.key}`,
      );
    }
  },
};
