/**
 * The payload inside every box: what only the two people see. Versioned JSON with a `kind`.
 *
 * @module
 */
import type { Parsed } from "./errors.ts";
import { fail, parsePayloadObject, str } from "./_parse.ts";
import { isValidId, MAX_ACK_IDS, PROTOCOL_VERSION } from "./frames.ts";

/** A chat message, inside the box. */
export interface MessagePayload {
  v: 1;
  kind: "message";
  /** The text, at most {@linkcode MAX_TEXT_CHARS} characters. */
  text: string;
  /** ISO 8601 time the sender composed it (sender's clock). */
  sent_at: string;
}

/** A delivery receipt, inside the box: the recipient stored these message ids in its history. */
export interface ReceiptPayload {
  v: 1;
  kind: "receipt";
  status: "delivered";
  ids: string[];
  sent_at: string;
}

/** Anything that travels inside a box. Unknown kinds are reported, not fatal. */
export type Payload = MessagePayload | ReceiptPayload;

/** Most characters of text in one message. */
export const MAX_TEXT_CHARS = 16 * 1024;

/** Parses a decrypted payload. */
export function parsePayload(bytes: Uint8Array): Parsed<Payload> {
  const p = parsePayloadObject(bytes, PROTOCOL_VERSION);
  if (!p.ok) return p;
  const o = p.value;
  if (o.kind !== "message" && o.kind !== "receipt") {
    return fail("unknown_type", `Cannot parse payload: unknown kind ${JSON.stringify(o.kind)}`);
  }
  const sentAt = str(o, "sent_at", "payload");
  if (typeof sentAt !== "string") return sentAt;
  if (o.kind === "message") {
    const t = str(o, "text", "message payload");
    if (typeof t !== "string") return t;
    if (t.length > MAX_TEXT_CHARS) return fail("bad_frame", "Cannot parse payload: text too long");
    return { ok: true, value: { v: 1, kind: "message", text: t, sent_at: sentAt } };
  }
  if (o.kind === "receipt") {
    if (o.status !== "delivered") {
      return fail("bad_frame", "Cannot parse receipt payload: field 'status' must be 'delivered'");
    }
    if (!Array.isArray(o.ids) || o.ids.length > MAX_ACK_IDS || !o.ids.every(isValidId)) {
      return fail("bad_frame", "Cannot parse receipt payload: field 'ids' must be a list of ids");
    }
    return {
      ok: true,
      value: {
        v: 1,
        kind: "receipt",
        status: "delivered",
        ids: o.ids as string[],
        sent_at: sentAt,
      },
    };
  }
  return fail("unknown_type", `Cannot parse payload: unknown kind ${JSON.stringify(o.kind)}`);
}

/** UTF-8 bytes of a payload's JSON, ready for `seal`. */
export function encodePayload(p: Payload): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(p));
}
