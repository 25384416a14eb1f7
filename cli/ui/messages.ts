/**
 * How messages and their states look on the terminal, shared by `send`, `sync`, `chat`,
 * `resend` and `history` (command files never import each other).
 *
 * @module
 */
import {
  checkMessage,
  type FoldedState,
  type HistoryEntry,
  type IncomingMessage,
  type Peer,
} from "@chat-p2p/client";
import { type Context, paint, type Style } from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import { formatShortTime, peerLabel, preview, sanitizeForTerminal } from "./format.ts";
import type { Span } from "./chat_screen.ts";

/** Marks shown after a message for each state. */
export const STATE_MARKS: Record<FoldedState, string> = {
  received: "",
  sending: "…",
  accepted: "✓",
  delivered: "✓✓",
  failed: "✗ failed",
};

/** Colour of each state's mark. */
export const MARK_STYLE: Record<FoldedState, Style> = {
  received: "dim",
  sending: "dim",
  accepted: "dim",
  delivered: "green",
  failed: "red",
};

/**
 * Checks a message with the client library's {@linkcode checkMessage}: an empty one is a usage
 * error, one over the limits a runtime error ("not sent: ..."); returns the text.
 */
export function checkText(text: string, usage: string): string {
  const refused = checkMessage(text);
  if (refused?.code === "empty") throw new UsageError("the message text is empty", usage);
  if (refused) throw new CliError(`not sent: ${refused.message}`);
  return text;
}

/** The JSON line printed for a received message. */
export function messageJson(m: IncomingMessage): Record<string, unknown> {
  return {
    id: m.id,
    from: m.from,
    contact: m.contact,
    fingerprint: m.fingerprint,
    text: m.text,
    sent_at: m.sent_at,
  };
}

/** The human line printed for a received message: "[time] name: text". */
export function messageLine(ctx: Context, m: IncomingMessage): string {
  const time = paint(ctx, "dim", `[${formatShortTime(m.sent_at, ctx.io.now())}]`);
  const who = paint(ctx, m.contact ? "magenta" : "yellow", peerLabel(m.contact, m.fingerprint));
  return `${time} ${who}: ${sanitizeForTerminal(m.text)}`;
}

/** A conversation line's pieces ("[time] you: text"), its text as is (the screen sanitizes). */
export function chatSpans(
  ctx: Context,
  e: Pick<HistoryEntry, "dir" | "text" | "sent_at">,
  peer: Peer,
): Span[] {
  return [
    { text: `[${formatShortTime(e.sent_at, ctx.io.now())}]`, style: "dim" },
    { text: " " },
    e.dir === "out"
      ? { text: "you", style: "cyan" }
      : { text: peerLabel(peer.name, peer.fingerprint), style: "magenta" },
    { text: `: ${e.text}` },
  ];
}

/** A conversation line in chat form ("[time] you: text  ✓"), for my messages and the peer's. */
export function chatLine(
  ctx: Context,
  e: Pick<HistoryEntry, "dir" | "text" | "sent_at"> & { state?: FoldedState },
  peer: Peer,
): string {
  const spans = chatSpans(ctx, { ...e, text: sanitizeForTerminal(e.text) }, peer);
  const mark = e.state ? STATE_MARKS[e.state] : "";
  return spans.map((s) => (s.style ? paint(ctx, s.style, s.text) : s.text)).join("") +
    (mark ? `  ${paint(ctx, "dim", mark)}` : "");
}

/** The warning for an envelope whose box did not open with the key it claims. */
export function rejectedLine(r: { id: string; fingerprint: string; reason: string }): string {
  return `rejected message ${r.id} claiming to be from ${r.fingerprint}: ${r.reason}`;
}

/** A short one-line form of a message's text for status lines. */
export function shortText(text: string): string {
  return sanitizeForTerminal(preview(text));
}
