/**
 * The chat-p2p wire protocol, version 1: frame types, envelopes, limits, and the one strict
 * parser both sides use for every frame they receive.
 * docs/PROTOCOL.md is the prose form of this file; keep them in step.
 *
 * @module
 */
import {
  ackIds,
  checkVersion,
  errorFrameExtras,
  fail,
  isEnvelopeId,
  isObj,
  type Obj,
  parseJsonObject,
  parsePingFrame,
  str,
} from "./_parse.ts";
import {
  base64ByteLength,
  decodePublicKey,
  fromBase64,
  isPublicKeyText,
  NONCE_BYTES,
  SIGNATURE_BYTES,
  toHex,
} from "./encoding.ts";
import type { ErrorCode, Parsed } from "./errors.ts";

/** The protocol version this code speaks. Every frame and envelope carries it as `v`. */
export const PROTOCOL_VERSION = 1;
/** Protocol name, used in the authentication string. */
export const PROTOCOL_NAME = "chat-p2p";
/** Size in bytes of the random challenge the relay sends. */
export const CHALLENGE_BYTES = 32;
/** Default largest frame (UTF-8 bytes of the JSON text) a relay accepts. */
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;
/** Most ids one `ack` frame may carry. */
export const MAX_ACK_IDS = 1000;
/** Largest ciphertext, in bytes, an envelope may carry (the frame limit binds first by default). */
export const MAX_CIPHERTEXT_BYTES = 1024 * 1024;

/** A sealed message as the relay sees it: routing data plus opaque ciphertext. */
export interface Envelope {
  /** Protocol version of the envelope (1). */
  v: 1;
  /** Sender-chosen unique id, 8 to 64 characters of `A-Z a-z 0-9 _ -`. */
  id: string;
  /** Sender's base64 Ed25519 public key; must equal the key authenticated on the socket. */
  from: string;
  /** Recipient's base64 Ed25519 public key (in v1 also the recipient's mailbox id). */
  to: string;
  /** Base64 of the 24-byte `nacl.box` nonce. */
  nonce: string;
  /** Base64 of the `nacl.box` output (16-byte tag + encrypted payload). */
  ciphertext: string;
}

/** Client to relay: proof of the key, answering the challenge. */
export interface AuthFrame {
  v: 1;
  type: "auth";
  /** Base64 Ed25519 public key being claimed. */
  key: string;
  /** The relay URL the client connected to, exactly as signed (see {@linkcode authMessage}). */
  relay: string;
  /** Base64 Ed25519 signature of {@linkcode authMessage}. */
  signature: string;
}

/** Client to relay: store and deliver an envelope. */
export interface SendFrame {
  v: 1;
  type: "send";
  envelope: Envelope;
}

/** Client to relay: these delivered envelopes are safely stored; the relay may forget them. */
export interface AckFrame {
  v: 1;
  type: "ack";
  ids: string[];
}

/** Either side: liveness probe; answered with `pong` carrying the same `nonce`. */
export interface PingFrame {
  v: 1;
  type: "ping";
  nonce?: string;
}

/** Either side: answer to `ping`. */
export interface PongFrame {
  v: 1;
  type: "pong";
  nonce?: string;
}

/** Relay to client, first frame on every socket. */
export interface ChallengeFrame {
  v: 1;
  type: "challenge";
  /** Base64 of 32 random bytes. */
  challenge: string;
  /** Milliseconds the socket may stay unauthenticated. */
  expires_in_ms: number;
}

/** Relay to client: authentication succeeded. */
export interface ReadyFrame {
  v: 1;
  type: "ready";
  key: string;
}

/** Relay to client: an envelope for the authenticated key. */
export interface DeliverFrame {
  v: 1;
  type: "deliver";
  envelope: Envelope;
}

/** Relay to client: every envelope pending at authentication time has been sent. */
export interface SyncedFrame {
  v: 1;
  type: "synced";
  /** How many envelopes the initial drain sent. */
  count: number;
}

/** Relay to client: the envelope with this id is durably stored. */
export interface AcceptedFrame {
  v: 1;
  type: "accepted";
  id: string;
}

/** Relay to client: something was wrong; `id` names the envelope when it was about one. */
export interface ErrorFrame {
  v: 1;
  type: "error";
  code: ErrorCode;
  message: string;
  id?: string;
  retry_after_ms?: number;
}

