/**
 * The chat-p2p wire protocol, version 2: envelopes (mailbox id + opaque body), frame types,
 * limits, and the strict parsers both sides use for every frame they receive. No crypto library
 * is loaded here. docs/PROTOCOL.md is the prose form; keep them in step.
 *
 * @module
 */
import {
  ackIds,
  errorFrameExtras,
  fail,
  isEnvelopeId,
  isObj,
  type Obj,
  parseJsonObject,
  parsePingFrame,
  str,
} from "./_parse.ts";
import { base64ByteLength, decodePublicKey } from "./encoding.ts";
import type { ErrorCode, Parsed } from "./errors.ts";
import { MAX_ACK_IDS } from "./frames.ts";
import type { MailboxKind } from "./kdf.ts";
import { PADDED_SIZES } from "./padding.ts";

/** The protocol version of this module's frames, envelopes and payloads. */
export const PROTOCOL_VERSION_V2 = 2;
/** Default largest frame (UTF-8 bytes of the JSON text): fits the largest padded body. */
export const MAX_FRAME_BYTES_V2 = 131072;
/** Length of a mailbox id (SHA-256). */
export const MAILBOX_ID_BYTES = 32;
/** Bytes a pair body adds to a padded payload: nonce 24, header 41, two tags of 16. */
export const PAIR_BODY_OVERHEAD = 97;
/**
 * Bytes a request body adds to a padded payload: sealed box 48 (ephemeral key, tag), format
 * byte 1, sender key 32, header 41, ratchet tag 16.
 */
export const REQUEST_BODY_OVERHEAD = 138;
/** Every body size a valid envelope can have, smallest first. */
export const BODY_SIZES: readonly number[] = Object.freeze(
  [PAIR_BODY_OVERHEAD, REQUEST_BODY_OVERHEAD]
    .flatMap((o) => PADDED_SIZES.map((s) => s + o))
    .sort((a, b) => a - b),
);

/** What the relay stores and forwards: a random id, the mailbox id, and the opaque body. */
export interface EnvelopeV2 {
  v: 2;
  /** Random per envelope (not the message id), 8-64 of `A-Z a-z 0-9 _ -`; same for retries. */
  id: string;
  /** Base64 mailbox id (32 bytes). */
  to: string;
  /** Base64 body: a pair body or a request body, of one of {@linkcode BODY_SIZES}. */
  body: string;
}

/** Client to relay: store an envelope (no authentication needed). */
export interface SendFrameV2 {
  v: 2;
  type: "send";
  envelope: EnvelopeV2;
  /** Only for request-inbox sends: the recipient's identity key; `to` must be its inbox id. */
  key?: string;
}

/** Client to relay: open (register on first use, then read) a mailbox. */
export interface OpenFrame {
  v: 2;
  type: "open";
  kind: MailboxKind;
  /** Base64 auth public key: the identity key for `inbox`, the mailbox auth key for `pair`. */
  key: string;
  /** Base64 Ed25519 signature of `openMessage` by `key`. */
  signature: string;
}

/** Client to relay: these envelopes of an opened mailbox are stored; forget them. */
export interface AckFrameV2 {
  v: 2;
  type: "ack";
  mailbox: string;
  ids: string[];
}

/** Either side: liveness probe, answered with `pong` carrying the same `nonce`. */
export interface PingFrameV2 {
  v: 2;
  type: "ping";
  nonce?: string;
}

/** Either side: answer to `ping`. */
export interface PongFrameV2 {
  v: 2;
  type: "pong";
  nonce?: string;
}

/** Relay to client, first frame on every socket. */
export interface HelloFrame {
  v: 2;
  type: "hello";
  /** Base64 of 32 random bytes, signed in every `open` on this socket. */
  challenge: string;
  /**
   * The largest frame (UTF-8 bytes) this relay accepts; absent from relays that do not say. A
   * client checks a send against it before writing, so a message too large for this relay fails
   * at once instead of closing the socket (1009) on every retry.
   */
  max_frame_bytes?: number;
}

