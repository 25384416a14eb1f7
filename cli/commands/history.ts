/**
 * `chat-p2p history <contact> [--json]`: prints a conversation in arrival order.
 *
 * @module
 */
import { toBase64 } from "@chat-p2p/protocol";
import { type Command, type Context, out, paint, parseCommandArgs, warn } from "../context.ts";
import { formatDateTime, peerLabel, sanitizeForTerminal } from "../ui/format.ts";
import { MARK_STYLE, STATE_MARKS } from "../ui/messages.ts";
import {
  chronological,
  type HistoryEntry,
  openStore,
  type Peer,
  ReadMarks,
} from "@chat-p2p/client";
import { unlockFiles } from "../ui/passphrase.ts";

const USAGE = `Usage: chat-p2p history <contact> [--json]

Prints the conversation with <contact> in arrival order, with time, direction and delivery state.
<contact> is a contact name, or the base64 key or fingerprint of someone not saved as a contact
(a contact you removed: history is kept under the key; first messages from strangers are
requests, see \`chat-p2p requests\`). Their messages count as read once printed (see \`chat-p2p chats\`).

States of messages you sent: sending (no answer from the relay), ✓ accepted (the relay stored
it), ✓✓ delivered (your contact's client stored it), failed.

Options:
  --json       one JSON object per line: {"id","dir","from","to","text","sent_at","at","state"}
  -h, --help   show this help`;

/** One line of human-readable history. */
export function formatHistoryLine(ctx: Context, e: HistoryEntry, peer: Peer): string {
  const time = paint(ctx, "dim", `[${formatDateTime(e.sent_at)}]`);
  const who = e.dir === "out"
    ? `${paint(ctx, "cyan", "you")} → ${peerLabel(peer.name, peer.fingerprint)}`
    : `${paint(ctx, "magenta", peerLabel(peer.name, peer.fingerprint))} → you`;
  const mark = STATE_MARKS[e.state];
  return `${time} ${who}: ${sanitizeForTerminal(e.text)}` +
    (mark ? `  ${paint(ctx, MARK_STYLE[e.state], mark)}` : "");
}

/** The JSON form of a history entry. */
export function historyJson(e: HistoryEntry, me: string, peer: Peer): Record<string, unknown> {
  return {
    id: e.id,
    dir: e.dir,
    from: e.dir === "out" ? me : peer.key,
    to: e.dir === "out" ? peer.key : me,
    contact: peer.name,
    text: e.text,
    sent_at: e.sent_at,
    at: e.at,
    state: e.state,
  };
}

/** The `history` command. */
export const historyCommand: Command = {
  name: "history",
  summary: "show the conversation with a contact (or a stranger's key)",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(this, args, { json: { type: "boolean" } }, [
      "contact",
    ]);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    await unlockFiles(ctx, store);
    const myKey = toBase64(store.loadPublicKey());
    const peer = store.resolvePeer(positionals[0], { allowUnknownKey: true });
    const entries = chronological(store.history(peer.key).entries());
    for (const e of entries) {
      out(
        ctx,
        values.json === true
          ? JSON.stringify(historyJson(e, myKey, peer))
          : formatHistoryLine(ctx, e, peer),
      );
    }
    if (entries.length === 0 && values.json !== true) {
      ctx.io.stderr.write(`no messages with ${peerLabel(peer.name, peer.fingerprint)} yet\n`);
    }
    const marks = new ReadMarks(store);
    marks.markRead(peer.key, undefined, ctx.io.now());
    marks.save();
  },
};
