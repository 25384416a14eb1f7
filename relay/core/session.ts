/**
 * One WebSocket's conversation with the relay, protocol v2: `hello` with a challenge, then any
 * number of `open`s (each proves the auth key of one mailbox, bound to this relay's URL and the
 * challenge; the mailbox is drained, then delivered live), `send`s that need no authentication
 * (sealed sender: nothing says who sends), and `ack`s for opened mailboxes. It talks to the
 * socket only through {@linkcode Transport}, so it runs the same under Hono, in unit tests, or
 * anywhere else.
 *
 * @module
 */
import {
  type AckFrameV2,
  CHALLENGE_BYTES,
  CLOSE_CODES,
  deliverFrameText,
  type ErrorCode,
  errorFrameV2,
  fromBase64,
  isInboxOf,
  mailboxIdFor,
  normalizeRelayUrlV2,
  type OpenFrame,
  openMessage,
  parseClientFrameV2,
  randomBytes,
  type SendFrameV2,
  type ServerFrameV2,
  toBase64,
  verifyAsync,
} from "@chat-p2p/protocol";
import {
  BackendUnavailableError,
  errorMessage,
  MailboxFullError,
  UnknownMailboxError,
} from "../ports/errors.ts";
import type { Logger } from "../infra/log.ts";
import type { Metrics } from "../infra/metrics.ts";
import type { Recipient, Router } from "./router.ts";
import { delay, type RateSpec, TokenBucket } from "@chat-p2p/protocol/async";
import type { KeyedBuckets } from "./rate_limit.ts";

/** The socket, as the session sees it. */
export interface Transport {
  send(text: string): void;
  close(code: number, reason: string): void;
  /** Bytes queued but not yet written to the network. */
  bufferedAmount(): number;
}

/** What a session needs to know about the relay. */
export interface SessionOptions {
  maxFrameBytes: number;
  maxBufferedBytes: number;
  /** The canonical relay URLs an `open` may sign ({@linkcode relayUrlsFor}); nothing else. */
  relayUrls: ReadonlySet<string>;
  /** Mailboxes this socket may hold open; an `open` past it is refused (`too_many_mailboxes`). */
  maxMailboxes: number;
  /** Budget for every frame on this socket. */
  frameRate: RateSpec;
  /** Budgets for sends to each pair mailbox, shared by every session of this relay. */
  mailboxSends: KeyedBuckets;
  /** Budgets for request-inbox sends from each IP address, shared by every session. */
  inboxSends: KeyedBuckets;
}

/** Listen addresses that name no one host: the relay cannot know what clients call it. */
const WILDCARD_HOSTS = new Set(["", "0.0.0.0", "::", "[::]"]);

/**
 * The relay URLs an `open` may sign: the operator's `publicUrls` (canonical) when there are any;
 * otherwise only the URLs this relay can know to be its own, on the port it listens on: the
 * loopback names (`127.0.0.1`, `localhost`, `[::1]`) and the listen address when it names one
 * host. A URL taken from the request (the `Host` header) would let a relay replay an open made
 * for itself at another relay, so nothing is ever derived from the request.
 */
export function relayUrlsFor(
  opts: { publicUrls: readonly string[]; hostname: string; port: number },
): Set<string> {
  if (opts.publicUrls.length > 0) return new Set(opts.publicUrls);
  const hosts = ["127.0.0.1", "localhost", "[::1]"];
  if (!WILDCARD_HOSTS.has(opts.hostname)) {
    hosts.push(opts.hostname.includes(":") ? `[${opts.hostname}]` : opts.hostname);
  }
  const urls = new Set<string>();
  for (const h of hosts) {
    const url = normalizeRelayUrlV2(`ws://${h}:${opts.port}/ws`);
    if (url) urls.add(url);
  }
  return urls;
}

const PAGE = 500;
const utf8 = new TextEncoder();

function utf8Length(s: string): number {
  // Exact UTF-8 length without allocating for the common all-ASCII frame.
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return utf8.encode(s).length;
  }
  return s.length;
}