/** Frames a client sends. */
export type ClientFrame = AuthFrame | SendFrame | AckFrame | PingFrame | PongFrame;
/** Frames a relay sends. */
export type ServerFrame =
  | ChallengeFrame
  | ReadyFrame
  | DeliverFrame
  | SyncedFrame
  | AcceptedFrame
  | ErrorFrame
  | PingFrame
  | PongFrame;

/** True when `id` is a well-formed envelope id. */
export function isValidId(id: unknown): id is string {
  return isEnvelopeId(id);
}

/** Validates an envelope object (already JSON-parsed). */
export function parseEnvelope(x: unknown): Parsed<Envelope> {
  if (!isObj(x)) return fail("bad_frame", "Cannot parse envelope: not a JSON object");
  const id = typeof x.id === "string" && isValidId(x.id) ? x.id : undefined;
  const bad = checkVersion(x, "envelope", PROTOCOL_VERSION);
  if (bad) return { ...bad, ...(id ? { id } : {}) } as Parsed<never>;
  const fields: Record<string, string> = {};
  for (const f of ["id", "from", "to", "nonce", "ciphertext"]) {
    const v = str(x, f, "envelope");
    if (typeof v !== "string") return { ...v, ...(id ? { id } : {}) } as Parsed<never>;
    fields[f] = v;
  }
  if (!isValidId(fields.id)) {
    return fail("bad_frame", "Cannot parse envelope: field 'id' must be 8-64 of A-Z a-z 0-9 _ -");
  }
  if (!isPublicKeyText(fields.from)) {
    return fail("bad_frame", "Cannot parse envelope: field 'from' is not a base64 32-byte key", id);
  }
  if (!isPublicKeyText(fields.to)) {
    return fail("bad_frame", "Cannot parse envelope: field 'to' is not a base64 32-byte key", id);
  }
  if (base64ByteLength(fields.nonce) !== NONCE_BYTES) {
    return fail("bad_frame", "Cannot parse envelope: field 'nonce' is not base64 of 24 bytes", id);
  }
  const ct = base64ByteLength(fields.ciphertext);
  if (ct === undefined || ct < 16 || ct > MAX_CIPHERTEXT_BYTES) {
    return fail(
      "bad_frame",
      "Cannot parse envelope: field 'ciphertext' is not base64 of 16 to 1048576 bytes",
      id,
    );
  }
  return {
    ok: true,
    value: {
      v: 1,
      id: fields.id,
      from: fields.from,
      to: fields.to,
      nonce: fields.nonce,
      ciphertext: fields.ciphertext,
    },
  };
}

/**
 * Canonical JSON text of an envelope (known fields only, fixed order). Relays store and forward
 * this text, so a deliver frame can be built without re-serialising.
 */
export function serializeEnvelope(e: Envelope): string {
  return JSON.stringify({
    v: 1,
    id: e.id,
    from: e.from,
    to: e.to,
    nonce: e.nonce,
    ciphertext: e.ciphertext,
  });
}

/**
 * The mailbox an envelope is stored in and routed by. In v1 it is the recipient's key; relay code
 * must route by this, never by reading `to` itself, so v2 can change it alone.
 */
export function mailboxIdOf(e: Envelope): string {
  return e.to;
}

function parseFrameHead(text: string): Parsed<{ o: Obj; type: string }> {
  const p = parseJsonObject(text, "frame");
  if (!p.ok) return p;
  const o = p.value;
  const bad = checkVersion(o, "frame", PROTOCOL_VERSION);
  if (bad) return bad;
  const type = str(o, "type", "frame");
  if (typeof type !== "string") return type;
  return { ok: true, value: { o, type } };
}

function parsePing(o: Obj, type: "ping" | "pong"): Parsed<PingFrame | PongFrame> {
  return parsePingFrame(o, type, 1);
}

