/**
 * One connection to a relay: owns the WebSocket. It authenticates (challenge → signed auth →
 * ready), then offers a small async API: {@linkcode RelaySession.send} resolves when the relay
 * answers `accepted` for the envelope (or rejects with a {@linkcode RelayError} carrying the
 * relay's error code, once: retrying is the outbox's business), deliveries arrive through
 * {@linkcode RelaySession.nextEvent} or the async iterator, {@linkcode RelaySession.ack}
 * acknowledges stored ids, and `close()` always releases the socket. Every received frame goes
 * through `parseServerFrame` of @chat-p2p/protocol. Frames are written in order, paced by a
 * {@linkcode TokenBucket} so a burst stays under the relay's frame limit; acks waiting for their
 * turn are merged into one frame. {@linkcode ReconnectingRelay} (reconnecting.ts) builds on it.
 *
 * @module
 */
import {
  authMessage,
  type ClientFrame,
  CLOSE_CODES,
  DEFAULT_MAX_FRAME_BYTES,
  type Envelope,
  type ErrorCode,
  type KeyPair,
  MAX_ACK_IDS,
  normalizeRelayUrl,
  parseServerFrame,
  type ServerFrame,
  signAsync,
  toBase64,
} from "@chat-p2p/protocol";
import { deadline, isTimeoutError, TokenBucket } from "@chat-p2p/protocol/async";
import { RelayError } from "./errors.ts";

/** Default time to wait for the relay (connect, authenticate, accept). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Something the relay pushed to an authenticated session. */
export type RelayEvent =
  /** An envelope for me (pending or live). Ack its id once stored. */
  | { type: "deliver"; envelope: Envelope }
  /** The initial drain of pending envelopes is complete. */
  | { type: "synced"; count: number }
  /** A connection-level error frame (no envelope id). */
  | { type: "error"; code: ErrorCode; message: string }
  /** A frame that failed validation; `id` names the envelope when it could be read. */
  | { type: "invalid"; code: ErrorCode; message: string; id?: string };

/** How the socket ended. */
export interface CloseInfo {
  /** WebSocket close code (0 when the connection never opened or dropped without one). */
  code: number;
  /** Close reason sent by the relay, if any. */
  reason: string;
  /** True when this side asked to close. */
  byClient: boolean;
}

/** Options for {@linkcode connectRelay}. */
export interface ConnectOptions {
  /** Time allowed for connecting and authenticating, and default time for `send`. */
  timeoutMs?: number;
  /** Largest frame this client will send (the relay's limit). */
  maxFrameBytes?: number;
  /** Receives one line per frame sent/received and per state change (for --verbose). */
  log?: (line: string) => void;
  /**
   * Most frames per second this client writes after authenticating (token bucket; 0 =
   * unpaced). Default {@linkcode DEFAULT_FRAMES_PER_SECOND}, under a relay's default limits,
   * so a burst of messages is paced instead of refused.
   */
  framesPerSecond?: number;
  /** Burst allowed by the pacing bucket (default {@linkcode DEFAULT_FRAME_BURST}). */
  frameBurst?: number;
}

/** Default pacing of outgoing frames, per second. */
export const DEFAULT_FRAMES_PER_SECOND = 40;
/** Default burst of outgoing frames. */
export const DEFAULT_FRAME_BURST = 40;

/** Words for the close codes the relay uses. */
export function describeCloseCode(code: number): string {
  switch (code) {
    case CLOSE_CODES.goingAway:
      return "relay going away";
    case CLOSE_CODES.unsupportedData:
      return "unsupported data";
    case CLOSE_CODES.policy:
      return "policy violation";
    case CLOSE_CODES.tooBig:
      return "frame too big";
    case CLOSE_CODES.internal:
      return "relay internal error";
    case CLOSE_CODES.tryAgainLater:
      return "slow consumer, try again later";
    case 1000:
      return "normal closure";
    case 1005:
      return "no status";
    case 1006:
    case 0:
      return "connection lost";
    default:
      return "closed";
  }
}