/** Relay to client: the mailbox is open on this socket; its pending envelopes follow. */
export interface OpenedFrame {
  v: 2;
  type: "opened";
  mailbox: string;
}

/** Relay to client: an envelope of a mailbox this socket opened. */
export interface DeliverFrameV2 {
  v: 2;
  type: "deliver";
  envelope: EnvelopeV2;
}

/** Relay to client: every envelope pending in `mailbox` when it was opened has been sent. */
export interface SyncedFrameV2 {
  v: 2;
  type: "synced";
  mailbox: string;
  count: number;
}

/** Relay to client: the envelope with this id is durably stored. */
export interface AcceptedFrameV2 {
  v: 2;
  type: "accepted";
  id: string;
}

/** Relay to client: something went wrong; `id` / `mailbox` say what it was about. */
export interface ErrorFrameV2 {
  v: 2;
  type: "error";
  code: ErrorCode;
  message: string;
  id?: string;
  mailbox?: string;
  retry_after_ms?: number;
}

/** Frames a client sends. */
export type ClientFrameV2 = SendFrameV2 | OpenFrame | AckFrameV2 | PingFrameV2 | PongFrameV2;
/** Frames a relay sends. */
export type ServerFrameV2 =
  | HelloFrame
  | OpenedFrame
  | DeliverFrameV2
  | SyncedFrameV2
  | AcceptedFrameV2
  | ErrorFrameV2
  | PingFrameV2
  | PongFrameV2;

/** True for base64 text of a 32-byte mailbox id. */
export function isMailboxId(x: unknown): x is string {
  return typeof x === "string" && base64ByteLength(x) === MAILBOX_ID_BYTES;
}

function withId<T>(p: Parsed<T>, id: string | undefined): Parsed<T> {
  return !p.ok && id !== undefined ? { ...p, id } : p;
}

function checkV2(o: Obj, where: string, upgrade: string): Parsed<never> | undefined {
  if (o.v === undefined) return fail("bad_frame", `Cannot parse ${where}: missing field 'v'`);
  if (o.v === PROTOCOL_VERSION_V2) return undefined;
  return fail(
    "unsupported_version",
    `Cannot parse ${where}: version ${JSON.stringify(o.v)} is not supported ` +
      `(this side speaks 2)${o.v === 1 ? `; ${upgrade}` : ""}`,
  );
}

/** Validates an envelope object (already JSON-parsed). */
export function parseEnvelopeV2(x: unknown): Parsed<EnvelopeV2> {
  if (!isObj(x)) return fail("bad_frame", "Cannot parse envelope: not a JSON object");
  const id = isEnvelopeId(x.id) ? x.id : undefined;
  const bad = checkV2(x, "envelope", "v1 envelopes cannot be delivered to v2 clients");
  if (bad) return withId(bad, id);
  for (const f of ["id", "to", "body"]) {
    const v = str(x, f, "envelope");
    if (typeof v !== "string") return withId(v, id);
  }
  if (id === undefined) {
    return fail("bad_frame", "Cannot parse envelope: field 'id' must be 8-64 of A-Z a-z 0-9 _ -");
  }
  if (!isMailboxId(x.to)) {
    return fail("bad_frame", "Cannot parse envelope: field 'to' is not base64 of 32 bytes", id);
  }
  const n = base64ByteLength(x.body as string);
  if (n === undefined || !BODY_SIZES.includes(n)) {
    return fail(
      "bad_frame",
      "Cannot parse envelope: field 'body' is not base64 of a padded body " +
        `(${BODY_SIZES.join(", ")} bytes)`,
      id,
    );
  }
  return { ok: true, value: { v: 2, id, to: x.to as string, body: x.body as string } };
}

/**
 * Canonical JSON text of an envelope: `{"v":2,"id":…,"to":…,"body":…}`, exactly these fields in
 * this order. Relays store and forward this text.
 */
export function serializeEnvelopeV2(e: EnvelopeV2): string {
  return JSON.stringify({ v: 2, id: e.id, to: e.to, body: e.body });
}

