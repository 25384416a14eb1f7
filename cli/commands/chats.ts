/**
 * `chat-p2p chats` (alias `inbox`): every conversation, contacts and strangers, with its unread
 * count and last message, the latest first.
 *
 * @module
 */
import { conversations, openStore, RequestStore } from "@chat-p2p/client";
import { type Command, type Context, err, out, paint, parseCommandArgs, warn } from "../context.ts";
import { formatShortTime, peerLabel, preview, sanitizeForTerminal } from "../ui/format.ts";
import { textWidth } from "../ui/text_width.ts";
import { unlockFiles } from "../ui/passphrase.ts";

const USAGE = `Usage: chat-p2p chats [--json]
       chat-p2p inbox [--json]

Lists your conversations, the one whose last message arrived last first: who (a contact's name, or the
fingerprint of a key that is not one any more), how many of their messages you have not
read, and the last message. A message counts as read once it was shown to you: by \`chat\`, by
\`history\`, or in the output of \`sync\` or \`listen\`. Open one with \`chat-p2p chat <name>\`
or, for a former contact, \`chat-p2p history <fingerprint>\`. First messages from keys that are
not contacts are not conversations yet: the number of those requests is said on stderr (see
\`chat-p2p requests\`).

Options:
  --json       one JSON object per line: {"peer","contact","fingerprint","unread","total",
               "last":{"id","dir","text","sent_at","state"}}
  -h, --help   show this help`;

/** The `chats` command. */
export const chatsCommand: Command = {
  name: "chats",
  aliases: ["inbox"],
  summary: "list conversations with unread counts and the last message",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values } = parseCommandArgs(this, args, { json: { type: "boolean" } }, []);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    await unlockFiles(ctx, store);
    store.loadPublicKey(); // "no identity" rather than an empty list
    const list = conversations(store);
    if (values.json === true) {
      for (const c of list) {
        const { id, dir, text, sent_at, state } = c.last;
        out(
          ctx,
          JSON.stringify({
            peer: c.peer,
            contact: c.contact,
            fingerprint: c.fingerprint,
            unread: c.unread,
            total: c.total,
            last: { id, dir, text, sent_at, state },
          }),
        );
      }
      return;
    }
    const waiting = new RequestStore(store).list().length;
    if (waiting > 0) {
      err(
        ctx,
        `${waiting} first-contact request${waiting === 1 ? "" : "s"} waiting: chat-p2p requests`,
      );
    }
    if (list.length === 0) {
      err(ctx, "no conversations yet");
      return;
    }
    const labels = list.map((c) => peerLabel(c.contact, c.fingerprint));
    const width = Math.max(...labels.map(textWidth));
    const now = ctx.io.now();
    list.forEach((c, i) => {
      const label = labels[i] + " ".repeat(width - textWidth(labels[i]));
      const unread = c.unread > 0
        ? paint(ctx, "bold", `${c.unread} unread`.padStart(10))
        : paint(ctx, "dim", "".padStart(10));
      const who = c.last.dir === "out" ? "you: " : "";
      out(
        ctx,
        `${paint(ctx, c.contact ? "magenta" : "yellow", label)}  ${unread}  ${
          paint(ctx, "dim", `[${formatShortTime(c.last.sent_at, now)}]`)
        } ${who}${sanitizeForTerminal(preview(c.last.text, 60))}`,
      );
    });
  },
};
