/**
 * A minimal WebSocket client (RFC 6455, text frames) over `Deno.connect` with TCP_NODELAY, for the
 * load generators.
 *
 * Deno's built-in `WebSocket` client leaves Nagle's algorithm on: a frame written while the
 * previous one is still unacknowledged waits for the peer's ACK, which on Linux is a delayed ACK
 * of up to ~40 ms unless the server answers first (`bench/nagle_check.ts` measures it: two frames
 * back to back, the server answering only the second, take ~43 ms; with this client ~0.2 ms). A
 * generator that sends dozens of frames per second per socket would then measure its own
 * sockets, and penalise the server that answers slowest. Go's net package (Centrifugo, most load
 * tools) sets TCP_NODELAY on every connection; so does this client.
 *
 * Frames written in one event-loop turn go out in one write. Masking uses a random key per frame,
 * as the RFC asks. Pings are answered; fragmented messages are reassembled.
 *
 * @module
 */

const enc = new TextEncoder();
const dec = new TextDecoder();
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The part of `WebSocket` the generators use. */
export interface BenchSocket {
  send(text: string): void;
  close(): void;
  /** Every text message, in order. */
  onmessage: ((text: string) => void) | null;
  /** Called once when the connection ends (closed by either side or failed). */
  onclose: ((reason: string) => void) | null;
}

/** Opens `url` (ws://host:port/path) and resolves once the upgrade is done. */
export async function connectWs(url: string, timeoutMs = 30_000): Promise<BenchSocket> {
  const u = new URL(url);
  if (u.protocol !== "ws:") throw new Error(`only ws:// is supported, got ${url}`);
  const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port || 80) });
  conn.setNoDelay(true);
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  const req = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    await writeAll(conn, enc.encode(req));
    let head: Uint8Array = new Uint8Array(0);
    let end = -1;
    const buf = new Uint8Array(4096);
    while (end < 0) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("connection closed during the upgrade");
      head = concat(head, buf.subarray(0, n));
      end = indexOfCrlf2(head);
    }
    const text = dec.decode(head.subarray(0, end));
    if (!/^HTTP\/1\.1 101/.test(text)) throw new Error(`upgrade refused: ${text.split("\r\n")[0]}`);
    const accept = /sec-websocket-accept:\s*(\S+)/i.exec(text)?.[1];
    const want = btoa(String.fromCharCode(
      ...new Uint8Array(await crypto.subtle.digest("SHA-1", enc.encode(key + GUID))),
    ));
    if (accept !== want) throw new Error("bad Sec-WebSocket-Accept");
    return new Socket(conn, head.subarray(end + 4));
  } catch (e) {
    try {
      conn.close();
    } catch { /* closed */ }
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

function indexOfCrlf2(b: Uint8Array): number {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10) return i;
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}

class Socket implements BenchSocket {
  onclose: ((reason: string) => void) | null = null;
  #onmessage: ((text: string) => void) | null = null;
  /** Messages that arrived before anyone listened (the first frame can come with the upgrade). */
  #early: string[] = [];
  #conn: Deno.Conn;
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #writing = false;
  #closed = false;
  #in: Uint8Array;
  #frag: Uint8Array[] = [];

  constructor(conn: Deno.Conn, rest: Uint8Array) {
    this.#conn = conn;
    this.#in = rest;
    this.#readLoop();
  }

  get onmessage(): ((text: string) => void) | null {
    return this.#onmessage;
  }

  set onmessage(f: ((text: string) => void) | null) {
    this.#onmessage = f;
    while (f && this.#early.length > 0 && this.#onmessage === f) f(this.#early.shift()!);
  }

  #emit(text: string): void {
    if (this.#onmessage && this.#early.length === 0) this.#onmessage(text);
    else this.#early.push(text);
  }

  send(text: string): void {
    if (this.#closed) throw new Error("socket closed");
    this.#frame(1, enc.encode(text));
  }

  close(): void {
    if (this.#closed) return;
    try {
      this.#frame(8, new Uint8Array([0x03, 0xe8])); // 1000
    } catch { /* closing anyway */ }
    this.#end("closed by the client");
  }

  #frame(opcode: number, payload: Uint8Array): void {
    const n = payload.length;
    const hl = n < 126 ? 2 : n < 65536 ? 4 : 10;
    const f = new Uint8Array(hl + 4 + n);
    f[0] = 0x80 | opcode;
    if (n < 126) f[1] = 0x80 | n;
    else if (n < 65536) {
      f[1] = 0x80 | 126;
      f[2] = n >> 8;
      f[3] = n & 255;
    } else {
      f[1] = 0x80 | 127;
      new DataView(f.buffer).setBigUint64(2, BigInt(n));
    }
    const mask = crypto.getRandomValues(new Uint8Array(4));
    f.set(mask, hl);
    const o = hl + 4;
    for (let i = 0; i < n; i++) f[o + i] = payload[i] ^ mask[i & 3];
    this.#out.push(f);
    this.#outBytes += f.length;
    if (!this.#writing) this.#flush();
  }

  async #flush(): Promise<void> {
    this.#writing = true;
    // Let the rest of this event-loop turn queue its frames: one write for all of them.
    await Promise.resolve();
    try {
      while (this.#out.length > 0 && !this.#closed) {
        const parts = this.#out, bytes = this.#outBytes;
        this.#out = [];
        this.#outBytes = 0;
        let data: Uint8Array;
        if (parts.length === 1) data = parts[0];
        else {
          data = new Uint8Array(bytes);
          let off = 0;
          for (const p of parts) {
            data.set(p, off);
            off += p.length;
          }
        }
        await writeAll(this.#conn, data);
      }
    } catch (e) {
      this.#end(`write failed: ${(e as Error).message}`);
    } finally {
      this.#writing = false;
    }
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        this.#parse();
        if (this.#closed) return;
        const n = await this.#conn.read(buf);
        if (n === null) return this.#end("closed by the server");
        this.#in = this.#in.length === 0 ? buf.slice(0, n) : concat(this.#in, buf.subarray(0, n));
      }
    } catch (e) {
      this.#end(`read failed: ${(e as Error).message}`);
    }
  }

  /** Handles every complete frame in the input buffer. */
  #parse(): void {
    let b = this.#in;
    while (b.length >= 2 && !this.#closed) {
      const fin = (b[0] & 0x80) !== 0, opcode = b[0] & 0x0f;
      let len = b[1] & 0x7f, off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = (b[2] << 8) | b[3];
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
        off = 10;
      }
      if (b[1] & 0x80) off += 4; // servers do not mask; tolerate it by skipping the key
      if (b.length < off + len) break;
      const payload = b.subarray(off, off + len);
      b = b.subarray(off + len);
      if (opcode === 9) this.#frame(10, payload.slice());
      else if (opcode === 8) this.#end("closed by the server");
      else if (opcode === 1 || opcode === 0) {
        if (!fin) this.#frag.push(payload.slice());
        else if (this.#frag.length > 0) {
          this.#frag.push(payload);
          const all = this.#frag.reduce((a, p) => concat(a, p), new Uint8Array(0));
          this.#frag = [];
          this.#emit(dec.decode(all));
        } else this.#emit(dec.decode(payload));
      }
    }
    this.#in = b;
  }

  #end(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* closed */ }
    const cb = this.onclose;
    this.onclose = null;
    cb?.(reason);
  }
}
