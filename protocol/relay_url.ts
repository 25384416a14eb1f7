/**
 * Relay URLs for protocol v2: a strict grammar, parsed by hand (no WHATWG URL parser), so that
 * every implementation turns the same text into the same canonical URL, or refuses it. The
 * canonical URL is what a client signs in `open` and what a relay compares with its configured
 * public URLs.
 *
 * ```
 * relay-url  = scheme "://" host [ ":" port ] [ path ]
 * scheme     = "ws" / "wss" / "http" / "https"     ; any case; http → ws, https → wss
 * host       = dns-name / ipv4 / "[" ipv6 "]"
 * dns-name   = label *( "." label )                 ; at most 253 characters, lower-cased
 * label      = 1*63( ALPHA / DIGIT / "-" )          ; not starting or ending with "-"
 *                                                   ; a name whose last label is all digits
 *                                                   ; must be an ipv4
 * ipv4       = dec-octet 3( "." dec-octet )         ; 0-255, no leading zeros
 * ipv6       = RFC 4291 §2.2 text                   ; output: RFC 5952 (lower case, no leading
 *                                                   ; zeros, "::" for the first longest run of
 *                                                   ; two or more zero groups; a dotted IPv4
 *                                                   ; tail becomes two hex groups)
 * port       = %x31-39 *4DIGIT                      ; 1-65535, no leading zeros; dropped when
 *                                                   ; it is the default (ws 80, wss 443)
 * path       = "" / "/" / 1*( "/" segment )          ; "" and "/" become "/ws"
 * segment    = *( ALPHA / DIGIT / "-" / "." / "_" / "~" ) ; not "." or ".."
 * ```
 *
 * Refused: user info (`@`), query (`?`), fragment (`#`), percent-escapes, backslashes, spaces
 * and control characters, non-ASCII characters (write international names in punycode), and
 * URLs longer than {@linkcode MAX_RELAY_URL_CHARS}.
 *
 * @module
 */

/** Longest relay URL accepted, in characters. */
export const MAX_RELAY_URL_CHARS = 2048;

/** The canonical relay URL, or why the text is not a relay URL. */
export type RelayUrlResult = { ok: true; value: string } | { ok: false; message: string };

function bad(message: string): RelayUrlResult {
  return { ok: false, message: `Not a relay URL: ${message}` };
}

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const OCTET_RE = /^(?:0|[1-9][0-9]{0,2})$/;
const SEGMENT_RE = /^[A-Za-z0-9._~-]*$/;

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => OCTET_RE.test(p) && Number(p) <= 255)) {
    return undefined;
  }
  return parts.map(Number);
}

function parseGroups(text: string): number[] | undefined {
  if (text === "") return [];
  const out: number[] = [];
  for (const g of text.split(":")) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    out.push(parseInt(g, 16));
  }
  return out;
}

/** The 8 groups of an RFC 4291 address text, or `undefined`. */
function parseIpv6(text: string): number[] | undefined {
  let body = text;
  let tail: number[] = [];
  const lastColon = body.lastIndexOf(":");
  if (body.slice(lastColon + 1).includes(".")) {
    const v4 = parseIpv4(body.slice(lastColon + 1));
    if (!v4 || lastColon < 0) return undefined;
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    // Keep the separator: "::1.2.3.4" leaves "::", "1::1.2.3.4" leaves "1::", "a:b:…:1.2.3.4"
    // leaves "a:b:…" (its trailing ":" dropped below).
    body = body.slice(0, lastColon + 1);
    if (!body.endsWith("::")) body = body.slice(0, -1);
  }
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0]);
  if (!head) return undefined;
  if (halves.length === 1) {
    const all = [...head, ...tail];
    return all.length === 8 ? all : undefined;
  }
  const rest = parseGroups(halves[1]);
  if (!rest) return undefined;
  const known = head.length + rest.length + tail.length;
  if (known > 7) return undefined;
  return [...head, ...new Array(8 - known).fill(0), ...rest, ...tail];
}

