/**
 * The load generators' Centrifugo client: its JSON protocol over WebSocket (one JSON object per
 * line, several lines per frame allowed), a connection JWT (HS256, signed with the secret the
 * bench gave the server), subscribe, and client-side publish. See https://centrifugal.dev/docs/
 * transports/client_protocol.
 *
 * @module
 */
import { deadline, isTimeoutError } from "@chat-p2p/protocol/async";
import type { BenchSocket } from "./ws.ts";

const enc = new TextEncoder();

function b64url(bytes: Uint8Array | string): string {
  const b = typeof bytes === "string" ? enc.encode(bytes) : bytes;
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** An HS256 connection token for user `sub` (what an application backend would issue). */
export async function connectionToken(secret: string, sub: string): Promise<string> {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 86_400 }));
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = await crypto.subtle.sign("HMAC", key, enc.encode(`${head}.${body}`));
  return `${head}.${body}.${b64url(new Uint8Array(sig))}`;
}

/**
 * Connects with `token`, subscribes to `channel` when given, then hands every later message (one
 * JSON text each, frames split at newlines) to `onMessage`. Server pings (`{}`) are answered.
 */
export async function centrifugoSession(
  ws: BenchSocket,
  token: string,
  channel: string | undefined,
  onMessage: (text: string) => void,
  timeoutMs = 30_000,
): Promise<void> {
  let state = 0;
  const session = new Promise<void>((resolve, reject) => {
    const fail = (e: Error) => {
      if (state === 3) return;
      state = 3;
      reject(e);
    };
    const one = (line: string) => {
      if (line === "{}") return ws.send("{}"); // ping → pong
      if (state === 2) return onMessage(line);
      if (line.includes('"error"')) return fail(new Error(`centrifugo refused: ${line}`));
      if (state === 0 && line.startsWith('{"id":1,')) {
        if (!channel) return done();
        state = 1;
        ws.send(JSON.stringify({ id: 2, subscribe: { channel } }));
      } else if (state === 1 && line.startsWith('{"id":2,')) done();
    };
    const done = () => {
      state = 2;
      ws.onclose = null;
      resolve();
    };
    ws.onclose = (why) => fail(new Error(why));
    ws.onmessage = (text) => {
      if (text.indexOf("\n") < 0) return one(text);
      for (const line of text.split("\n")) if (line) one(line);
    };
    ws.send(JSON.stringify({ id: 1, connect: { token, name: "chat-p2p-bench" } }));
  });
  try {
    await deadline(session, timeoutMs);
  } catch (e) {
    state = 3;
    try {
      ws.close();
    } catch { /* closed */ }
    throw isTimeoutError(e) ? new Error(`no connect reply in ${timeoutMs} ms`) : e;
  }
}
