/**
 * Relay authentication: the relay URL every client signs, normalised, and the exact bytes signed.
 *
 * @module
 */
import { PROTOCOL_NAME, PROTOCOL_VERSION } from "./frames.ts";

/**
 * Normalises a relay URL for signing and comparison: scheme `ws:` or `wss:` (http/https are
 * mapped to them), host lower-cased, default port dropped, path `/ws` when empty or `/`, no query
 * or fragment. Returns `undefined` for anything that is not such a URL.
 */
export function normalizeRelayUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  const scheme = u.protocol === "http:" ? "ws:" : u.protocol === "https:" ? "wss:" : u.protocol;
  if (scheme !== "ws:" && scheme !== "wss:") return undefined;
  if (u.username || u.password) return undefined;
  const defaultPort = scheme === "ws:" ? "80" : "443";
  const port = u.port && u.port !== defaultPort ? `:${u.port}` : "";
  const path = u.pathname === "" || u.pathname === "/" ? "/ws" : u.pathname;
  return `${scheme}//${u.hostname.toLowerCase()}${port}${path}`;
}

/**
 * The exact bytes a client signs to authenticate: UTF-8 of
 * `"chat-p2p-auth/1\n" + relayUrl + "\n" + challenge + "\n" + key`, where `relayUrl` is the
 * normalised URL ({@linkcode normalizeRelayUrl}), `challenge` the base64 string from the
 * challenge frame and `key` the base64 public key. Binding the relay URL stops a relay from
 * replaying a client's answer to another relay; the fresh challenge stops replays on new sockets.
 */
export function authMessage(relayUrl: string, challenge: string, key: string): Uint8Array {
  return new TextEncoder().encode(
    `${PROTOCOL_NAME}-auth/${PROTOCOL_VERSION}\n${relayUrl}\n${challenge}\n${key}`,
  );
}