/**
 * One mailbox opened on this socket. Both fields exist from the start (no property added later,
 * which costs a property array per socket) and hold nothing per socket once the drain is done.
 */
interface Opened {
  /** Live announcements that arrive while a drain runs, in arrival order; unset when live. */
  held: Map<string, string> | undefined;
  /**
   * The drain in progress (a second open of the mailbox drains again after it); the shared
   * {@linkcode DRAINED} when none is.
   */
  drained: Promise<void>;
}

/** `Opened.drained` of a mailbox with no drain in progress. */
const DRAINED: Promise<void> = Promise.resolve();

/** A socket's protocol state machine. */
export class Session implements Recipient {
  #t: Transport;
  #router: Router;
  #opt: SessionOptions;
  #log: Logger;
  #metrics?: Metrics;
  #ip: string;
  #closed = false;
  #challenge = toBase64(randomBytes(CHALLENGE_BYTES));
  #opened = new Map<string, Opened>();
  /**
   * Mailboxes whose open is being checked (signature, registration), not yet in #opened; unset
   * while there are none (most sockets open one mailbox, then idle: no empty Set kept per socket).
   */
  #opening?: Set<string>;
  #frames: TokenBucket;

  /** `ip` keys the request-inbox send budget. */
  constructor(
    t: Transport,
    router: Router,
    opt: SessionOptions,
    log: Logger,
    metrics?: Metrics,
    ip = "unknown",
  ) {
    this.#frames = new TokenBucket(opt.frameRate);
    this.#t = t;
    this.#router = router;
    this.#opt = opt;
    this.#log = log;
    this.#metrics = metrics;
    this.#ip = ip;
  }

  /** True once this socket opened a mailbox (it reads); sender sockets open none. */
  get reading(): boolean {
    return this.#opened.size > 0;
  }

  /** True until the socket closed. */
  get open(): boolean {
    return !this.#closed;
  }