/** RFC 5952 text of 8 groups. */
function formatIpv6(groups: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

function parseHost(text: string): RelayUrlResult {
  if (text.startsWith("[")) {
    if (!text.endsWith("]")) return bad("an IPv6 address must end with ']'");
    const groups = parseIpv6(text.slice(1, -1));
    if (!groups) return bad(`'${text}' is not an IPv6 address`);
    return { ok: true, value: `[${formatIpv6(groups)}]` };
  }
  if (text === "") return bad("the host is empty");
  const host = text.toLowerCase();
  if (host.length > 253) return bad("the host name is longer than 253 characters");
  const labels = host.split(".");
  if (/^[0-9]+$/.test(labels[labels.length - 1])) {
    const v4 = parseIpv4(host);
    if (!v4) return bad(`'${text}' is not an IPv4 address (four numbers 0-255, no leading zeros)`);
    return { ok: true, value: v4.join(".") };
  }
  for (const label of labels) {
    if (!LABEL_RE.test(label)) {
      return bad(
        `'${text}' is not a host name (labels of 1-63 letters, digits and '-', ` +
          "not starting or ending with '-', separated by single dots)",
      );
    }
  }
  return { ok: true, value: host };
}

/**
 * Parses a relay URL by the grammar above and returns its canonical text, or a message saying
 * what is wrong.
 *
 * @example Canonical forms
 * ```ts
 * import { parseRelayUrl } from "@chat-p2p/protocol";
 *
 * console.log(parseRelayUrl("HTTPS://Relay.Example:443/")); // { ok: true, value: "wss://relay.example/ws" }
 * console.log(parseRelayUrl("ws://[0:0::1]:8080").ok); // true: "ws://[::1]:8080/ws"
 * console.log(parseRelayUrl("wss://relay.example/ws?token=1").ok); // false: no query
 * ```
 */
export function parseRelayUrl(text: string): RelayUrlResult {
  if (typeof text !== "string" || text.length === 0) return bad("it is empty");
  if (text.length > MAX_RELAY_URL_CHARS) {
    return bad(`it is longer than ${MAX_RELAY_URL_CHARS} characters`);
  }
  if (/[^\x21-\x7e]/.test(text)) {
    return bad("it has a space, a control character or a non-ASCII character (use punycode)");
  }
  for (const [c, what] of [["@", "user info"], ["?", "a query"], ["#", "a fragment"]] as const) {
    if (text.includes(c)) return bad(`it has ${what} ('${c}')`);
  }
  if (text.includes("%")) return bad("it has a percent-escape ('%')");
  if (text.includes("\\")) return bad("it has a backslash");
  const m = /^([A-Za-z]+):\/\/([^/]*)(.*)$/.exec(text);
  if (!m) return bad("it does not start with ws://, wss://, http:// or https://");
  const scheme = { ws: "ws", wss: "wss", http: "ws", https: "wss" }[m[1].toLowerCase()];
  if (!scheme) return bad(`the scheme '${m[1]}' is not ws, wss, http or https`);
  const authority = m[2];
  const ipv6End = authority.startsWith("[") ? authority.indexOf("]") : -1;
  const colon = authority.indexOf(":", ipv6End + 1);
  if (ipv6End >= 0 && ipv6End + 1 < authority.length && colon !== ipv6End + 1) {
    return bad("only ':port' may follow the ']' of an IPv6 address");
  }
  const host = parseHost(colon < 0 ? authority : authority.slice(0, colon));
  if (!host.ok) return host;
  let port = "";
  if (colon >= 0) {
    const p = authority.slice(colon + 1);
    if (!/^[1-9][0-9]{0,4}$/.test(p) || Number(p) > 65535) {
      return bad(`the port '${p}' is not a number from 1 to 65535 without leading zeros`);
    }
    if (p !== (scheme === "ws" ? "80" : "443")) port = `:${p}`;
  }
  let path = m[3];
  if (path === "" || path === "/") path = "/ws";
  for (const segment of path.slice(1).split("/")) {
    if (!SEGMENT_RE.test(segment) || segment === "." || segment === "..") {
      return bad(
        `the path segment '${segment}' is not letters, digits, '-', '.', '_' and '~' ` +
          "(and not '.' or '..')",
      );
    }
  }
  return { ok: true, value: `${scheme}://${host.value}${port}${path}` };
}

/** The canonical text of a relay URL ({@linkcode parseRelayUrl}), or `undefined`. */
export function normalizeRelayUrlV2(text: string): string | undefined {
  const r = parseRelayUrl(text);
  return r.ok ? r.value : undefined;
}
