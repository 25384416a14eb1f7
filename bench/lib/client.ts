/**
 * Benchmark client pieces: identities that sign with WebCrypto Ed25519 (native, so the load
 * generator spends its CPU on sockets, not on tweetnacl), and a connect that speaks whichever
 * protocol the relay's first frame names, so one generator drives relays of either version
 * (`bench/ab.ts` compares a checkout before protocol v2 with one after):
 *
 * - v1 (`challenge`): every socket authenticates as its identity; envelopes name both keys.
 * - v2 (`hello`): a reader opens the pair mailbox whose auth key is its identity; a sender opens
 *   nothing (sealed sender); envelopes name the mailbox only.
 *
 * @module
 */
import {
  authMessage,
  fromBase64,
  type KeyPair,
  keyPairFromSeed,
  normalizeRelayUrl,
  openMessage,
  pairMailboxId,
  parseRelayUrl,
  signingKeyFromSeed,
  toBase64,
} from "@chat-p2p/protocol";
import { deadline, isTimeoutError } from "@chat-p2p/protocol/async";
import { type BenchSocket, connectWs } from "./ws.ts";

/** A key the generator can authenticate or open a mailbox with (and, with `kp`, seal with). */
export interface Identity {
  /** Base64 public key (v1: the address; v2: the auth key of its pair mailbox). */
  key: string;
  signKey: CryptoKey;
  /** tweetnacl pair, only for identities that seal v1 envelopes. */
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

/** The v2 pair mailbox id an identity reads (its key as the mailbox's auth key). */
export function mailboxOf(id: Identity): string {
  return toBase64(pairMailboxId(fromBase64(id.key)!));
}

/** Pulls the string value of `"field":"..."` out of JSON text without parsing it. */
export function field(text: string, name: string): string | undefined {
  const tag = `"${name}":"`;
  const i = text.indexOf(tag);
  if (i < 0) return undefined;
  const j = text.indexOf('"', i + tag.length);
  return j < 0 ? undefined : text.slice(i + tag.length, j);
}

/** True for a `deliver` frame of either version (`{"v":N,"type":"deliver"…`). */
export function isDeliver(text: string): boolean {
  return text.startsWith('"type":"deliver"', 7);
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

/** A socket ready for traffic. */
export interface Connected {
  ws: BenchSocket;
  /** The relay's protocol version. */
  version: 1 | 2;
  /** v2 reader: the mailbox it opened. */
  mailbox?: string;
  /** ms from opening the socket to `ready` (v1) or `opened` (v2; `hello` for a sender). */
  handshakeMs: number;
  /** ms from sending auth or open to its answer (0 for a v2 sender). */
  authMs: number;
}

/** The `ack` frame text for `ids` on a socket of `c`'s version. */
export function ackFrame(c: Pick<Connected, "version" | "mailbox">, ids: string[]): string {
  return JSON.stringify(
    c.version === 1 ? { v: 1, type: "ack", ids } : { v: 2, type: "ack", mailbox: c.mailbox, ids },
  );
}

/** The `ping` frame text of `c`'s version. */
export function pingFrame(c: Pick<Connected, "version">, nonce: string): string {
  return JSON.stringify({ v: c.version, type: "ping", nonce });
}

/** Options for {@linkcode connect}. */
export interface ConnectOptions {
  /** v2: open `id`'s pair mailbox (a reader); otherwise the socket opens nothing (a sender). */
  read?: boolean;
  /** Give up when not ready after this long (default 30 s). */
  timeoutMs?: number;
  /** How the socket is opened (default: Deno's WebSocket, {@linkcode openNative}). */
  open?: (url: string) => Promise<BenchSocket>;
}

/**
 * Opens a socket and makes it ready for the relay's protocol: v1 authenticates as `id`; v2 opens
 * `id`'s pair mailbox when `read` (else it is ready at `hello`). Resolves at `ready` / `opened`;
 * from then on every text frame goes to `onFrame` (set before any later frame can arrive: a v2
 * reader's pending envelopes and `synced` come after `opened`).
 */
export async function connect(
  url: string,
  id: Identity,
  onFrame: (text: string, ws: BenchSocket) => void,
  opts: ConnectOptions = {},
): Promise<Connected> {
  const t0 = performance.now();
  let tAuth = 0;
  const ws = await (opts.open ?? openNative)(url);
  let settled = false;
  const handshake = new Promise<Connected>((resolve, reject) => {
    let state = 0;
    let version: 1 | 2 = 1;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      reject(e);
    };
    const ready = (mailbox?: string) => {
      settled = true;
      ws.onmessage = (text) => onFrame(text, ws);
      ws.onclose = null;
      const now = performance.now();
      resolve({
        ws,
        version,
        ...(mailbox ? { mailbox } : {}),
        handshakeMs: now - t0,
        authMs: tAuth ? now - tAuth : 0,
      });
    };
    const sign = (message: Uint8Array, frame: (signature: string) => object) =>
      crypto.subtle.sign("Ed25519", id.signKey, new Uint8Array(message)).then(
        (sig) => {
          tAuth = performance.now();
          ws.send(JSON.stringify(frame(toBase64(new Uint8Array(sig)))));
        },
        (err) => fail(err as Error),
      );
    ws.onclose = (why) => fail(new Error(why));
    ws.onmessage = (s) => {
      if (state === 0) {
        const challenge = field(s, "challenge");
        if (!challenge) return fail(new Error(`expected a challenge, got ${s.slice(0, 200)}`));
        state = 1;
        if (s.includes('"type":"challenge"')) {
          const relay = normalizeRelayUrl(url)!;
          sign(authMessage(relay, challenge, id.key), (signature) => ({
            v: 1,
            type: "auth",
            key: id.key,
            relay,
            signature,
          }));
          return;
        }
        version = 2;
        if (!opts.read) return ready();
        const relay = parseRelayUrl(url);
        if (!relay.ok) return fail(new Error(relay.message));
        sign(openMessage(relay.value, challenge, "pair", id.key), (signature) => ({
          v: 2,
          type: "open",
          kind: "pair",
          key: id.key,
          signature,
        }));
        return;
      }
      if (state === 1) {
        if (s.includes('"type":"ready"')) ready();
        else if (s.includes('"type":"opened"')) ready(field(s, "mailbox"));
        else if (s.includes('"type":"error"')) fail(new Error(`refused: ${s.slice(0, 300)}`));
      }
    };
  });
  const timeoutMs = opts.timeoutMs ?? 30_000;
  try {
    return await deadline(handshake, timeoutMs);
  } catch (e) {
    settled = true;
    try {
      ws.close();
    } catch { /* closed */ }
    throw isTimeoutError(e) ? new Error(`not ready within ${timeoutMs} ms`) : e;
  }
}