function describeClose(info: CloseInfo): string {
  const reason = info.reason ? `: ${info.reason}` : "";
  return `code ${info.code}, ${describeCloseCode(info.code)}${reason}`;
}

/** Shortens long frames (ciphertext) for the --verbose log; frames never hold secrets. */
function summarize(text: string): string {
  return text.length > 300 ? text.slice(0, 300) + `… (${text.length} chars)` : text;
}

/** Events in arrival order, handed to one reader at a time. */
class EventQueue {
  #items: RelayEvent[] = [];
  #waiters: Array<(e: RelayEvent | undefined) => void> = [];
  #ended = false;

  push(e: RelayEvent): void {
    if (this.#ended) return;
    const w = this.#waiters.shift();
    if (w) w(e);
    else this.#items.push(e);
  }

  end(): void {
    this.#ended = true;
    for (const w of this.#waiters.splice(0)) w(undefined);
  }

  async next(timeoutMs?: number): Promise<RelayEvent | undefined | "timeout"> {
    const item = this.#items.shift();
    if (item) return item;
    if (this.#ended) return undefined;
    const { promise, resolve } = Promise.withResolvers<RelayEvent | undefined>();
    this.#waiters.push(resolve);
    if (timeoutMs === undefined) return await promise;
    try {
      return await deadline(promise, timeoutMs);
    } catch (e) {
      // Take the waiter back, or the next event would go to a reader that stopped waiting.
      this.#waiters = this.#waiters.filter((w) => w !== resolve);
      if (isTimeoutError(e)) return "timeout";
      throw e;
    }
  }
}

interface PendingSend {
  /** Settles with the relay's answer (or the close). */
  resolve: () => void;
  reject: (e: RelayError) => void;
  /** What callers of `send` get: the answer, or `timeout` at their deadline. */
  answer: Promise<void>;
  /** Written to the socket (not only queued), so the relay may answer it. */
  written: boolean;
}

/** A frame waiting for its turn: text, or the merged acks. */
type Outgoing = { text: string; sendId?: string } | { acks: true };

/** An authenticated connection to a relay. Create it with {@linkcode connectRelay}. */
export class RelaySession {
  /** The normalised relay URL (what was connected to and signed). */
  readonly relayUrl: string;
  /** The authenticated public key (base64). */
  readonly key: string;
  /** Resolves once the socket is closed, with how it closed. */
  readonly closed: Promise<CloseInfo>;

  readonly #conn: Connection;

  /** @internal use {@linkcode connectRelay} */
  constructor(conn: Connection, key: string) {
    this.#conn = conn;
    this.relayUrl = conn.relayUrl;
    this.key = key;
    this.closed = conn.closed;
  }

  /** True until the socket starts closing. */
  get isOpen(): boolean {
    return this.#conn.isOpen;
  }

  /**
   * Sends an envelope; resolves when the relay answers `accepted` with its id. Rejects with a
   * {@linkcode RelayError}: the relay's code (`mailbox_full`, `rate_limited`, ...), `timeout`,
   * `connection_closed` or `frame_too_large`.
   */
  send(envelope: Envelope, opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.#conn.sendEnvelope(envelope, opts.timeoutMs);
  }

  /**
   * Acknowledges stored envelope ids. Acks waiting behind other frames are merged, at most
   * MAX_ACK_IDS per frame. Throws `connection_closed` once the socket is closed.
   */
  ack(ids: string[]): void {
    this.#conn.ack(ids);
  }

  /**
   * The next pushed event; `undefined` once the socket is closed and every event was consumed;
   * "timeout" when `timeoutMs` passed first.
   */
  nextEvent(timeoutMs?: number): Promise<RelayEvent | undefined | "timeout"> {
    return this.#conn.events.next(timeoutMs);
  }

  /** Iterates over pushed events until the socket closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<RelayEvent> {
    while (true) {
      const e = await this.#conn.events.next();
      if (e === undefined || e === "timeout") return;
      yield e;
    }
  }

  /**
   * Closes the socket (normal closure) once queued frames are written (at most a few seconds),
   * and waits until it is closed. Safe to call twice.
   */
  close(): Promise<CloseInfo> {
    return this.#conn.close(5000);
  }
}

/** Internal: the socket and its frame dispatch, before and after authentication. */
class Connection {
  readonly relayUrl: string;
  readonly events = new EventQueue();
  readonly closed: Promise<CloseInfo>;
  readonly #ws: WebSocket;
  readonly #log: (line: string) => void;
  readonly #timeoutMs: number;
  readonly #maxFrameBytes: number;
  readonly #pending = new Map<string, PendingSend>();
  readonly #pace: TokenBucket;
  readonly #stopWriting = new AbortController();
  #queue: Outgoing[] = [];
  /** Ids acked but not written yet; one `{acks}` item in the queue writes them. */
  #acks: string[] = [];
  #writing = false;
  #drainWaiters: Array<() => void> = [];
  #opened: Promise<void>;
  #byClient = false;
  #closeInfo: CloseInfo | undefined;
  #connectError = "";
  /** Frames before authentication completes go to this waiter instead of the event queue. */
  #preAuth: Array<ServerFrame | RelayError> = [];
  #preAuthWaiter: ((f: ServerFrame | RelayError) => void) | undefined;
  #authenticated = false;

  constructor(relayUrl: string, opts: ConnectOptions) {
    this.relayUrl = relayUrl;
    this.#log = opts.log ?? (() => {});
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#pace = new TokenBucket({
      ratePerSecond: opts.framesPerSecond ?? DEFAULT_FRAMES_PER_SECOND,
      burst: Math.max(1, opts.frameBurst ?? DEFAULT_FRAME_BURST),
    });
    this.#ws = new WebSocket(relayUrl);
    const opened = Promise.withResolvers<void>();
    this.#opened = opened.promise;
    this.#opened.catch(() => {}); // observed in open()
    const closed = Promise.withResolvers<CloseInfo>();
    this.closed = closed.promise;
    this.#ws.onopen = () => {
      this.#log(`connected to ${relayUrl}`);
      opened.resolve();
    };
    this.#ws.onerror = (ev) => {
      const msg = ev instanceof ErrorEvent ? ev.message : "";
      if (msg) this.#connectError = msg;
    };
    this.#ws.onmessage = (ev) => this.#onMessage(ev);
    this.#ws.onclose = (ev) => {
      const info: CloseInfo = { code: ev.code, reason: ev.reason, byClient: this.#byClient };
      this.#closeInfo = info;
      this.#log(`socket closed (${describeClose(info)})`);
      opened.reject(new Error(this.#connectError || "connection failed"));
      const message = `connection to relay ${relayUrl} closed (${describeClose(info)})`;
      for (const [id, p] of this.#pending) {
        p.reject(new RelayError("connection_closed", message, { id }));
      }
      this.#pending.clear();
      this.#queue = [];
      this.#acks = [];
      this.#stopWriting.abort();
      for (const w of this.#drainWaiters.splice(0)) w();
      this.#pushPreAuth(new RelayError("connection_closed", message));
      this.events.end();
      closed.resolve(info);
    };
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN && !this.#byClient;
  }

  /** Waits for the socket to open; on failure, finds out why in words a person understands. */
  async open(timeoutMs: number): Promise<void> {
    try {
      await deadline(this.#opened, timeoutMs);
    } catch (e) {
      if (isTimeoutError(e)) {
        throw new RelayError(
          "timeout",
          `cannot reach relay ${this.relayUrl}: no answer within ${timeoutMs / 1000} s`,
        );
      }
      const why = await diagnoseConnectFailure(this.relayUrl, this.#connectError);
      throw new RelayError("unreachable", `cannot reach relay ${this.relayUrl}: ${why}`);
    }
  }

  #pushPreAuth(f: ServerFrame | RelayError): void {
    if (this.#authenticated) return;
    const w = this.#preAuthWaiter;
    if (w) {
      this.#preAuthWaiter = undefined;
      w(f);
    } else this.#preAuth.push(f);
  }

  /** Next frame before authentication completes (or the close error), with a timeout. */
  async nextPreAuth(timeoutMs: number, waitingFor: string): Promise<ServerFrame> {
    const queued = this.#preAuth.shift();
    const { promise, resolve } = Promise.withResolvers<ServerFrame | RelayError>();
    if (queued) resolve(queued);
    else if (this.#closeInfo) {
      resolve(
        new RelayError(
          "connection_closed",
          `relay closed the connection (${describeClose(this.#closeInfo)})`,
        ),
      );
    } else this.#preAuthWaiter = resolve;
    let f: ServerFrame | RelayError;
    try {
      f = await deadline(promise, timeoutMs);
    } catch {
      this.#preAuthWaiter = undefined;
      throw new RelayError(
        "timeout",
        `relay ${this.relayUrl} did not send ${waitingFor} within ${timeoutMs / 1000} s`,
      );
    }
    if (f instanceof RelayError) throw f;
    return f;
  }

  markAuthenticated(): void {
    this.#authenticated = true;
    this.#preAuth = [];
  }

  #onMessage(ev: MessageEvent): void {
    if (typeof ev.data !== "string") {
      this.#log("received a binary frame; ignored");
      this.#protocolProblem({ code: "binary_frame", message: "relay sent a binary frame" });
      return;
    }
    this.#log(`< ${summarize(ev.data)}`);
    const p = parseServerFrame(ev.data);
    if (!p.ok) {
      if (p.code === "unknown_type") {
        // A frame type from a newer relay: ignore it, as the protocol intends.
        this.#log(`ignoring frame: ${p.message}`);
        return;
      }
      this.#protocolProblem({
        code: p.code,
        message: `relay sent an invalid frame: ${p.message}`,
        ...(p.id ? { id: p.id } : {}),
      });
      return;
    }
    const f = p.value;
    if (f.type === "ping") {
      this.sendFrame(
        f.nonce === undefined ? { v: 1, type: "pong" } : { v: 1, type: "pong", nonce: f.nonce },
      );
      return;
    }
    if (f.type === "pong") return;
    if (!this.#authenticated) {
      this.#pushPreAuth(f);
      // Frames after `ready` belong to the session even before connectRelay() resumes.
      if (f.type === "ready") this.#authenticated = true;
      return;
    }
    switch (f.type) {
      case "accepted": {
        const p = this.#pending.get(f.id);
        if (p) {
          this.#pending.delete(f.id);
          p.resolve();
        } else this.#log(`accepted for unknown id ${f.id}`);
        return;
      }
      case "error": {
        const retry = f.retry_after_ms !== undefined ? { retryAfterMs: f.retry_after_ms } : {};
        if (f.id !== undefined && this.#pending.has(f.id)) {
          const p = this.#pending.get(f.id)!;
          this.#pending.delete(f.id);
          p.reject(new RelayError(f.code, f.message, { id: f.id, fromRelay: true, ...retry }));
          return;
        }
        if (f.code === "rate_limited" && f.id === undefined) {
          // The relay refused a frame before reading it, so it cannot say which: every send on
          // the wire without an answer may be the one. They are refused here, to be sent again
          // under the same id (the relay stores an id once).
          this.#log(`rate limited (${f.message}); unanswered sends are refused to be sent again`);
          for (const [id, p] of this.#pending) {
            if (!p.written) continue;
            this.#pending.delete(id);
            p.reject(new RelayError(f.code, f.message, { id, fromRelay: true, ...retry }));
          }
          return;
        }
        this.events.push({ type: "error", code: f.code, message: f.message });
        return;
      }
      case "deliver":
        this.events.push({ type: "deliver", envelope: f.envelope });
        return;
      case "synced":
        this.events.push({ type: "synced", count: f.count });
        return;
      default:
        this.#log(`unexpected ${f.type} frame after authentication; ignored`);
    }
  }

  #protocolProblem(p: { code: ErrorCode; message: string; id?: string }): void {
    if (!this.#authenticated) {
      this.#pushPreAuth(new RelayError("protocol", p.message));
      return;
    }
    this.events.push({ type: "invalid", ...p });
  }

