/**
 * A WebSocket client written on a bare TCP connection, for tests that need what the runtime's
 * `WebSocket` will not send: a chosen `Host` header, or a connection that stops half way.
 *
 * @module
 */
import { type Frame } from "./raw_client.ts";

const enc = new TextEncoder(), dec = new TextDecoder();

/** A WebSocket over a raw TCP connection (text frames only). */
export class RawWebSocket implements AsyncDisposable {
  readonly conn: Deno.Conn;
  /** The HTTP status line of the handshake's answer. */
  readonly status: string;
  #buf: Uint8Array;
  /** The close code the server sent, once it did. */
  closeCode?: number;

  private constructor(conn: Deno.Conn, status: string, rest: Uint8Array) {
    this.conn = conn;
    this.status = status;
    this.#buf = rest;
  }

  /**
   * Connects to 127.0.0.1:`port` and sends the upgrade for `path` with `headers` (a `Host` given
   * here replaces the real one). Resolves once the answer's head is read, whatever its status.
   */
  static async open(
    port: number,
    headers: Record<string, string> = {},
    path = "/ws",
  ): Promise<RawWebSocket> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const all: Record<string, string> = {
      host: `127.0.0.1:${port}`,
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": key,
      "sec-websocket-version": "13",
      ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
    };
    const head = Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join("");
    await conn.write(enc.encode(`GET ${path} HTTP/1.1\r\n${head}\r\n`));
    let buf: Uint8Array = new Uint8Array(0);
    for (;;) {
      const text = dec.decode(buf);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const status = text.slice(0, text.indexOf("\r\n"));
        return new RawWebSocket(
          conn,
          status,
          buf.subarray(enc.encode(text.slice(0, end + 4)).length),
        );
      }
      const chunk = await RawWebSocket.#read(conn);
      if (!chunk) throw new Error(`connection closed during the handshake: ${text}`);
      buf = concat(buf, chunk);
    }
  }

  static async #read(conn: Deno.Conn): Promise<Uint8Array | null> {
    const b = new Uint8Array(16384);
    const n = await conn.read(b).catch(() => null);
    return n === null ? null : b.subarray(0, n);
  }

  /** Sends one masked text frame (JSON for objects). */
  async send(f: Frame | string): Promise<void> {
    const payload = enc.encode(typeof f === "string" ? f : JSON.stringify(f));
    const len = payload.length;
    const head = len < 126 ? [0x81, 0x80 | len] : [0x81, 0x80 | 126, len >> 8, len & 0xff];
    if (len >= 65536) throw new Error("frame too long for this test client");
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const body = payload.map((b, i) => b ^ mask[i % 4]);
    await this.conn.write(concat(new Uint8Array(head), mask, body));
  }

  /**
   * The next text frame as JSON; `undefined` once the server closed (its close code is then in
   * {@linkcode closeCode}). Pings are skipped.
   */
  async next(ms = 5000): Promise<Frame | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const f = this.#parse();
      if (f) {
        if (f.opcode === 0x8) {
          this.closeCode = f.payload.length >= 2 ? (f.payload[0] << 8) | f.payload[1] : 1005;
          return undefined;
        }
        if (f.opcode === 0x1) return JSON.parse(dec.decode(f.payload));
        continue;
      }
      if (Date.now() > end) throw new Error(`no frame within ${ms} ms`);
      const chunk = await RawWebSocket.#read(this.conn);
      if (!chunk) return undefined;
      this.#buf = concat(this.#buf, chunk);
    }
  }

  #parse(): { opcode: number; payload: Uint8Array } | undefined {
    const b = this.#buf;
    if (b.length < 2) return undefined;
    let len = b[1] & 0x7f, at = 2;
    if (len === 126) {
      if (b.length < 4) return undefined;
      len = (b[2] << 8) | b[3];
      at = 4;
    } else if (len === 127) {
      if (b.length < 10) return undefined;
      len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
      at = 10;
    }
    if (b.length < at + len) return undefined;
    this.#buf = b.subarray(at + len);
    return { opcode: b[0] & 0x0f, payload: b.subarray(at, at + len) };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch { /* closed already */ }
    await Promise.resolve();
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
