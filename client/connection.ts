/**
 * One connection to a relay (protocol v2): owns the WebSocket. It waits for the relay's `hello`
 * (its challenge), then offers a small async API: {@linkcode RelaySession.open} opens a mailbox
 * (an `open` frame signed by the mailbox's auth key, bound to the relay URL and the challenge),
 * {@linkcode RelaySession.send} resolves when the relay answers `accepted` for the envelope (or
 * rejects with a {@linkcode RelayError} carrying the relay's error code, once: retrying is the
 * outbox's business), deliveries arrive through {@linkcode RelaySession.nextEvent} or the async
 * iterator, {@linkcode RelaySession.ack} acknowledges stored ids of a mailbox, and `close()`
 * always releases the socket. A socket that sends needs no authentication and opens nothing
 * (sealed sender); the client reads on another one. Every received frame goes through
 * `parseServerFrameV2` of @chat-p2p/protocol. Frames are written in order, paced by a
 * {@linkcode TokenBucket} so a burst stays under the relay's frame limit; acks waiting for their
 * turn are merged, one frame per mailbox. {@linkcode ReconnectingRelay} (reconnecting.ts) builds
 * on it.
 *
 * @module
 */
import {
  type ClientFrameV2,
  CLOSE_CODES,
  type EnvelopeV2,
  type ErrorCode,
  type KeyPair,
  mailboxIdFor,
  type MailboxKind,
  MAX_ACK_IDS,
  MAX_FRAME_BYTES_V2,
  openFrame,
  parseRelayUrl,
  parseServerFrameV2,
  type ServerFrameV2,
  toBase64,
} from "@chat-p2p/protocol";
import { deadline, isTimeoutError, TokenBucket } from "@chat-p2p/protocol/async";
import { crashPoint } from "./_crash.ts";
import { RelayError } from "./errors.ts";

/** Default time to wait for the relay (connect, authenticate, accept). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Something the relay pushed to a session. */
export type RelayEvent =
  /** An envelope of a mailbox opened here (pending or live); its `to` says which. */
  | { type: "deliver"; envelope: EnvelopeV2 }
  /** The initial drain of that mailbox's pending envelopes is complete. */
  | { type: "synced"; mailbox: string; count: number }
  /** An error frame about no send and no open of this session (`mailbox`: an ack's). */
  | { type: "error"; code: ErrorCode; message: string; mailbox?: string }
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
  /** Time allowed for connecting (and each `open`), and default time for `send`. */
  timeoutMs?: number;
  /** Largest frame this client will send (the relay's limit; default 128 KiB). */
  maxFrameBytes?: number;
  /** Receives one line per frame sent/received and per state change (for --verbose). */
  log?: (line: string) => void;
  /**
   * Most frames per second this client writes (token bucket; 0 =
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

/** A frame waiting for its turn: text, or the merged acks of one mailbox. */
type Outgoing = { text: string; sendId?: string } | { acks: string };

/** A connection to a relay that has said hello. Create it with {@linkcode connectRelay}. */
export class RelaySession {
  /** The canonical relay URL (what was connected to, and what `open` signs). */
  readonly relayUrl: string;
  /** The relay's challenge for this socket (base64). */
  readonly challenge: string;
  /** Resolves once the socket is closed, with how it closed. */
  readonly closed: Promise<CloseInfo>;

  readonly #conn: Connection;
  /** Opens under way, by mailbox id. */
  readonly #opening = new Map<string, Promise<string>>();

  /** @internal use {@linkcode connectRelay} */
  constructor(conn: Connection, challenge: string) {
    this.#conn = conn;
    this.relayUrl = conn.relayUrl;
    this.challenge = challenge;
    this.closed = conn.closed;
  }

  /** Base64 ids of the mailboxes opened on this socket. */
  get opened(): ReadonlySet<string> {
    return this.#conn.opened;
  }

