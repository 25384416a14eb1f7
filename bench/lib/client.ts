/**
 * Benchmark client pieces: identities that sign with WebCrypto Ed25519 (native, so the load
 * generator spends its CPU on sockets, not on tweetnacl), and connect + challenge-auth.
 *
 * @module
 */
import {
  authMessage,
  type KeyPair,
  keyPairFromSeed,
  normalizeRelayUrl,
  signingKeyFromSeed,
  toBase64,
} from "@chat-p2p/protocol";
import { type BenchSocket, connectWs } from "./ws.ts";

/** A key the generator can authenticate (and, when `kp` is set, seal) with. */
export interface Identity {
  /** Base64 public key (the address). */
  key: string;
  signKey: CryptoKey;
  /** tweetnacl pair, only for identities that seal envelopes. */
  kp?: KeyPair;
}

/** An identity with a tweetnacl key pair too (for sealing real envelopes). */
export async function sealingIdentity(): Promise<Identity> {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  const kp = keyPairFromSeed(seed);
  const signKey = await signingKeyFromSeed(seed);
  return { key: toBase64(kp.publicKey), signKey, kp };
}

/** A signing-only identity (WebCrypto key generation; fast). */
export async function signingIdentity(): Promise<Identity> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { key: toBase64(raw), signKey: pair.privateKey };
}

/** Pulls the string value of `"field":"..."` out of JSON text without parsing it. */
export function field(text: string, name: string): string | undefined {
  const tag = `"${name}":"`;
  const i = text.indexOf(tag);
  if (i < 0) return undefined;
  const j = text.indexOf('"', i + tag.length);
  return j < 0 ? undefined : text.slice(i + tag.length, j);
}

/** Deno's built-in WebSocket behind the generators' socket interface (Nagle on; see ws.ts). */
export function openNative(url: string): Promise<BenchSocket> {
  const ws = new WebSocket(url);
  return new Promise((resolve, reject) => {
    const s: BenchSocket = {
      send: (t) => ws.send(t),
      close: () => ws.close(),
      onmessage: null,
      onclose: null,
    };
    ws.onopen = () => {
      ws.onerror = null;
      resolve(s);
    };
    ws.onerror = (e) => reject(new Error((e as ErrorEvent).message || "socket error"));
    ws.onmessage = (e) => {
      if (typeof e.data === "string") s.onmessage?.(e.data);
    };
    ws.onclose = (e) => s.onclose?.(`closed ${e.code} ${e.reason}`);
  });
}

/** How a generator opens sockets: Deno's WebSocket, or bench/lib/ws.ts (TCP_NODELAY). */
export type Transport = "native" | "nodelay";

/** The socket opener for a transport. */
export function opener(t: Transport): (url: string) => Promise<BenchSocket> {
  return t === "native" ? openNative : (url) => connectWs(url);
}

/** An authenticated socket. */
export interface Authed {
  ws: BenchSocket;
  /** ms from opening the socket to the `ready` frame. */
  handshakeMs: number;
  /** ms from sending auth to `ready`. */
  authMs: number;
}

/**
 * Opens a socket, answers the challenge, resolves at `ready`. From then on every text frame goes
 * to `onFrame` (set before any later frame can arrive).
 */
export async function connectAuth(
  url: string,
  id: Identity,
  onFrame: (text: string, ws: BenchSocket) => void,
  open: (url: string) => Promise<BenchSocket> = openNative,
  timeoutMs = 30_000,
): Promise<Authed> {
  const relay = normalizeRelayUrl(url)!;
  const t0 = performance.now();
  let tAuth = 0;
  const ws = await open(url);
  return await new Promise<Authed>((resolve, reject) => {
    let state = 0;
    const timer = setTimeout(() => {
      fail(new Error(`no ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (e: Error) => {
      if (state === 3) return;
      state = 3;
      clearTimeout(timer);
      try {
        ws.close();
      } catch { /* closed */ }
      reject(e);
    };
    ws.onclose = (why) => fail(new Error(why));
    ws.onmessage = (s) => {
      if (state === 0) {
        const challenge = field(s, "challenge");
        if (!challenge) return fail(new Error(`expected a challenge, got ${s.slice(0, 200)}`));
        state = 1;
        const msg = new Uint8Array(authMessage(relay, challenge, id.key));
        crypto.subtle.sign("Ed25519", id.signKey, msg).then(
          (sig) => {
            tAuth = performance.now();
            ws.send(JSON.stringify({
              v: 1,
              type: "auth",
              key: id.key,
              relay,
              signature: toBase64(new Uint8Array(sig)),
            }));
          },
          (err) => fail(err as Error),
        );
        return;
      }
      if (state === 1) {
        if (s.includes('"type":"ready"')) {
          state = 2;
          clearTimeout(timer);
          ws.onmessage = (text) => onFrame(text, ws);
          ws.onclose = null;
          const now = performance.now();
          resolve({ ws, handshakeMs: now - t0, authMs: now - tAuth });
        } else if (s.includes('"type":"error"')) {
          fail(new Error(`auth refused: ${s.slice(0, 300)}`));
        }
      }
    };
  });
}
