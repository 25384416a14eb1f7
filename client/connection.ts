/**
 * The relay client: owns the WebSocket to a relay. It authenticates (challenge → signed auth →
 * ready), then offers a small async API: {@linkcode RelaySession.send} resolves when the relay
 * answers `accepted` for the envelope (or rejects with a {@linkcode RelayError} carrying the
 * relay's error code), deliveries arrive through {@linkcode RelaySession.nextEvent} or the async
 * iterator, {@linkcode RelaySession.ack} acknowledges stored ids, and `close()` always releases
 * the socket. Every received frame goes through `parseServerFrame` of @chat-p2p/protocol.
 *
 * @module
 */
import {
  authMessage,
  type ClientFrame,
  CLOSE_CODES,
  DEFAULT_MAX_FRAME_BYTES,
  type Envelope,
  type KeyPair,
  MAX_ACK_IDS,
  normalizeRelayUrl,
  parseServerFrame,
  type ServerFrame,
  signAsync,
  toBase64,
} from "@chat-p2p/protocol";

/** Default time to wait for the relay (connect, authenticate, accept). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/**
 * A failure talking to the relay. `code` is the relay's error code when the relay sent one
 * (`mailbox_full`, `auth_failed`, ...), or one of the client-side codes: `unreachable`,
 * `timeout`, `connection_closed`, `bad_url`, `protocol` (the relay sent something invalid),
 * `frame_too_large` (refused locally before sending).
 */
export class RelayError extends Error {
  /** Relay error code or client-side code. */
  readonly code: string;
  /** Envelope id the error is about, if any. */
  readonly id: string | undefined;
  /** Milliseconds the relay asked to wait before retrying (`rate_limited`). */
  readonly retryAfterMs: number | undefined;
  /** True when `code` and `message` come from an error frame the relay sent about an envelope. */
  readonly fromRelay: boolean;

  /** Creates a relay error. */
  constructor(
    code: string,
    message: string,
    opts: { id?: string; retryAfterMs?: number; fromRelay?: boolean } = {},
  ) {
    super(message);
    this.name = "RelayError";
    this.code = code;
    this.id = opts.id;
    this.retryAfterMs = opts.retryAfterMs;
    this.fromRelay = opts.fromRelay ?? false;
  }
}

/** Something the relay pushed to an authenticated session. */
export type RelayEvent =
  /** An envelope for me (pending or live). Ack its id once stored. */
  | { type: "deliver"; envelope: Envelope }
  /** The initial drain of pending envelopes is complete. */
  | { type: "synced"; count: number }
  /** A connection-level error frame (no envelope id). */
  | { type: "error"; code: string; message: string }
  /** A frame that failed validation; `id` names the envelope when it could be read. */
  | { type: "invalid"; code: string; message: string; id?: string };

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

  next(timeoutMs?: number): Promise<RelayEvent | undefined | "timeout"> {
    const item = this.#items.shift();
    if (item) return Promise.resolve(item);
    if (this.#ended) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter = (e: RelayEvent | undefined) => {
        if (timer !== undefined) clearTimeout(timer);
        resolve(e);
      };
      this.#waiters.push(waiter);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          const i = this.#waiters.indexOf(waiter);
          if (i >= 0) this.#waiters.splice(i, 1);
          resolve("timeout");
        }, timeoutMs);
      }
    });
  }
}

interface PendingSend {
  /** JSON text of the send frame (re-sent as is after `rate_limited`). */
  text: string;
  resolve: () => void;
  reject: (e: RelayError) => void;
  /** Rejects with `timeout` at the deadline. */
  timer: ReturnType<typeof setTimeout>;
  deadline: number;
  /** Waiting to be re-sent after `rate_limited`. */
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** In the outgoing queue, not yet written to the socket. */
  queued: boolean;
}

