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