  /** Writes a frame now: only for the handshake, which must not wait behind the queue. */
  sendFrameNow(frame: ClientFrame): void {
    this.#assertOpen();
    this.#log(
      `> ${
        frame.type === "auth" ? JSON.stringify({ ...frame, signature: "…" }) : JSON.stringify(frame)
      }`,
    );
    this.#ws.send(JSON.stringify(frame));
  }

  #assertOpen(id?: string): void {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      throw new RelayError(
        "connection_closed",
        `connection to relay ${this.relayUrl} is closed`,
        id === undefined ? {} : { id },
      );
    }
  }

  /** Queues a frame; frames are written in order, paced by the token bucket. */
  sendFrame(frame: ClientFrame): void {
    this.#assertOpen();
    this.#enqueue({ text: JSON.stringify(frame) });
  }

  /** Queues acks: ids waiting to be written go out together, at most MAX_ACK_IDS a frame. */
  ack(ids: string[]): void {
    this.#assertOpen();
    if (ids.length === 0) return;
    if (this.#acks.length === 0) this.#enqueue({ acks: true });
    this.#acks.push(...ids);
  }

  #enqueue(item: Outgoing): void {
    this.#queue.push(item);
    if (!this.#writing) void this.#write();
  }

  /** Writes queued frames in order, one token each; ends when the queue is empty or closed. */
  async #write(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && this.#ws.readyState === WebSocket.OPEN) {
        await this.#pace.wait(this.#stopWriting.signal);
        const item = this.#queue.shift()!;
        let text: string;
        if ("acks" in item) {
          text = JSON.stringify({ v: 1, type: "ack", ids: this.#acks.splice(0, MAX_ACK_IDS) });
          if (this.#acks.length > 0) this.#queue.push(item);
        } else {
          text = item.text;
          if (item.sendId !== undefined) {
            const p = this.#pending.get(item.sendId);
            if (!p) continue; // answered or given up meanwhile
            p.written = true;
          }
        }
        this.#log(`> ${summarize(text)}`);
        this.#ws.send(text);
      }
    } catch { /* closed while waiting for a token */ }
    this.#writing = false;
    for (const w of this.#drainWaiters.splice(0)) w();
  }

  /** Resolves once every queued frame is written (or the socket closed), at most `ms` later. */
  async flushed(ms: number): Promise<void> {
    if (!this.#writing || this.#closeInfo) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#drainWaiters.push(resolve);
    await deadline(promise, ms).catch(() => {});
    this.#drainWaiters = this.#drainWaiters.filter((w) => w !== resolve);
  }

  sendEnvelope(envelope: Envelope, timeoutMs: number = this.#timeoutMs): Promise<void> {
    const text = JSON.stringify({ v: 1, type: "send", envelope } satisfies ClientFrame);
    const size = new TextEncoder().encode(text).length;
    if (size > this.#maxFrameBytes) {
      return Promise.reject(
        new RelayError(
          "frame_too_large",
          `message too large: ${size} bytes on the wire, the relay accepts at most ${this.#maxFrameBytes}`,
          { id: envelope.id },
        ),
      );
    }
    const inFlight = this.#pending.get(envelope.id);
    if (inFlight) return inFlight.answer; // the same id is already on its way: one answer
    try {
      this.#assertOpen(envelope.id);
    } catch (e) {
      return Promise.reject(e);
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const answer = deadline(promise, timeoutMs).catch((e) => {
      if (!isTimeoutError(e)) throw e;
      if (this.#pending.get(envelope.id)?.answer === answer) this.#pending.delete(envelope.id);
      throw new RelayError(
        "timeout",
        `relay ${this.relayUrl} did not accept message ${envelope.id} within ${timeoutMs / 1000} s`,
        { id: envelope.id },
      );
    });
    this.#pending.set(envelope.id, { resolve, reject, answer, written: false });
    this.#enqueue({ text, sendId: envelope.id });
    return answer;
  }

  /**
   * Writes what is queued (acks!) for up to `flushMs`, then closes the socket with 1000 (also
   * after a protocol error: the WebSocket API throws on 1002 from a client, and the socket would
   * stay open).
   */
  async close(flushMs = 0): Promise<CloseInfo> {
    if (flushMs > 0 && !this.#byClient) await this.flushed(flushMs);
    if (!this.#closeInfo) {
      this.#byClient = true;
      const s = this.#ws.readyState;
      if (s === WebSocket.OPEN || s === WebSocket.CONNECTING) {
        try {
          this.#ws.close(1000);
        } catch { /* closing already */ }
      }
    }
    return this.closed;
  }
}

/** Turns a failed WebSocket connect into words: probes TCP to tell refused from DNS from handshake. */
async function diagnoseConnectFailure(relayUrl: string, wsError: string): Promise<string> {
  const u = new URL(relayUrl);
  const port = u.port ? Number(u.port) : u.protocol === "wss:" ? 443 : 80;
  const hostname = u.hostname.replace(/^\[|\]$/g, "");
  const connecting = Deno.connect({ hostname, port });
  try {
    (await deadline(connecting, 5000)).close();
  } catch (e) {
    connecting.then((c) => c.close(), () => {}); // answered after the deadline
    if (isTimeoutError(e)) return "connection timed out";
    if (e instanceof Deno.errors.ConnectionRefused) return "connection refused";
    const m = e instanceof Error ? e.message : String(e);
    if (/lookup|resolve|dns|name or service/i.test(m)) return `cannot resolve host ${hostname}`;
    return m;
  }
  const detail = wsError.replace(/^NetworkError:\s*/, "").replace(
    /^failed to connect to WebSocket:\s*/i,
    "",
  );
  return `the server at ${hostname}:${port} answered, but the WebSocket handshake failed` +
    (detail ? ` (${detail})` : "") + "; is the URL (scheme, path) right?";
}

/**
 * Connects to a relay and authenticates as `identity`: waits for the challenge, signs
 * `authMessage(normalizedUrl, challenge, key)`, waits for `ready`. Throws a {@linkcode RelayError}
 * (`bad_url`, `unreachable`, `timeout`, `auth_failed`, `connection_closed`, `protocol`, or the
 * relay's own code). The socket is closed on every failure.
 */
export async function connectRelay(
  url: string,
  identity: KeyPair,
  opts: ConnectOptions = {},
): Promise<RelaySession> {
  const relayUrl = normalizeRelayUrl(url);
  if (!relayUrl) {
    throw new RelayError(
      "bad_url",
      `not a relay URL: ${JSON.stringify(url)} (expected ws://host:port/path or wss://...)`,
    );
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const conn = new Connection(relayUrl, opts);
  try {
    await conn.open(timeoutMs);
    const first = await conn.nextPreAuth(timeoutMs, "a challenge");
    if (first.type === "error") {
      throw new RelayError(
        first.code,
        `relay refused the connection: ${first.code}: ${first.message}`,
      );
    }
    if (first.type !== "challenge") {
      throw new RelayError("protocol", `relay sent ${first.type} instead of a challenge`);
    }
    const key = toBase64(identity.publicKey);
    const signature = toBase64(
      await signAsync(authMessage(relayUrl, first.challenge, key), identity.secretKey),
    );
    conn.sendFrameNow({ v: 1, type: "auth", key, relay: relayUrl, signature });
    const answer = await conn.nextPreAuth(timeoutMs, "ready");
    if (answer.type === "error") {
      throw new RelayError(
        answer.code,
        `relay refused authentication: ${answer.code}: ${answer.message}`,
      );
    }
    if (answer.type !== "ready") {
      throw new RelayError("protocol", `relay sent ${answer.type} instead of ready`);
    }
    if (answer.key !== key) {
      throw new RelayError("protocol", `relay authenticated a different key (${answer.key})`);
    }
    conn.markAuthenticated();
    return new RelaySession(conn, key);
  } catch (e) {
    await conn.close();
    throw e;
  }
}