/** The text of a `deliver` frame around a canonical envelope, as a relay writes it. */
export function deliverFrameText(canonicalEnvelope: string): string {
  return `{"v":2,"type":"deliver","envelope":${canonicalEnvelope}}`;
}

function parseHead(text: string, upgrade: string): Parsed<{ o: Obj; type: string }> {
  const p = parseJsonObject(text, "frame");
  if (!p.ok) return p;
  const o = p.value;
  const bad = checkV2(o, "frame", upgrade);
  if (bad) return bad;
  const type = str(o, "type", "frame");
  if (typeof type !== "string") return type;
  return { ok: true, value: { o, type } };
}

function mailboxField(o: Obj, where: string): string | Parsed<never> {
  const m = str(o, "mailbox", where);
  if (typeof m !== "string") return m;
  if (!isMailboxId(m)) {
    return fail("bad_frame", `Cannot parse ${where}: field 'mailbox' is not base64 of 32 bytes`);
  }
  return m;
}

/**
 * Whether `text` is a usable public key, checked every time: not the remembering
 * `isPublicKeyText` (v1's, for the two keys of every envelope), since a v2 key comes once per open
 * or first contact, and a cache of them would hold every connected client's key.
 */
function isKeyText(text: string): boolean {
  return text.length === 44 && decodePublicKey(text) !== undefined;
}

function parseSend(o: Obj): Parsed<SendFrameV2> {
  if (o.envelope === undefined) {
    return fail("bad_frame", "Cannot parse send frame: missing field 'envelope'");
  }
  const e = parseEnvelopeV2(o.envelope);
  if (!e.ok) return e;
  if (o.key === undefined) return { ok: true, value: { v: 2, type: "send", envelope: e.value } };
  if (typeof o.key !== "string" || !isKeyText(o.key)) {
    return fail(
      "bad_frame",
      "Cannot parse send frame: field 'key' is not a base64 Ed25519 public key",
      e.value.id,
    );
  }
  return { ok: true, value: { v: 2, type: "send", envelope: e.value, key: o.key } };
}

function parseOpen(o: Obj): Parsed<OpenFrame> {
  const where = "open frame";
  const kind = str(o, "kind", where);
  if (typeof kind !== "string") return kind;
  if (kind !== "inbox" && kind !== "pair") {
    return fail("bad_frame", `Cannot parse ${where}: field 'kind' must be "inbox" or "pair"`);
  }
  const key = str(o, "key", where);
  if (typeof key !== "string") return key;
  const signature = str(o, "signature", where);
  if (typeof signature !== "string") return signature;
  if (!isKeyText(key)) {
    return fail("bad_frame", `Cannot parse ${where}: field 'key' is not a base64 Ed25519 key`);
  }
  if (base64ByteLength(signature) !== 64) {
    return fail("bad_frame", `Cannot parse ${where}: field 'signature' is not base64 of 64 bytes`);
  }
  return { ok: true, value: { v: 2, type: "open", kind, key, signature } };
}

function parseAck(o: Obj): Parsed<AckFrameV2> {
  const mailbox = mailboxField(o, "ack frame");
  if (typeof mailbox !== "string") return mailbox;
  const ids = ackIds(o, MAX_ACK_IDS);
  if (!Array.isArray(ids)) return ids;
  return { ok: true, value: { v: 2, type: "ack", mailbox, ids } };
}

/**
 * Parses and validates a frame a client sent (used by the relay). A v1 frame gets
 * `unsupported_version` with a message telling the user to upgrade chat-p2p.
 *
 * @example
 * ```ts
 * import { parseClientFrameV2 } from "@chat-p2p/protocol";
 *
 * const p = parseClientFrameV2('{"v":1,"type":"ping"}');
 * if (!p.ok) console.log(p.code); // "unsupported_version"
 * ```
 */
