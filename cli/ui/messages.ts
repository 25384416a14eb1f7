/**
 * How messages and their states look on the terminal, shared by `send`, `sync`, `chat`,
 * `resend` and `history` (command files never import each other).
 *
 * @module
 */
import { MAX_TEXT_CHARS } from "@chat-p2p/protocol";
import type { FoldedState, HistoryEntry, IncomingMessage, Peer } from "@chat-p2p/client";
import { type Context, paint, type Style } from "../context.ts";
import { UsageError } from "../errors.ts";
import { formatShortTime, peerLabel, preview, sanitizeForTerminal } from "./format.ts";

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

/** Validates message text, throwing a usage error when empty or too long. */
export function checkText(text: string, usage: string): string {
  if (text.trim() === "") throw new UsageError("the message text is empty", usage);
  if (text.length > MAX_TEXT_CHARS) {
    throw new UsageError(
      `the message is ${text.length} characters long; at most ${MAX_TEXT_CHARS} are allowed`,
      usage,
    );
  }
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

/** A conversation line in chat form ("[time] you: text  ✓"), for my messages and the peer's. */
export function chatLine(
  ctx: Context,
  e: Pick<HistoryEntry, "dir" | "text" | "sent_at"> & { state?: FoldedState },
  peer: Peer,
): string {
  const time = paint(ctx, "dim", `[${formatShortTime(e.sent_at, ctx.io.now())}]`);
  const who = e.dir === "out"
    ? paint(ctx, "cyan", "you")
    : paint(ctx, "magenta", peerLabel(peer.name, peer.fingerprint));
  const mark = e.state ? STATE_MARKS[e.state] : "";
  return `${time} ${who}: ${sanitizeForTerminal(e.text)}${
    mark ? `  ${paint(ctx, "dim", mark)}` : ""
  }`;
}

/**
 * The warning for an envelope that did not open (`fingerprint`: the contact whose mailbox it came
 * through; none for a request that names no one it can be shown as).
 */
export function rejectedLine(r: { id: string; fingerprint?: string; reason: string }): string {
  const from = r.fingerprint === undefined ? "" : ` claiming to be from ${r.fingerprint}`;
  return `rejected message ${r.id}${from}: ${r.reason}`;
}

/** The notice for a first-contact message from a key that is not a contact. */
export function requestLine(r: { fingerprint: string; message: { text: string } }): string {
  return `request from ${r.fingerprint}: ${shortText(r.message.text)} ` +
    `(see \`chat-p2p requests\`; accept or block it)`;
}

/** A short one-line form of a message's text for status lines. */
export function shortText(text: string): string {
  return sanitizeForTerminal(preview(text));
}