  /**
   * Opens a mailbox on this socket: `inbox` with the identity, `pair` with the mailbox's auth key
   * pair. Resolves with its id once the relay answers `opened` (its pending envelopes follow,
   * then `synced`); rejects with a {@linkcode RelayError} (`auth_failed`, ...). Opens of one
   * mailbox while one is under way share its answer (one `open` frame).
   */
  open(kind: MailboxKind, authKeyPair: KeyPair): Promise<string> {
    const id = toBase64(mailboxIdFor(kind, authKeyPair.publicKey));
    let opening = this.#opening.get(id);
    if (!opening) {
      opening = openFrame(this.relayUrl, this.challenge, kind, authKeyPair)
        .then((frame) => this.#conn.openMailbox(frame, id))
        .finally(() => this.#opening.delete(id));
      this.#opening.set(id, opening);
    }
    return opening;
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
  send(envelope: EnvelopeV2, opts: { key?: string; timeoutMs?: number } = {}): Promise<void> {
    return this.#conn.sendEnvelope(envelope, opts.key, opts.timeoutMs);
  }

  /**
   * Acknowledges stored envelope ids of a mailbox opened here (the relay answers nothing when it
   * worked). Acks waiting behind other frames are merged per mailbox, at most MAX_ACK_IDS per
   * frame. Throws `connection_closed` once the socket is closed.
   */
  ack(mailbox: string, ids: string[]): void {
    this.#conn.ack(mailbox, ids);
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

/** Internal: the socket and its frame dispatch, before and after `hello`. */
class Connection {
  readonly relayUrl: string;
  readonly events = new EventQueue();
  readonly closed: Promise<CloseInfo>;
  readonly opened: Set<string> = new Set();
  readonly #ws: WebSocket;
  readonly #log: (line: string) => void;
  readonly #timeoutMs: number;
  /** Ours, lowered to the relay's when its `hello` names one. */
  #maxFrameBytes: number;
  readonly #pending = new Map<string, PendingSend>();
  /** Opens waiting for `opened`, by mailbox id. */
  readonly #opening = new Map<string, { resolve: () => void; reject: (e: RelayError) => void }>();
  readonly #pace: TokenBucket;
  readonly #stopWriting = new AbortController();
  #queue: Outgoing[] = [];
  /** Ids acked but not written yet, per mailbox; one `{acks}` item in the queue writes them. */
  #acks = new Map<string, string[]>();
  #writing = false;
  #drainWaiters: Array<() => void> = [];
  #opened: Promise<void>;
  #byClient = false;
  #closeInfo: CloseInfo | undefined;
  #connectError = "";
  /** The `hello` (or why there is none) goes to this waiter instead of the event queue. */
  #hello: Promise<string>;
  #helloSettle!: { resolve: (c: string) => void; reject: (e: RelayError) => void };
  #greeted = false;

  constructor(relayUrl: string, opts: ConnectOptions) {
    this.relayUrl = relayUrl;
    this.#log = opts.log ?? (() => {});
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#maxFrameBytes = opts.maxFrameBytes ?? MAX_FRAME_BYTES_V2;
    this.#pace = new TokenBucket({
      ratePerSecond: opts.framesPerSecond ?? DEFAULT_FRAMES_PER_SECOND,
      burst: Math.max(1, opts.frameBurst ?? DEFAULT_FRAME_BURST),
    });
    const hello = Promise.withResolvers<string>();
    this.#hello = hello.promise;
    this.#hello.catch(() => {}); // observed in waitForHello()
    this.#helloSettle = hello;
    this.#ws = new WebSocket(relayUrl);
    const opened = Promise.withResolvers<void>();
    this.#opened = opened.promise;
    this.#opened.catch(() => {}); // observed in connected()
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
      for (const o of this.#opening.values()) {
        o.reject(new RelayError("connection_closed", message));
      }
      this.#opening.clear();
      this.#queue = [];
      this.#acks.clear();
      this.#stopWriting.abort();
      for (const w of this.#drainWaiters.splice(0)) w();
      hello.reject(
        new RelayError("connection_closed", `relay closed the connection (${describeClose(info)})`),
      );
      this.events.end();
      closed.resolve(info);
    };
  }

  get isOpen(): boolean {
    return this.#ws.readyState === WebSocket.OPEN && !this.#byClient;
  }

  /** Waits for the socket to open; on failure, finds out why in words a person understands. */
  async connected(timeoutMs: number): Promise<void> {
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

  /** The challenge of the relay's `hello`, or why it did not come. */
  async waitForHello(timeoutMs: number): Promise<string> {
    try {
      return await deadline(this.#hello, timeoutMs);
    } catch (e) {
      if (!isTimeoutError(e)) throw e;
      throw new RelayError(
        "timeout",
        `relay ${this.relayUrl} did not say hello within ${timeoutMs / 1000} s`,
      );
    }
  }

  #onMessage(ev: MessageEvent): void {
    if (typeof ev.data !== "string") {
      this.#log("received a binary frame; ignored");
      this.#protocolProblem({ code: "binary_frame", message: "relay sent a binary frame" });
      return;
    }
    this.#log(`< ${summarize(ev.data)}`);
    const p = parseServerFrameV2(ev.data);
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
        f.nonce === undefined ? { v: 2, type: "pong" } : { v: 2, type: "pong", nonce: f.nonce },
      );
      return;
    }
    if (f.type === "pong") return;
    if (!this.#greeted) {
      this.#greeted = true;
      if (f.type === "hello") {
        if (f.max_frame_bytes !== undefined) {
          this.#maxFrameBytes = Math.min(this.#maxFrameBytes, f.max_frame_bytes);
        }
        return this.#helloSettle.resolve(f.challenge);
      }
      this.#helloSettle.reject(
        f.type === "error"
          ? new RelayError(f.code, `relay refused the connection: ${f.code}: ${f.message}`)
          : new RelayError("protocol", `relay sent ${f.type} instead of hello`),
      );
      return;
    }
    this.#dispatch(f);
  }

  #dispatch(f: ServerFrameV2): void {
    switch (f.type) {
      case "opened": {
        const o = this.#opening.get(f.mailbox);
        this.opened.add(f.mailbox);
        if (o) {
          this.#opening.delete(f.mailbox);
          o.resolve();
        }
        return;
      }
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
        if (f.mailbox !== undefined && this.#opening.has(f.mailbox)) {
          const o = this.#opening.get(f.mailbox)!;
          this.#opening.delete(f.mailbox);
          o.reject(
            new RelayError(f.code, `relay refused to open a mailbox: ${f.code}: ${f.message}`, {
              fromRelay: true,
            }),
          );
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
        this.events.push({
          type: "error",
          code: f.code,
          message: f.message,
          ...(f.mailbox !== undefined ? { mailbox: f.mailbox } : {}),
        });
        return;
      }
      case "deliver":
        this.events.push({ type: "deliver", envelope: f.envelope });
        return;
      case "synced":
        this.events.push({ type: "synced", mailbox: f.mailbox, count: f.count });
        return;
      default:
        this.#log(`unexpected ${f.type} frame; ignored`);
    }
  }

