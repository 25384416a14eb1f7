/**
 * `chat-p2p requests [--json]`: lists first-contact requests, the messages of keys that are not
 * contacts, kept apart until they are accepted (`accept`) or blocked (`block`).
 *
 * @module
 */
import { keyFingerprint, openStore, RequestStore } from "@chat-p2p/client";
import { type Command, type Context, err, out, paint, parseCommandArgs, warn } from "../context.ts";
import { formatDateTime, sanitizeForTerminal } from "../ui/format.ts";
import { PASSPHRASE_ENV, unlockFiles } from "../ui/passphrase.ts";

const USAGE = `Usage: chat-p2p requests [--json]

Lists first-contact requests: messages from keys that are not your contacts. \`sync\` and
\`chat\` fetch them but never show them as messages; they wait here until you accept the
sender (\`chat-p2p accept <fingerprint> <name>\`: saved as a contact, the messages move to your
history) or block it (\`chat-p2p block <fingerprint>\`: deleted, and later ones dropped).

Compare the fingerprint with the one the sender gives you out of band before accepting.

Options:
  --json       one JSON object per request:
               {"public_key","fingerprint","messages":[{"id","text","sent_at","at"}]}
  -h, --help   show this help

Environment:
  ${PASSPHRASE_ENV}      the passphrase, when the profile has one (its files are encrypted)`;

/** The `requests` command. */
export const requestsCommand: Command = {
  name: "requests",
  summary: "list first-contact requests from keys that are not contacts",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values } = parseCommandArgs(this, args, { json: { type: "boolean" } }, []);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    await unlockFiles(ctx, store);
    const requests = new RequestStore(store).list();
    for (const r of requests) {
      const fingerprint = keyFingerprint(r.key);
      if (values.json === true) {
        const messages = r.messages.map(({ id, text, sent_at, at }) => ({ id, text, sent_at, at }));
        out(ctx, JSON.stringify({ public_key: r.key, fingerprint, messages }));
        continue;
      }
      const n = r.messages.length;
      out(
        ctx,
        `${paint(ctx, "yellow", fingerprint)}  ${r.key}  (${n} message${n === 1 ? "" : "s"})`,
      );
      for (const m of r.messages) {
        out(
          ctx,
          `  ${paint(ctx, "dim", `[${formatDateTime(m.sent_at)}]`)} ${sanitizeForTerminal(m.text)}`,
        );
      }
    }
    if (requests.length === 0 && values.json !== true) err(ctx, "no requests");
    else if (values.json !== true) {
      err(
        ctx,
        "accept with `chat-p2p accept <fingerprint> <name>`, or `chat-p2p block <fingerprint>`",
      );
    }
  },
};
