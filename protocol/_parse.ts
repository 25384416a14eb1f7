/**
 * Internal helpers of the strict parsers (frames, payloads): not part of the public API.
 *
 * @module
 */
import type { ErrorCode, Parsed } from "./errors.ts";

/** A parse failure. */
export function fail<T>(code: ErrorCode, message: string, id?: string): Parsed<T> {
  return id === undefined ? { ok: false, code, message } : { ok: false, code, message, id };
}

/** A JSON object, as parsed. */
export type Obj = Record<string, unknown>;

/** True for a JSON object (not null, not an array). */
export function isObj(x: unknown): x is Obj {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** The string field `field` of `o`, or a `bad_frame` failure naming it. */
export function str(o: Obj, field: string, where: string): string | Parsed<never> {
  const v = o[field];
  if (v === undefined) return fail("bad_frame", `Cannot parse ${where}: missing field '${field}'`);
  if (typeof v !== "string") {
    return fail("bad_frame", `Cannot parse ${where}: field '${field}' must be a string`);
  }
  return v;
}

/** `undefined` when `o.v` is `version`; else `bad_frame` (missing) or `unsupported_version`. */
export function checkVersion(o: Obj, where: string, version: number): Parsed<never> | undefined {
  if (o.v === undefined) return fail("bad_frame", `Cannot parse ${where}: missing field 'v'`);
  if (o.v !== version) {
    return fail(
      "unsupported_version",
      `Cannot parse ${where}: version ${
        JSON.stringify(o.v)
      } is not supported (this side speaks ${version})`,
    );
  }
  return undefined;
}

/** Parses JSON text that must be an object. */
export function parseJsonObject(text: string, where: string): Parsed<Obj> {
  let x: unknown;
  try {
    x = JSON.parse(text);
  } catch {
    return fail("bad_json", `Cannot parse ${where}: not valid JSON`);
  }
  if (!isObj(x)) return fail("bad_frame", `Cannot parse ${where}: not a JSON object`);
  return { ok: true, value: x };
}

const ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

/** True for an envelope id: 8 to 64 of `A-Z a-z 0-9 _ -` (both versions). */
export function isEnvelopeId(id: unknown): id is string {
  return typeof id === "string" && ID_RE.test(id);
}

/** A `ping` or `pong` frame of version `v` (both versions share the rule). */
export function parsePingFrame<V extends number>(
  o: Obj,
  type: "ping" | "pong",
  v: V,
): Parsed<{ v: V; type: "ping" | "pong"; nonce?: string }> {
  if (o.nonce !== undefined && (typeof o.nonce !== "string" || o.nonce.length > 64)) {
    return fail("bad_frame", `Cannot parse ${type} frame: field 'nonce' must be a short string`);
  }
  return { ok: true, value: o.nonce === undefined ? { v, type } : { v, type, nonce: o.nonce } };
}

/** The `ids` of an `ack` frame: 1 to `max` envelope ids, or the failure. */
export function ackIds(o: Obj, max: number): string[] | Parsed<never> {
  const ids = o.ids;
  if (ids === undefined) return fail("bad_frame", "Cannot parse ack frame: missing field 'ids'");
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > max) {
    return fail(
      "bad_frame",
      `Cannot parse ack frame: field 'ids' must be an array of 1 to ${max} ids`,
    );
  }
  if (!ids.every(isEnvelopeId)) {
    return fail("bad_frame", "Cannot parse ack frame: every id must be 8-64 of A-Z a-z 0-9 _ -");
  }
  return ids as string[];
}

/** The optional `id` and `retry_after_ms` of an error frame, copied onto `f`; or the failure. */
export function errorFrameExtras(
  o: Obj,
  f: { id?: string; retry_after_ms?: number },
): Parsed<never> | undefined {
  if (o.id !== undefined) {
    if (!isEnvelopeId(o.id)) {
      return fail("bad_frame", "Cannot parse error frame: field 'id' is not a valid id");
    }
    f.id = o.id;
  }
  if (o.retry_after_ms !== undefined) {
    const r = o.retry_after_ms;
    if (typeof r !== "number" || !Number.isFinite(r) || r < 0) {
      return fail(
        "bad_frame",
        "Cannot parse error frame: field 'retry_after_ms' must be a number >= 0",
      );
    }
    f.retry_after_ms = r;
  }
  return undefined;
}

/** A decrypted payload of version `version` as a JSON object: UTF-8, JSON, object, `v` checked. */
export function parsePayloadObject(bytes: Uint8Array, version: number): Parsed<Obj> {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail("bad_frame", "Cannot parse payload: not UTF-8");
  }
  const p = parseJsonObject(text, "payload");
  if (!p.ok) return p;
  return checkVersion(p.value, "payload", version) ?? p;
}
