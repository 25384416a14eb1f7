/**
 * The v2 payload: what only the two people see, inside the ratchet. UTF-8 JSON with `"v":2` and
 * a `kind`, padded ({@linkcode pad}) before it is encrypted. Parsing is strict and returns errors
 * as data; unknown fields are ignored, unknown kinds are `unknown_type` (reported to the user,
 * never fatal: the envelope is still acked).
 *
 * @module
 */
import type { Parsed } from "./errors.ts";
import { fail, type Obj, parsePayloadObject, str } from "./_parse.ts";
import { toHex } from "./encoding.ts";
import { pad, unpad } from "./padding.ts";

/** Most message ids in one receipt (or piggybacked on one message). */
export const MAX_RECEIPT_IDS = 1000;

/** A chat message. `id` is the history id (dedup, receipts), never the envelope id. */
export interface MessagePayloadV2 {
  v: 2;
  kind: "message";
  /** 32 lower-case hex digits, random. */
  id: string;
  text: string;
  /** ISO 8601 time the sender composed it (sender's clock). */
  sent_at: string;
  /** Receipts for messages from the recipient, piggybacked (1 to 1000 ids; absent when none). */
  receipts?: string[];
}

/** A delivery receipt: the sender of the receipt has stored these message ids. */
export interface ReceiptPayloadV2 {
  v: 2;
  kind: "receipt";
  /** 1 to 1000 message ids. */
  ids: string[];
}

/** The recipient of this direction now reads epoch `epoch`; the sender switches to it. */
export interface RotatePayloadV2 {
  v: 2;
  kind: "rotate";
  /** 0 to 2^32 - 1. */
  epoch: number;
}

/** Anything that travels inside the ratchet. */
export type PayloadV2 = MessagePayloadV2 | ReceiptPayloadV2 | RotatePayloadV2;

const MESSAGE_ID_RE = /^[0-9a-f]{32}$/;
const SENT_AT_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** True for a message id: 32 lower-case hex digits. */
export function isMessageId(id: unknown): id is string {
  return typeof id === "string" && MESSAGE_ID_RE.test(id);
}

/** A new random message id (16 random bytes as 32 lower-case hex digits). */
export function newMessageId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

function idList(o: Obj, field: string, where: string): string[] | Parsed<never> {
  const ids = o[field];
  if (
    !Array.isArray(ids) || ids.length === 0 || ids.length > MAX_RECEIPT_IDS ||
    !ids.every(isMessageId)
  ) {
    return fail(
      "bad_frame",
      `Cannot parse ${where}: field '${field}' must be a list of 1 to ${MAX_RECEIPT_IDS} ` +
        "message ids (32 lower-case hex digits)",
    );
  }
  return ids as string[];
}

/**
 * Parses a payload (the bytes {@linkcode unpad} returned).
 *
 * @example A message and a rejected one
 * ```ts
 * import { parsePayloadV2 } from "@chat-p2p/protocol";
 *
 * const enc = new TextEncoder();
 * const ok = parsePayloadV2(enc.encode(
 *   '{"v":2,"kind":"message","id":"00112233445566778899aabbccddeeff","text":"hi","sent_at":"2026-01-02T03:04:05.000Z"}',
 * ));
 * console.log(ok.ok); // true
 * const bad = parsePayloadV2(enc.encode('{"v":2,"kind":"receipt","ids":[]}'));
 * if (!bad.ok) console.log(bad.code, bad.message); // bad_frame Cannot parse receipt payload: ...
 * ```
 */
export function parsePayloadV2(bytes: Uint8Array): Parsed<PayloadV2> {
  const p = parsePayloadObject(bytes, 2);
  if (!p.ok) return p;
  const o = p.value;
  switch (o.kind) {
    case "message": {
      const where = "message payload";
      if (!isMessageId(o.id)) {
        return fail(
          "bad_frame",
          `Cannot parse ${where}: field 'id' must be 32 lower-case hex digits`,
        );
      }
      const text = str(o, "text", where);
      if (typeof text !== "string") return text;
      const sentAt = str(o, "sent_at", where);
      if (typeof sentAt !== "string") return sentAt;
      if (!SENT_AT_RE.test(sentAt)) {
        return fail("bad_frame", `Cannot parse ${where}: field 'sent_at' is not an ISO 8601 time`);
      }
      const value: MessagePayloadV2 = { v: 2, kind: "message", id: o.id, text, sent_at: sentAt };
      if (o.receipts !== undefined) {
        const receipts = idList(o, "receipts", where);
        if (!Array.isArray(receipts)) return receipts;
        value.receipts = receipts;
      }
      return { ok: true, value };
    }
    case "receipt": {
      const ids = idList(o, "ids", "receipt payload");
      if (!Array.isArray(ids)) return ids;
      return { ok: true, value: { v: 2, kind: "receipt", ids } };
    }
    case "rotate": {
      const e = o.epoch;
      if (typeof e !== "number" || !Number.isInteger(e) || e < 0 || e > 0xffffffff) {
        return fail(
          "bad_frame",
          "Cannot parse rotate payload: field 'epoch' must be a whole number 0 to 4294967295",
        );
      }
      return { ok: true, value: { v: 2, kind: "rotate", epoch: e } };
    }
    default:
      return fail("unknown_type", `Cannot parse payload: unknown kind ${JSON.stringify(o.kind)}`);
  }
}

/** UTF-8 of a payload's canonical JSON (fields in the documented order), ready for `pad`. */
export function encodePayloadV2(p: PayloadV2): Uint8Array {
  let canonical: PayloadV2;
  if (p.kind === "message") {
    canonical = { v: 2, kind: "message", id: p.id, text: p.text, sent_at: p.sent_at };
    if (p.receipts?.length) canonical.receipts = p.receipts;
  } else if (p.kind === "receipt") canonical = { v: 2, kind: "receipt", ids: p.ids };
  else canonical = { v: 2, kind: "rotate", epoch: p.epoch };
  return new TextEncoder().encode(JSON.stringify(canonical));
}

/** Encodes and pads a payload: the plaintext the ratchet encrypts. Throws when it does not fit. */
export function padPayloadV2(p: PayloadV2): Uint8Array {
  return pad(encodePayloadV2(p));
}

/** Unpads and parses the plaintext the ratchet returned; bad padding is `bad_frame`. */
export function unpadPayloadV2(padded: Uint8Array): Parsed<PayloadV2> {
  const u = unpad(padded);
  if (!u.ok) return fail("bad_frame", u.message);
  return parsePayloadV2(u.value);
}