export function parseClientFrameV2(text: string): Parsed<ClientFrameV2> {
  const head = parseHead(
    text,
    "this relay speaks protocol 2: upgrade chat-p2p to use it",
  );
  if (!head.ok) return head;
  const { o, type } = head.value;
  switch (type) {
    case "send":
      return parseSend(o);
    case "open":
      return parseOpen(o);
    case "ack":
      return parseAck(o);
    case "ping":
    case "pong":
      return parsePingFrame(o, type, 2);
    default:
      return fail("unknown_type", `Cannot parse frame: unknown type ${JSON.stringify(type)}`);
  }
}

function parseError(o: Obj): Parsed<ErrorFrameV2> {
  const code = str(o, "code", "error frame");
  if (typeof code !== "string") return code;
  const message = str(o, "message", "error frame");
  if (typeof message !== "string") return message;
  // Unknown codes pass through (a newer relay may add some); clients treat them as failures.
  const f: ErrorFrameV2 = { v: 2, type: "error", code: code as ErrorCode, message };
  if (o.mailbox !== undefined) {
    if (!isMailboxId(o.mailbox)) {
      return fail(
        "bad_frame",
        "Cannot parse error frame: field 'mailbox' is not base64 of 32 bytes",
      );
    }
    f.mailbox = o.mailbox;
  }
  const bad = errorFrameExtras(o, f);
  if (bad) return bad;
  return { ok: true, value: f };
}

/** Parses and validates a frame a relay sent (used by the client). */
export function parseServerFrameV2(text: string): Parsed<ServerFrameV2> {
  const head = parseHead(
    text,
    "this relay speaks protocol 1: use a relay that speaks 2, or upgrade this one",
  );
  if (!head.ok) return head;
  const { o, type } = head.value;
  switch (type) {
    case "hello": {
      const challenge = str(o, "challenge", "hello frame");
      if (typeof challenge !== "string") return challenge;
      if (base64ByteLength(challenge) !== 32) {
        return fail("bad_frame", "Cannot parse hello frame: 'challenge' is not base64 of 32 bytes");
      }
      const max = o.max_frame_bytes;
      if (max === undefined) return { ok: true, value: { v: 2, type, challenge } };
      if (typeof max !== "number" || !Number.isSafeInteger(max) || max < 1) {
        return fail(
          "bad_frame",
          "Cannot parse hello frame: field 'max_frame_bytes' must be a whole number >= 1",
        );
      }
      return { ok: true, value: { v: 2, type, challenge, max_frame_bytes: max } };
    }
    case "opened": {
      const mailbox = mailboxField(o, "opened frame");
      if (typeof mailbox !== "string") return mailbox;
      return { ok: true, value: { v: 2, type, mailbox } };
    }
    case "deliver": {
      if (o.envelope === undefined) {
        return fail("bad_frame", "Cannot parse deliver frame: missing field 'envelope'");
      }
      const e = parseEnvelopeV2(o.envelope);
      if (!e.ok) return e;
      return { ok: true, value: { v: 2, type, envelope: e.value } };
    }
    case "synced": {
      const mailbox = mailboxField(o, "synced frame");
      if (typeof mailbox !== "string") return mailbox;
      if (typeof o.count !== "number" || !Number.isSafeInteger(o.count) || o.count < 0) {
        return fail(
          "bad_frame",
          "Cannot parse synced frame: field 'count' must be a whole number >= 0",
        );
      }
      return { ok: true, value: { v: 2, type, mailbox, count: o.count } };
    }
    case "accepted": {
      const id = str(o, "id", "accepted frame");
      if (typeof id !== "string") return id;
      if (!isEnvelopeId(id)) {
        return fail("bad_frame", "Cannot parse accepted frame: field 'id' is not a valid id");
      }
      return { ok: true, value: { v: 2, type, id } };
    }
    case "error":
      return parseError(o);
    case "ping":
    case "pong":
      return parsePingFrame(o, type, 2);
    default:
      return fail("unknown_type", `Cannot parse frame: unknown type ${JSON.stringify(type)}`);
  }
}

/** Builds a v2 error frame. */
export function errorFrameV2(
  code: ErrorCode,
  message: string,
  extra: { id?: string; mailbox?: string; retry_after_ms?: number } = {},
): ErrorFrameV2 {
  return { v: 2, type: "error", code, message, ...extra };
}