  /** Sends `hello` with this socket's challenge and the relay's frame limit. */
  start(): void {
    this.#send({
      v: 2,
      type: "hello",
      challenge: this.#challenge,
      max_frame_bytes: this.#opt.maxFrameBytes,
    });
  }

  /** Handles one incoming WebSocket message (text or binary). */
  async onMessage(data: unknown): Promise<void> {
    if (this.#closed) return;
    const budget = this.#frames.take();
    if (!budget.ok) {
      this.#metrics?.inc("rate_limited_total", { scope: "connection" });
      // Name the envelope when the refused frame was a send, so the client knows what to resend.
      const p = typeof data === "string" && data.length <= this.#opt.maxFrameBytes
        ? parseClientFrameV2(data)
        : undefined;
      const id = p?.ok && p.value.type === "send" ? p.value.envelope.id : undefined;
      this.#error(
        "rate_limited",
        `too many frames on this connection; retry after ${budget.retryAfterMs} ms`,
        { id, retry_after_ms: budget.retryAfterMs },
      );
      return;
    }
    if (typeof data !== "string") {
      const size = data instanceof ArrayBuffer
        ? data.byteLength
        : data instanceof Uint8Array
        ? data.byteLength
        : data instanceof Blob
        ? data.size
        : 0;
      this.#metrics?.inc("frames_in_total", { type: "binary" });
      if (size > this.#opt.maxFrameBytes) return this.#tooBig(size);
      this.#error("binary_frame", "binary frames are not part of the protocol; send JSON text");
      return;
    }
    // A UTF-16 code unit is at most 3 UTF-8 bytes: a frame that short cannot be over the limit,
    // so the usual frame is not scanned.
    if (data.length * 3 > this.#opt.maxFrameBytes) {
      const size = utf8Length(data);
      if (size > this.#opt.maxFrameBytes) return this.#tooBig(size);
    }
    const parsed = parseClientFrameV2(data);
    if (!parsed.ok) {
      this.#metrics?.inc("frames_in_total", { type: "invalid" });
      this.#error(parsed.code, parsed.message, { id: parsed.id });
      return;
    }
    const f = parsed.value;
    this.#metrics?.inc("frames_in_total", { type: f.type });
    switch (f.type) {
      case "open":
        return await this.#open(f);
      case "send":
        return await this.#sendEnvelope(f);
      case "ack":
        return await this.#ack(f);
      case "ping":
        this.#send(
          f.nonce === undefined ? { v: 2, type: "pong" } : { v: 2, type: "pong", nonce: f.nonce },
        );
        return;
      case "pong":
        return;
    }
  }

  /** The socket closed (by either side). */
  onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cleanup();
  }

  /** Closes the socket from the relay's side (shutdown: 1001). */
  shutdown(code: number = CLOSE_CODES.goingAway, reason = "relay shutting down"): void {
    this.#close(code, reason);
  }

  /** Announcements may have been skipped (Recipient): the client reopens and reads them. */
  lost(): void {
    this.#close(CLOSE_CODES.tryAgainLater, "relay resynchronising: reconnect");
  }

  /** A live announcement for a mailbox this socket opened (Recipient). */
  push(mailboxId: string, id: string, raw: string): void {
    if (this.#closed) return;
    const box = this.#opened.get(mailboxId);
    if (!box) return;
    if (box.held) {
      box.held.set(id, raw);
      return;
    }
    if (this.#t.bufferedAmount() > this.#opt.maxBufferedBytes) {
      this.#log.warn("slow consumer closed", { buffered: this.#t.bufferedAmount() });
      this.#metrics?.inc("slow_consumers_closed_total");
      this.#close(
        CLOSE_CODES.tryAgainLater,
        "slow consumer: reconnect to receive pending messages",
      );
      return;
    }
    this.#deliver(raw);
  }

  #deliver(raw: string): void {
    this.#metrics?.inc("frames_out_total", { type: "deliver" });
    this.#metrics?.inc("envelopes_delivered_total");
    this.#t.send(deliverFrameText(raw));
  }

  /**
   * Whether the `open` signature holds for one of this relay's URLs and this socket's challenge
   * (the frame does not say which URL it signed); refuses it (`auth_failed`) when not. `key` is
   * `f.key` decoded.
   */
  async #verifyOpen(f: OpenFrame, key: Uint8Array, mailbox: string): Promise<boolean> {
    const signature = fromBase64(f.signature)!;
    for (const url of this.#opt.relayUrls) {
      const signed = openMessage(url, this.#challenge, f.kind, f.key);
      if (await verifyAsync(signed, signature, key)) return true;
    }
    this.#metrics?.inc("auth_failures_total");
    this.#log.debug("open refused", { kind: f.kind }); // counted in auth_failures_total
    this.#error(
      "auth_failed",
      "the signature does not verify for this key and challenge at this relay's URLs (" +
        `${[...this.#opt.relayUrls].join(", ")}). Sign the canonical URL you connected to; if ` +
        "that URL reaches this relay (a proxy, another host name), its operator must list it in " +
        "RELAY_PUBLIC_URL",
      { mailbox },
    );
    return false;
  }

  async #open(f: OpenFrame): Promise<void> {
    // Self-certifying: the id is the hash of the key that signed, so nobody can open (or
    // register) an id without the key it names.
    const key = fromBase64(f.key)!; // the parser checked it is a key
    const mailbox = toBase64(mailboxIdFor(f.kind, key));
    const fresh = !this.#opened.has(mailbox) && !this.#opening?.has(mailbox);
    if (fresh && this.#opened.size + (this.#opening?.size ?? 0) >= this.#opt.maxMailboxes) {
      // Checked before the signature: a socket cannot make the relay hold (or verify) without end.
      // Counted in errors_total{code="too_many_mailboxes"}.
      return this.#error(
        "too_many_mailboxes",
        `this connection already has ${this.#opt.maxMailboxes} mailboxes open ` +
          "(RELAY_MAX_MAILBOXES_PER_SOCKET); open the rest on another connection",
        { mailbox },
      );
    }
    // Opens in flight count toward the cap too: frames are handled without waiting for the last.
    if (fresh) (this.#opening ??= new Set()).add(mailbox);
    try {
      if (!(await this.#verifyOpen(f, key, mailbox)) || this.#closed) return;
      try {
        await this.#router.open(mailbox, f.kind);
      } catch (err) {
        return this.#unreadable(err, mailbox);
      }
    } finally {
      if (fresh && this.#opening!.delete(mailbox) && this.#opening!.size === 0) {
        this.#opening = undefined;
      }
    }
    if (this.#closed) return;
    this.#metrics?.inc("mailboxes_opened_total", { kind: f.kind });
    this.#log.debug("mailbox opened", { kind: f.kind });
    const again = this.#opened.get(mailbox);
    if (again) {
      // Opened twice: drain again once the drain in progress is done.
      return await this.#queueDrain(mailbox, again);
    }
    const box: Opened = { held: undefined, drained: DRAINED };
    this.#opened.set(mailbox, box);
    this.#router.listen(mailbox, this);
    await this.#queueDrain(mailbox, box);
  }

  /** Drains `box` once the drain in progress (if any) is done. */
  async #queueDrain(mailbox: string, box: Opened): Promise<void> {
    const drained = box.drained = box.drained === DRAINED
      ? this.#drain(mailbox, box)
      : box.drained.then(() => this.#drain(mailbox, box));
    await drained;
    if (box.drained === drained) box.drained = DRAINED; // nothing chained after it
  }

  /**
   * `opened`, every pending envelope oldest first, `synced`; live announcements that arrive
   * meanwhile are held and sent after it, minus what it sent.
   */
  async #drain(mailbox: string, box: Opened): Promise<void> {
    if (this.#closed) return;
    const held = box.held = new Map();
    this.#send({ v: 2, type: "opened", mailbox });
    const sent = new Set<string>();
    let after = 0;
    try {
      for (;;) {
        const page = await this.#router.pending(mailbox, after, PAGE);
        for (const e of page) {
          if (this.#closed) return;
          this.#deliver(e.raw);
          sent.add(e.id);
        }
        if (page.length < PAGE) break;
        after = page[page.length - 1].seq;
        if (!(await this.#roomToSend())) return;
      }
    } catch (err) {
      return this.#unreadable(err, mailbox);
    }
    if (this.#closed) return;
    box.held = undefined;
    let count = sent.size;
    for (const [id, raw] of held) {
      if (sent.has(id)) continue;
      this.#deliver(raw);
      count++;
    }
    this.#send({ v: 2, type: "synced", mailbox, count });
  }

  /** A mailbox could not be opened or read: nothing is lost; the client reconnects later. */
  #unreadable(err: unknown, mailbox: string): void {
    // Backend outages are reported by the router, once per outage.
    if (!(err instanceof BackendUnavailableError)) {
      this.#log.error("mailbox read failed", { err: errorMessage(err) });
    }
    this.#error("unavailable", "cannot read this mailbox right now; reconnect later", {
      mailbox,
    });
    this.#close(CLOSE_CODES.tryAgainLater, "mailbox unavailable");
  }

  /** Waits until the socket's send buffer is below half the bound; false if the socket closed. */
  async #roomToSend(): Promise<boolean> {
    const deadline = Date.now() + 30_000;
    while (this.#t.bufferedAmount() > this.#opt.maxBufferedBytes / 2) {
      if (this.#closed) return false;
      if (Date.now() > deadline) {
        this.#close(
          CLOSE_CODES.tryAgainLater,
          "slow consumer: reconnect to receive pending messages",
        );
        return false;
      }
      await delay(5);
    }
    return !this.#closed;
  }

  async #sendEnvelope(f: SendFrameV2): Promise<void> {
    const e = f.envelope;
    const inbox = f.key !== undefined;
    if (inbox && !isInboxOf(e.to, f.key!)) {
      this.#error(
        "bad_frame",
        "Cannot parse send frame: field 'to' is not the request inbox of field 'key'",
        { id: e.id },
      );
      return;
    }
    // Request inboxes are open to anyone who knows a key: they are budgeted per address, and
    // have caps of their own, so flooding one never touches a pair mailbox.
    const budget = inbox ? this.#opt.inboxSends.take(this.#ip) : this.#opt.mailboxSends.take(e.to);
    if (!budget.ok) {
      this.#metrics?.inc("rate_limited_total", { scope: inbox ? "inbox" : "mailbox" });
      this.#error(
        "rate_limited",
        `too many messages ${
          inbox ? "to request inboxes from this address" : "to this mailbox"
        }; retry after ${budget.retryAfterMs} ms`,
        { id: e.id, retry_after_ms: budget.retryAfterMs },
      );
      return;
    }
    try {
      const r = await this.#router.accept(e, inbox);
      this.#metrics?.inc("envelopes_accepted_total", { result: r });
      this.#send({ v: 2, type: "accepted", id: e.id });
    } catch (err) {
      if (err instanceof UnknownMailboxError) {
        this.#error(
          "unknown_mailbox",
          "no mailbox with that id is registered here; send to the recipient's request inbox",
          { id: e.id },
        );
      } else if (err instanceof MailboxFullError) {
        this.#error("mailbox_full", `the mailbox is full (${err.message}); try later`, {
          id: e.id,
        });
      } else if (err instanceof BackendUnavailableError) {
        this.#error(
          "unavailable",
          "the relay cannot store messages right now; nothing was accepted, retry later",
          { id: e.id },
        );
      } else {
        this.#log.error("send failed", { err: errorMessage(err) });
        this.#error("internal", "the relay failed to store the message; nothing was accepted", {
          id: e.id,
        });
      }
    }
  }

  async #ack(f: AckFrameV2): Promise<void> {
    if (!this.#opened.has(f.mailbox)) {
      this.#error("not_open", "ack names a mailbox this socket has not opened", {
        mailbox: f.mailbox,
      });
      return;
    }
    try {
      const n = await this.#router.ack(f.mailbox, f.ids);
      this.#metrics?.inc("envelopes_acked_total", {}, n);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) {
        this.#log.error("ack failed", { err: errorMessage(err) });
      }
      this.#error(
        "unavailable",
        "the relay could not record the ack; it will deliver those ids again",
        { mailbox: f.mailbox },
      );
    }
  }

  #tooBig(size: number): void {
    this.#error(
      "frame_too_large",
      `frame of ${size} bytes is over the limit of ${this.#opt.maxFrameBytes}`,
    );
    this.#close(CLOSE_CODES.tooBig, "frame too large");
  }

  #error(
    code: ErrorCode,
    message: string,
    extra: { id?: string; mailbox?: string; retry_after_ms?: number } = {},
  ): void {
    this.#metrics?.inc("errors_total", { code });
    this.#log.debug("error frame", { code });
    const f = errorFrameV2(code, message);
    if (extra.id !== undefined) f.id = extra.id;
    if (extra.mailbox !== undefined) f.mailbox = extra.mailbox;
    if (extra.retry_after_ms !== undefined) f.retry_after_ms = extra.retry_after_ms;
    this.#send(f);
  }

  #send(f: ServerFrameV2): void {
    if (this.#closed) return;
    this.#metrics?.inc("frames_out_total", { type: f.type });
    try {
      this.#t.send(JSON.stringify(f));
    } catch {
      this.onClose();
    }
  }

  #close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#cleanup();
    try {
      this.#t.close(code, reason);
    } catch { /* already closed */ }
  }

  #cleanup(): void {
    for (const mailbox of this.#opened.keys()) this.#router.unlisten(mailbox, this);
  }
}
