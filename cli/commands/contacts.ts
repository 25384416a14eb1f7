/**
 * `chat-p2p contacts [--json]`: lists saved contacts with their verification state.
 *
 * @module
 */
import { type Command, type Context, err, out, paint, parseCommandArgs, warn } from "../context.ts";
import { keyFingerprint, openStore, verificationState } from "@chat-p2p/client";
import { formatDateTime } from "../ui/format.ts";
import { textWidth } from "../ui/text_width.ts";

const USAGE = `Usage: chat-p2p contacts [--json]

Lists saved contacts: name, fingerprint, whether you verified their key (\`chat-p2p verify\`),
and the public key. A contact whose key changed since you verified it is marked, with a warning.

Options:
  --json       one JSON object per line: {"name","public_key","fingerprint","verified",
               "verified_at","key_changed"}
  -h, --help   show this help`;

const STATE_TEXT = { verified: "✓ verified", unverified: "unverified", changed: "⚠ key changed" };

/** The `contacts` command. */
export const contactsCommand: Command = {
  name: "contacts",
  summary: "list saved contacts",
  usage: USAGE,
  run(args: string[], ctx: Context): Promise<void> {
    const { values } = parseCommandArgs(this, args, { json: { type: "boolean" } }, []);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const contacts = store.loadContacts();
    for (const c of contacts) {
      if (verificationState(c) !== "changed") continue;
      warn(
        ctx,
        `${c.name}'s key changed since you verified it (${formatDateTime(c.verified!.at)}); ` +
          `compare safety numbers again: chat-p2p verify ${JSON.stringify(c.name)}`,
      );
    }
    if (values.json === true) {
      for (const c of contacts) {
        const state = verificationState(c);
        out(
          ctx,
          JSON.stringify({
            name: c.name,
            public_key: c.key,
            fingerprint: keyFingerprint(c.key),
            verified: state === "verified",
            verified_at: state === "verified" ? c.verified!.at : null,
            key_changed: state === "changed",
          }),
        );
      }
      return Promise.resolve();
    }
    if (contacts.length === 0) {
      err(ctx, "no contacts yet: add one with `chat-p2p add-contact <name> <public-key>`");
      return Promise.resolve();
    }
    const width = Math.max(...contacts.map((c) => textWidth(c.name)));
    const styles = { verified: "green", unverified: "dim", changed: "red" } as const;
    for (const c of contacts) {
      const state = verificationState(c);
      const name = c.name + " ".repeat(width - textWidth(c.name));
      out(
        ctx,
        `${paint(ctx, "bold", name)}  ${paint(ctx, "dim", keyFingerprint(c.key))}  ${
          paint(ctx, styles[state], STATE_TEXT[state].padEnd(13))
        }  ${c.key}`,
      );
    }
    return Promise.resolve();
  },
};