  #protocolProblem(p: { code: ErrorCode; message: string; id?: string }): void {
    if (!this.#greeted) {
      this.#greeted = true;
      this.#helloSettle.reject(new RelayError("protocol", p.message));
      return;
    }
    this.events.push({ type: "invalid", ...p });
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
  sendFrame(frame: ClientFrameV2): void {
    this.#assertOpen();
    this.#enqueue({ text: JSON.stringify(frame) });
  }

  /** Sends an `open` and resolves once the relay answers `opened` for `mailbox`. */
  openMailbox(frame: ClientFrameV2, mailbox: string): Promise<string> {
    const { promise, resolve, reject } = Promise.withResolvers<string>();
    try {
      this.#assertOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    this.#opening.set(mailbox, { resolve: () => resolve(mailbox), reject });
    this.#enqueue({ text: JSON.stringify(frame) });
    return deadline(promise, this.#timeoutMs).catch((e) => {
      this.#opening.delete(mailbox);
      if (!isTimeoutError(e)) throw e;
      throw new RelayError(
        "timeout",
        `relay ${this.relayUrl} did not open a mailbox within ${this.#timeoutMs / 1000} s`,
      );
    });
  }

  /** Queues acks: ids of a mailbox waiting to be written go out together, MAX_ACK_IDS a frame. */
  ack(mailbox: string, ids: string[]): void {
    this.#assertOpen();
    if (ids.length === 0) return;
    const waiting = this.#acks.get(mailbox);
    if (waiting) waiting.push(...ids);
    else {
      this.#acks.set(mailbox, [...ids]);
      this.#enqueue({ acks: mailbox });
    }
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
          const ids = this.#acks.get(item.acks) ?? [];
          const part = ids.splice(0, MAX_ACK_IDS);
          if (ids.length > 0) this.#queue.push(item);
          else this.#acks.delete(item.acks);
          if (part.length === 0) continue;
          text = JSON.stringify({ v: 2, type: "ack", mailbox: item.acks, ids: part });
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
        if ("acks" in item) crashPoint("receive:acked");
        else if (item.sendId !== undefined) crashPoint("send:sent");
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

  sendEnvelope(
    envelope: EnvelopeV2,
    key: string | undefined,
    timeoutMs: number = this.#timeoutMs,
  ): Promise<void> {
    const frame: ClientFrameV2 = key === undefined
      ? { v: 2, type: "send", envelope }
      : { v: 2, type: "send", envelope, key };
    const text = JSON.stringify(frame);
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
 * Connects to a relay and waits for its `hello`. Throws a {@linkcode RelayError} (`bad_url`,
 * `unreachable`, `timeout`, `connection_closed`, `protocol`, or the relay's own code, e.g.
 * `unsupported_version` from a relay that speaks protocol 1). The socket is closed on every
 * failure.
 */
export async function connectRelay(url: string, opts: ConnectOptions = {}): Promise<RelaySession> {
  const parsed = parseRelayUrl(url);
  if (!parsed.ok) {
    throw new RelayError(
      "bad_url",
      `not a relay URL: ${JSON.stringify(url)} (${
        parsed.message.replace(/^Not a relay URL: /, "")
      })`,
    );
  }
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const conn = new Connection(parsed.value, opts);
  try {
    await conn.connected(timeoutMs);
    const challenge = await conn.waitForHello(timeoutMs);
    return new RelaySession(conn, challenge);
  } catch (e) {
    await conn.close();
    throw e;
  }
}