/** Parses and validates a frame a client sent (used by the relay). */
export function parseClientFrame(text: string): Parsed<ClientFrame> {
  const head = parseFrameHead(text);
  if (!head.ok) return head;
  const { o, type } = head.value;
  switch (type) {
    case "auth": {
      const key = str(o, "key", "auth frame");
      if (typeof key !== "string") return key;
      const relay = str(o, "relay", "auth frame");
      if (typeof relay !== "string") return relay;
      const signature = str(o, "signature", "auth frame");
      if (typeof signature !== "string") return signature;
      if (!decodePublicKey(key)) {
        return fail(
          "bad_frame",
          "Cannot parse auth frame: field 'key' is not a base64 32-byte key",
        );
      }
      const sig = fromBase64(signature);
      if (!sig || sig.length !== SIGNATURE_BYTES) {
        return fail("bad_frame", "Cannot parse auth frame: field 'signature' is not 64 bytes");
      }
      if (relay.length > 2048) {
        return fail("bad_frame", "Cannot parse auth frame: 'relay' too long");
      }
      return { ok: true, value: { v: 1, type, key, relay, signature } };
    }
    case "send": {
      if (o.envelope === undefined) {
        return fail("bad_frame", "Cannot parse send frame: missing field 'envelope'");
      }
      const e = parseEnvelope(o.envelope);
      if (!e.ok) return e;
      return { ok: true, value: { v: 1, type, envelope: e.value } };
    }
    case "ack": {
      const ids = ackIds(o, MAX_ACK_IDS);
      if (!Array.isArray(ids)) return ids;
      return { ok: true, value: { v: 1, type, ids } };
    }
    case "ping":
    case "pong":
      return parsePing(o, type);
    default:
      return fail("unknown_type", `Cannot parse frame: unknown type ${JSON.stringify(type)}`);
  }
}

/** Parses and validates a frame a relay sent (used by the CLI). */
export function parseServerFrame(text: string): Parsed<ServerFrame> {
  const head = parseFrameHead(text);
  if (!head.ok) return head;
  const { o, type } = head.value;
  switch (type) {
    case "challenge": {
      const challenge = str(o, "challenge", "challenge frame");
      if (typeof challenge !== "string") return challenge;
      const c = fromBase64(challenge);
      if (!c || c.length !== CHALLENGE_BYTES) {
        return fail("bad_frame", "Cannot parse challenge frame: 'challenge' is not 32 bytes");
      }
      const exp = o.expires_in_ms;
      if (typeof exp !== "number" || !Number.isFinite(exp) || exp < 0) {
        return fail(
          "bad_frame",
          "Cannot parse challenge frame: field 'expires_in_ms' must be a non-negative number",
        );
      }
      return { ok: true, value: { v: 1, type, challenge, expires_in_ms: exp } };
    }
    case "ready": {
      const key = str(o, "key", "ready frame");
      if (typeof key !== "string") return key;
      if (!decodePublicKey(key)) {
        return fail(
          "bad_frame",
          "Cannot parse ready frame: field 'key' is not a base64 32-byte key",
        );
      }
      return { ok: true, value: { v: 1, type, key } };
    }
    case "deliver": {
      if (o.envelope === undefined) {
        return fail("bad_frame", "Cannot parse deliver frame: missing field 'envelope'");
      }
      const e = parseEnvelope(o.envelope);
      if (!e.ok) return e;
      return { ok: true, value: { v: 1, type, envelope: e.value } };
    }
    case "synced": {
      if (typeof o.count !== "number" || !Number.isSafeInteger(o.count) || o.count < 0) {
        return fail(
          "bad_frame",
          "Cannot parse synced frame: field 'count' must be a whole number >= 0",
        );
      }
      return { ok: true, value: { v: 1, type, count: o.count } };
    }
    case "accepted": {
      const id = str(o, "id", "accepted frame");
      if (typeof id !== "string") return id;
      if (!isValidId(id)) {
        return fail("bad_frame", "Cannot parse accepted frame: field 'id' is not a valid id");
      }
      return { ok: true, value: { v: 1, type, id } };
    }
    case "error": {
      const code = str(o, "code", "error frame");
      if (typeof code !== "string") return code;
      const message = str(o, "message", "error frame");
      if (typeof message !== "string") return message;
      // Unknown codes are passed through (a newer relay may add some); clients treat them as
      // generic failures and show the message.
      const f: ErrorFrame = { v: 1, type, code: code as ErrorCode, message };
      const bad = errorFrameExtras(o, f);
      if (bad) return bad;
      return { ok: true, value: f };
    }
    case "ping":
    case "pong":
      return parsePing(o, type);
    default:
      return fail("unknown_type", `Cannot parse frame: unknown type ${JSON.stringify(type)}`);
  }
}

/** Builds an error frame. */
export function errorFrame(
  code: ErrorCode,
  message: string,
  extra: { id?: string; retry_after_ms?: number } = {},
): ErrorFrame {
  return { v: 1, type: "error", code, message, ...extra };
}

/** A new random envelope id: 16 random bytes as 32 lower-case hex characters. */
export function newId(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}
