/**
 * A raw protocol client for tests: sends any text or bytes, queues every frame it receives, and
 * records how the socket closed. Hostile-input tests need it to send what no real client would.
 *
 * @module
 */
import { authMessage, type KeyPair, normalizeRelayUrl, sign, toBase64 } from "@chat-p2p/protocol";

// deno-lint-ignore no-explicit-any
export type Frame = Record<string, any>;

/** A test client on one WebSocket. */
export class RawClient {
  readonly ws: WebSocket;
  readonly url: string;
  readonly frames: Frame[] = [];
  closeCode?: number;
  closed: Promise<number>;
  #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket, url: string) {
    this.ws = ws;
    this.url = url;
    const { promise, resolve } = Promise.withResolvers<number>();
    this.closed = promise;
    ws.onmessage = (e) => {
      this.frames.push(typeof e.data === "string" ? JSON.parse(e.data) : { binary: true });
      this.#wake();
    };
    ws.onclose = (e) => {
      this.closeCode = e.code;
      resolve(e.code);
      this.#wake();
    };
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Opens a socket and waits for it (and for the challenge frame). */
  static async connect(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    const c = new RawClient(ws, url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) =>
        reject(new Error(`cannot connect to ${url}: ${(e as ErrorEvent).message}`));
    });
    c.challenge = (await c.next("challenge")).challenge;
    return c;
  }

  /** Connects and authenticates as `kp`; waits for `ready`. */
  static async authed(url: string, kp: KeyPair): Promise<RawClient> {
    const c = await RawClient.connect(url);
    c.auth(kp);
    await c.next("ready");
    return c;
  }

  /** The challenge string this socket received. */
  challenge = "";

  /** Sends a correct auth frame for `kp` (optionally signing a different relay URL). */
  auth(kp: KeyPair, relayUrl = normalizeRelayUrl(this.url)!): void {
    const key = toBase64(kp.publicKey);
    this.send({
      v: 1,
      type: "auth",
      key,
      relay: relayUrl,
      signature: toBase64(sign(authMessage(relayUrl, this.challenge, key), kp.secretKey)),
    });
  }

  /** Sends a frame: objects as JSON, strings and bytes as they are. */
  send(f: Frame | string | Uint8Array): void {
    this.ws.send(typeof f === "string" || f instanceof Uint8Array ? f : JSON.stringify(f));
  }

  /**
   * Removes and returns the first queued frame matching `type` (any type when omitted), waiting up
   * to `ms` for it.
   */
  async next(type?: string, ms = 5000): Promise<Frame> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex((f) => type === undefined || f.type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.closeCode !== undefined) {
        throw new Error(
          `socket closed (${this.closeCode}) before a '${type ?? "any"}' frame; had ${
            JSON.stringify(this.frames)
          }`,
        );
      }
      const left = end - Date.now();
      if (left <= 0) {
        throw new Error(
          `no '${type ?? "any"}' frame within ${ms} ms; had ${JSON.stringify(this.frames)}`,
        );
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Closes the socket and waits until it is closed. */
  async close(): Promise<void> {
    if (this.closeCode === undefined) {
      if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
        this.ws.close();
      }
      await this.closed;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