interface Outgoing {
  text: string;
  /** The pending send this frame belongs to, if any. */
  sendId?: string;
}

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

  /** Acknowledges stored envelope ids (split into frames of at most MAX_ACK_IDS). */
  ack(ids: string[]): void {
    for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
      this.#conn.sendFrame({ v: 1, type: "ack", ids: ids.slice(i, i + MAX_ACK_IDS) });
    }
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
    return this.#conn.close(1000, 5000);
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
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #refilledAt = Date.now();
  #queue: Outgoing[] = [];
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #drainWaiters: Array<() => void> = [];
  #opened: Promise<void>;
  #byClient = false;
  #closeInfo: CloseInfo | undefined;
  #connectError = "";
  /** Frames before authentication completes go to this waiter instead of the event queue. */
  #preAuth: Array<ServerFrame | RelayError> = [];
  #preAuthWaiter: ((f: ServerFrame | RelayError | undefined) => void) | undefined;
  #authenticated = false;

  constructor(relayUrl: string, opts: ConnectOptions) {
    this.relayUrl = relayUrl;
    this.#log = opts.log ?? (() => {});
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#rate = opts.framesPerSecond ?? DEFAULT_FRAMES_PER_SECOND;
    this.#burst = Math.max(1, opts.frameBurst ?? DEFAULT_FRAME_BURST);
    this.#tokens = this.#burst;
    this.#ws = new WebSocket(relayUrl);
    let resolveOpen!: () => void;
    let rejectOpen!: (e: unknown) => void;
    this.#opened = new Promise<void>((res, rej) => {
      resolveOpen = res;
      rejectOpen = rej;
    });
    this.#opened.catch(() => {}); // observed in open()
    let resolveClosed!: (c: CloseInfo) => void;
    this.closed = new Promise((res) => (resolveClosed = res));
    this.#ws.onopen = () => {
      this.#log(`connected to ${relayUrl}`);
      resolveOpen();
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
      rejectOpen(new Error(this.#connectError || "connection failed"));
      const err = new RelayError(
        "connection_closed",
        `connection to relay ${relayUrl} closed (${describeClose(info)})`,
      );
      for (const [id, p] of this.#pending) {
        clearTimeout(p.timer);
        clearTimeout(p.retryTimer);
        p.reject(new RelayError(err.code, err.message, { id }));
      }
      this.#pending.clear();
      this.#queue = [];
      clearTimeout(this.#drainTimer);
      this.#drainTimer = undefined;
      for (const w of this.#drainWaiters.splice(0)) w();
      this.#pushPreAuth(err);
      this.events.end();
      resolveClosed(info);
    };
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN && !this.#byClient;
  }

  /** Waits for the socket to open; on failure, finds out why in words a person understands. */
  async open(timeoutMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((
      res,
    ) => (timer = setTimeout(() => res("timeout"), timeoutMs)));
    try {
      const r = await Promise.race([this.#opened.then(() => "open" as const), timeout]);
      if (r === "timeout") {
        throw new RelayError(
          "timeout",
          `cannot reach relay ${this.relayUrl}: no answer within ${timeoutMs / 1000} s`,
        );
      }
    } catch (e) {
      if (e instanceof RelayError) throw e;
      const why = await diagnoseConnectFailure(this.relayUrl, this.#connectError);
      throw new RelayError("unreachable", `cannot reach relay ${this.relayUrl}: ${why}`);
    } finally {
      clearTimeout(timer);
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
  nextPreAuth(timeoutMs: number, waitingFor: string): Promise<ServerFrame> {
    const f = this.#preAuth.shift();
    if (f) return f instanceof RelayError ? Promise.reject(f) : Promise.resolve(f);
    if (this.#closeInfo) {
      return Promise.reject(
        new RelayError(
          "connection_closed",
          `relay closed the connection (${describeClose(this.#closeInfo)})`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#preAuthWaiter = undefined;
        reject(
          new RelayError(
            "timeout",
            `relay ${this.relayUrl} did not send ${waitingFor} within ${timeoutMs / 1000} s`,
          ),
        );
      }, timeoutMs);
      this.#preAuthWaiter = (x) => {
        clearTimeout(timer);
        if (x === undefined || x instanceof RelayError) {
          reject(x ?? new RelayError("connection_closed", "relay closed the connection"));
        } else resolve(x);
      };
    });
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
          clearTimeout(p.timer);
          clearTimeout(p.retryTimer);
          p.resolve();
        } else this.#log(`accepted for unknown id ${f.id}`);
        return;
      }
      case "error": {
        const p = f.id !== undefined ? this.#pending.get(f.id) : undefined;
        if (f.code === "rate_limited") {
          const wait = Math.max(50, f.retry_after_ms ?? 1000);
          if (p && f.id !== undefined) {
            this.#retryLater(f.id, wait, f.message);
            return;
          }
          if (f.id === undefined) {
            // The relay refused a frame before reading it, so it cannot say which. Every send
            // on the wire without an answer is sent again (the relay stores an id once).
            this.#log(`rate limited (${f.message}); re-sending unanswered messages`);
            for (const [id, q] of this.#pending) {
              if (!q.queued) this.#retryLater(id, wait, f.message);
            }
            return;
          }
        }
        if (p && f.id !== undefined) {
          this.#pending.delete(f.id);
          clearTimeout(p.timer);
          clearTimeout(p.retryTimer);
          p.reject(
            new RelayError(f.code, f.message, {
              id: f.id,
              fromRelay: true,
              ...(f.retry_after_ms !== undefined ? { retryAfterMs: f.retry_after_ms } : {}),
            }),
          );
        } else this.events.push({ type: "error", code: f.code, message: f.message });
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

  #protocolProblem(p: { code: string; message: string; id?: string }): void {
    if (!this.#authenticated) {
      this.#pushPreAuth(new RelayError("protocol", p.message));
      return;
    }
    this.events.push({ type: "invalid", ...p });
  }

  /** Re-sends a pending envelope after `wait` ms, unless its deadline comes first. */
  #retryLater(id: string, wait: number, why: string): void {
    const p = this.#pending.get(id);
    if (!p || p.queued || p.retryTimer !== undefined) return;
    if (Date.now() + wait >= p.deadline) {
      this.#pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new RelayError("rate_limited", why, { id, fromRelay: true, retryAfterMs: wait }));
      return;
    }
    p.retryTimer = setTimeout(() => {
      p.retryTimer = undefined;
      if (this.#pending.get(id) !== p) return;
      p.queued = true;
      this.#enqueue({ text: p.text, sendId: id });
    }, wait);
  }

  /** Writes a frame now: only for the handshake, which must not wait behind the queue. */
  sendFrameNow(frame: ClientFrame): void {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      throw new RelayError("connection_closed", `connection to relay ${this.relayUrl} is closed`);
    }
    this.#log(
      `> ${
        frame.type === "auth" ? JSON.stringify({ ...frame, signature: "…" }) : JSON.stringify(frame)
      }`,
    );
    this.#ws.send(JSON.stringify(frame));
  }

  /** Queues a frame; frames are written in order, paced by the token bucket. */
  sendFrame(frame: ClientFrame): void {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      throw new RelayError("connection_closed", `connection to relay ${this.relayUrl} is closed`);
    }
    this.#enqueue({ text: JSON.stringify(frame) });
  }

  #enqueue(item: Outgoing): void {
    this.#queue.push(item);
    this.#drain();
  }

  #drain(): void {
    if (this.#drainTimer !== undefined) return;
    const now = Date.now();
    if (this.#rate > 0) {
      this.#tokens = Math.min(
        this.#burst,
        this.#tokens + ((now - this.#refilledAt) / 1000) * this.#rate,
      );
    }
    this.#refilledAt = now;
    while (this.#queue.length > 0 && (this.#rate <= 0 || this.#tokens >= 1)) {
      if (this.#ws.readyState !== WebSocket.OPEN) {
        this.#queue = [];
        break;
      }
      const item = this.#queue.shift()!;
      if (item.sendId !== undefined) {
        const p = this.#pending.get(item.sendId);
        if (!p) continue; // answered or given up meanwhile
        p.queued = false;
      }
      this.#log(`> ${summarize(item.text)}`);
      this.#ws.send(item.text);
      if (this.#rate > 0) this.#tokens -= 1;
    }
    if (this.#queue.length > 0) {
      const waitMs = Math.max(1, Math.ceil(((1 - this.#tokens) / this.#rate) * 1000));
      this.#drainTimer = setTimeout(() => {
        this.#drainTimer = undefined;
        this.#drain();
      }, waitMs);
    } else {
      for (const w of this.#drainWaiters.splice(0)) w();
    }
  }

  /** Resolves once every queued frame is written (or the socket closed), at most `ms` later. */
  flushed(ms: number): Promise<void> {
    if (this.#queue.length === 0 || this.#closeInfo) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#drainWaiters = this.#drainWaiters.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#drainWaiters.push(done);
    });
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
    if (this.#pending.has(envelope.id)) {
      return Promise.reject(
        new RelayError("duplicate", `envelope ${envelope.id} is already in flight`),
      );
    }
    if (this.#ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(
        new RelayError("connection_closed", `connection to relay ${this.relayUrl} is closed`, {
          id: envelope.id,
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.#pending.get(envelope.id);
        this.#pending.delete(envelope.id);
        clearTimeout(p?.retryTimer);
        reject(
          new RelayError(
            "timeout",
            `relay ${this.relayUrl} did not accept message ${envelope.id} within ${
              timeoutMs / 1000
            } s`,
            { id: envelope.id },
          ),
        );
      }, timeoutMs);
      this.#pending.set(envelope.id, {
        text,
        resolve,
        reject,
        timer,
        deadline: Date.now() + timeoutMs,
        retryTimer: undefined,
        queued: true,
      });
      this.#enqueue({ text, sendId: envelope.id });
    });
  }

  /** Writes what is queued (acks!) for up to `flushMs`, then closes the socket. */
  async close(code = 1000, flushMs = 0): Promise<CloseInfo> {
    if (flushMs > 0 && !this.#byClient) await this.flushed(flushMs);
    if (!this.#closeInfo) {
      this.#byClient = true;
      const s = this.#ws.readyState;
      if (s === WebSocket.OPEN || s === WebSocket.CONNECTING) {
        try {
          this.#ws.close(code);
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
  let conn: Deno.Conn | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    conn = await Promise.race([
      Deno.connect({ hostname, port }),
      new Promise<never>((
        _,
        rej,
      ) => (timer = setTimeout(() => rej(new Deno.errors.TimedOut("timed out")), 5000))),
    ]);
  } catch (e) {
    if (e instanceof Deno.errors.ConnectionRefused) return "connection refused";
    if (e instanceof Deno.errors.TimedOut) return "connection timed out";
    const m = e instanceof Error ? e.message : String(e);
    if (/lookup|resolve|dns|name or service/i.test(m)) return `cannot resolve host ${hostname}`;
    return m;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed */ }
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
    await conn.close(e instanceof RelayError && e.code === "protocol" ? 1002 : 1000);
    throw e;
  }
}
