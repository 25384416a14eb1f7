/**
 * One WebSocket's conversation with the relay: challenge, auth, then send / deliver / ack. It
 * talks to the socket only through {@linkcode Transport}, so it runs the same under Hono, in unit
 * tests, or anywhere else.
 *
 * @module
 */
import {
  type AckFrame,
  type AuthFrame,
  authMessage,
  CHALLENGE_BYTES,
  CLOSE_CODES,
  decodePublicKey,
  type ErrorCode,
  errorFrame,
  fingerprint,
  fromBase64,
  normalizeRelayUrl,
  parseClientFrame,
  randomBytes,
  type SendFrame,
  type ServerFrame,
  toBase64,
  verifyAsync,
} from "@chat-p2p/protocol";
import { BackendUnavailableError, errorMessage, MailboxFullError } from "../ports/errors.ts";
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

/** What a session needs to know about the relay and the request. */
export interface SessionOptions {
  maxFrameBytes: number;
  authTimeoutMs: number;
  maxBufferedBytes: number;
  /** The normalised relay URLs a client may sign ({@linkcode relayUrlsFor}); nothing else. */
  relayUrls: ReadonlySet<string>;
  /** Budget for every frame on this socket. */
  frameRate: RateSpec;
  /** Per-key send budgets, shared by every session of this relay. */
  sendBuckets: KeyedBuckets;
}

/** Listen addresses that name no one host: the relay cannot know what clients call it. */
const WILDCARD_HOSTS = new Set(["", "0.0.0.0", "::", "[::]"]);

/**
 * The relay URLs clients may sign in `auth`: the operator's `publicUrls` when there are any;
 * otherwise only the URLs this relay can know to be its own, on the port it listens on: the
 * loopback names (`127.0.0.1`, `localhost`, `[::1]`) and the listen address when it names one
 * host. A URL taken from the request (the `Host` header) would let a relay replay a login made
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
    const url = normalizeRelayUrl(`ws://${h}:${opts.port}/ws`);
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

type State = "challenged" | "verifying" | "draining" | "live" | "closed";

/** A socket's protocol state machine. */
export class Session implements Recipient {
  #t: Transport;
  #router: Router;
  #opt: SessionOptions;
  #log: Logger;
  #metrics?: Metrics;
  #state: State = "challenged";
  #challenge = toBase64(randomBytes(CHALLENGE_BYTES));
  #timer?: ReturnType<typeof setTimeout>;
  #key?: string;
  #mailboxId?: string;
  /** Live announcements that arrive while the initial drain runs, in arrival order. */
  #held?: Map<string, string>;
  #frames: TokenBucket;

  constructor(t: Transport, router: Router, opt: SessionOptions, log: Logger, metrics?: Metrics) {
    this.#frames = new TokenBucket(opt.frameRate);
    this.#t = t;
    this.#router = router;
    this.#opt = opt;
    this.#log = log;
    this.#metrics = metrics;
  }

  /** The authenticated key, once there is one. */
  get key(): string | undefined {
    return this.#key;
  }

  /** True until the socket closed. */
  get open(): boolean {
    return this.#state !== "closed";
  }

  /** Sends the challenge and starts the authentication clock. */
  start(): void {
    this.#send({
      v: 1,
      type: "challenge",
      challenge: this.#challenge,
      expires_in_ms: this.#opt.authTimeoutMs,
    });
    this.#timer = setTimeout(() => {
      if (this.#state !== "challenged") return;
      this.#error("auth_timeout", `not authenticated within ${this.#opt.authTimeoutMs} ms`);
      this.#close(CLOSE_CODES.policy, "auth timeout");
    }, this.#opt.authTimeoutMs);
  }

  /** Handles one incoming WebSocket message (text or binary). */
  async onMessage(data: unknown): Promise<void> {
    if (this.#state === "closed") return;
    const budget = this.#frames.take();
    if (!budget.ok) {
      this.#metrics?.inc("rate_limited_total", { scope: "connection" });
      // Name the envelope when the refused frame was a send, so the client knows what to resend.
      const p = typeof data === "string" && data.length <= this.#opt.maxFrameBytes
        ? parseClientFrame(data)
        : undefined;
      const id = p?.ok && p.value.type === "send" ? p.value.envelope.id : undefined;
      this.#error(
        "rate_limited",
        `too many frames on this connection; retry after ${budget.retryAfterMs} ms`,
        id,
        budget.retryAfterMs,
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
    const size = utf8Length(data);
    if (size > this.#opt.maxFrameBytes) return this.#tooBig(size);
    const parsed = parseClientFrame(data);
    if (!parsed.ok) {
      this.#metrics?.inc("frames_in_total", { type: "invalid" });
      this.#error(parsed.code, parsed.message, parsed.id);
      return;
    }
    const f = parsed.value;
    this.#metrics?.inc("frames_in_total", { type: f.type });
    switch (f.type) {
      case "auth":
        return await this.#auth(f);
      case "send":
        return await this.#sendEnvelope(f);
      case "ack":
        return await this.#ack(f);
      case "ping":
        this.#send(
          f.nonce === undefined ? { v: 1, type: "pong" } : { v: 1, type: "pong", nonce: f.nonce },
        );
        return;
      case "pong":
        return;
    }
  }

  /** The socket closed (by either side). */
  onClose(): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#cleanup();
  }

  /** Closes the socket from the relay's side (shutdown: 1001). */
  shutdown(code: number = CLOSE_CODES.goingAway, reason = "relay shutting down"): void {
    this.#close(code, reason);
  }

  /** A live announcement for this socket's mailbox (Recipient). */
  push(id: string, raw: string): void {
    if (this.#state === "draining") {
      this.#held?.set(id, raw);
      return;
    }
    if (this.#state !== "live") return;
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
    this.#t.send(`{"v":1,"type":"deliver","envelope":${raw}}`);
  }

  async #auth(f: AuthFrame): Promise<void> {
    if (this.#state !== "challenged") {
      this.#error("already_authenticated", "this socket is already authenticated");
      return;
    }
    // The set holds normalised URLs only, so a URL that is not normalised is refused too.
    const urlOk = this.#opt.relayUrls.has(f.relay);
    const key = decodePublicKey(f.key)!;
    const sig = fromBase64(f.signature)!;
    this.#state = "verifying"; // a second auth frame meanwhile gets already_authenticated
    const ok = urlOk && await verifyAsync(authMessage(f.relay, this.#challenge, f.key), sig, key);
    if (this.#state !== "verifying") return; // closed while verifying
    this.#state = "challenged";
    if (!ok) {
      this.#metrics?.inc("auth_failures_total");
      this.#log.info("auth failed", { reason: urlOk ? "signature" : "relay_url" });
      this.#error(
        "auth_failed",
        urlOk
          ? "the signature does not verify for this key and challenge"
          : `the signed relay URL '${f.relay}' is not this relay's: it accepts ${
            [...this.#opt.relayUrls].join(", ")
          }. Sign the normalised URL you connected to; if that URL reaches this relay (a proxy, ` +
            "another host name), its operator must list it in RELAY_PUBLIC_URL",
      );
      this.#close(CLOSE_CODES.policy, "auth failed");
      return;
    }
    clearTimeout(this.#timer);
    this.#key = f.key;
    this.#mailboxId = f.key; // v1: a key's mailbox id is the key itself
    this.#state = "draining";
    this.#held = new Map();
    this.#router.register(this.#mailboxId, this);
    this.#log.debug("authenticated", { fingerprint: fingerprint(key) });
    this.#send({ v: 1, type: "ready", key: f.key });
    await this.#drain();
  }

  async #drain(): Promise<void> {
    const mailboxId = this.#mailboxId!;
    const sent = new Set<string>();
    let after = 0;
    try {
      for (;;) {
        const page = await this.#router.pending(mailboxId, after, PAGE);
        for (const e of page) {
          if (this.#state !== "draining") return;
          this.#deliver(e.raw);
          sent.add(e.id);
        }
        if (page.length < PAGE) break;
        after = page[page.length - 1].seq;
        if (!(await this.#roomToSend())) return;
      }
    } catch (err) {
      // Backend outages are reported by the router, once per outage.
      if (!(err instanceof BackendUnavailableError)) {
        this.#log.error("drain failed", { err: errorMessage(err) });
      }
      this.#error("unavailable", "cannot read your mailbox right now; reconnect later");
      this.#close(CLOSE_CODES.tryAgainLater, "mailbox unavailable");
      return;
    }
    if (this.#state !== "draining") return;
    const held = this.#held!;
    this.#held = undefined;
    let count = sent.size;
    for (const [id, raw] of held) {
      if (sent.has(id)) continue;
      this.#deliver(raw);
      count++;
    }
    this.#state = "live";
    this.#send({ v: 1, type: "synced", count });
  }

  /** Waits until the socket's send buffer is below half the bound; false if the socket closed. */
  async #roomToSend(): Promise<boolean> {
    const deadline = Date.now() + 30_000;
    while (this.#t.bufferedAmount() > this.#opt.maxBufferedBytes / 2) {
      if (this.#state === "closed") return false;
      if (Date.now() > deadline) {
        this.#close(
          CLOSE_CODES.tryAgainLater,
          "slow consumer: reconnect to receive pending messages",
        );
        return false;
      }
      await delay(5);
    }
    return this.#state !== "closed";
  }

  async #sendEnvelope(f: SendFrame): Promise<void> {
    const e = f.envelope;
    if (this.#state === "challenged" || this.#state === "verifying") {
      this.#error("not_authenticated", "authenticate before sending", e.id);
      return;
    }
    if (e.from !== this.#key) {
      this.#metrics?.inc("spoof_attempts_total");
      this.#error(
        "spoofed_sender",
        "the envelope's 'from' is not the key authenticated on this socket",
        e.id,
      );
      return;
    }
    const budget = this.#opt.sendBuckets.take(this.#key!);
    if (!budget.ok) {
      this.#metrics?.inc("rate_limited_total", { scope: "key" });
      this.#error(
        "rate_limited",
        `too many messages from this key; retry after ${budget.retryAfterMs} ms`,
        e.id,
        budget.retryAfterMs,
      );
      return;
    }
    try {
      const r = await this.#router.accept(e);
      this.#metrics?.inc("envelopes_accepted_total", { result: r });
      this.#send({ v: 1, type: "accepted", id: e.id });
    } catch (err) {
      if (err instanceof MailboxFullError) {
        this.#error(
          "mailbox_full",
          `the recipient's mailbox is full (${err.message}); try later`,
          e.id,
        );
      } else if (err instanceof BackendUnavailableError) {
        this.#error(
          "unavailable",
          "the relay cannot store messages right now; nothing was accepted, retry later",
          e.id,
        );
      } else {
        this.#log.error("send failed", { err: errorMessage(err) });
        this.#error(
          "internal",
          "the relay failed to store the message; nothing was accepted",
          e.id,
        );
      }
    }
  }

  async #ack(f: AckFrame): Promise<void> {
    if (this.#state === "challenged" || this.#state === "verifying") {
      this.#error("not_authenticated", "authenticate before acknowledging");
      return;
    }
    try {
      const n = await this.#router.ack(this.#mailboxId!, f.ids);
      this.#metrics?.inc("envelopes_acked_total", {}, n);
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) {
        this.#log.error("ack failed", { err: errorMessage(err) });
      }
      this.#error(
        "unavailable",
        "the relay could not record the ack; it will deliver those ids again",
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

  #error(code: ErrorCode, message: string, id?: string, retryAfterMs?: number): void {
    this.#metrics?.inc("errors_total", { code });
    this.#log.debug("error frame", { code });
    this.#send(errorFrame(code, message, {
      ...(id === undefined ? {} : { id }),
      ...(retryAfterMs === undefined ? {} : { retry_after_ms: retryAfterMs }),
    }));
  }

  #send(f: ServerFrame): void {
    if (this.#state === "closed") return;
    this.#metrics?.inc("frames_out_total", { type: f.type });
    try {
      this.#t.send(JSON.stringify(f));
    } catch {
      this.onClose();
    }
  }

  #close(code: number, reason: string): void {
    if (this.#state === "closed") return;
    this.#state = "closed";
    this.#cleanup();
    try {
      this.#t.close(code, reason);
    } catch { /* already closed */ }
  }

  #cleanup(): void {
    clearTimeout(this.#timer);
    if (this.#mailboxId) this.#router.unregister(this.#mailboxId, this);
  }
}
