/**
 * {@linkcode ChatClient}: the client library in one object, for a bot or a UI. It owns a
 * profile's store, a {@linkcode ReconnectingRelay}, the {@linkcode Outbox} and the
 * {@linkcode Inbox}: `send` returns a message id at once and the outbox takes it from there
 * (history first, then the relay, again after every reconnect, until accepted or refused for
 * good); deliveries are stored, then acked (automatically, or by the caller in manual mode),
 * and their senders get receipts. Everything that happens is an event.
 *
 * @module
 */
import {
  decodePublicKey,
  DEFAULT_MAX_FRAME_BYTES,
  type KeyPair,
  toBase64,
} from "@chat-p2p/protocol";
import { type BackoffOptions, deadline } from "@chat-p2p/protocol/async";
import {
  type ConnectOptions,
  DEFAULT_TIMEOUT_MS,
  type RelayEvent,
  type RelaySession,
} from "./connection.ts";
import { emit } from "./_emit.ts";
import { ClientError, type ClientErrorCode, RelayError } from "./errors.ts";
import { checkMessage, type MessageRefusal } from "./limits.ts";
import { Inbox, type InboxOutcome, type IncomingMessage, ReceiptBatch } from "./inbox.ts";
import { Outbox, type OutboxEvent, type QueuedMessage, type SendOutcome } from "./outbox.ts";
import { type ConnectionEvent, type ConnectionState, ReconnectingRelay } from "./reconnecting.ts";
import { type Sealer, v1Sealer } from "./sealing.ts";
import { openStore, type ProfileStore } from "./store/profile_store.ts";

/** Everything a {@linkcode ChatClient} reports. */
export type ChatEvent =
  /** The relay connection changed state (see {@linkcode ConnectionState}). */
  | ConnectionEvent
  /** Everything that waited at the relay when this connection came up is received (and stored). */
  | { type: "synced"; count: number }
  /**
   * A message, stored in history. `duplicate`: it was already there (delivered again because an
   * ack did not reach the relay). In manual-ack mode, ack its id once it is handled.
   */
  | { type: "message"; message: IncomingMessage; duplicate: boolean }
  /** A receipt: these messages I sent to `from` are now delivered (✓✓). */
  | {
    type: "delivered";
    from: string;
    contact: string | null;
    messages: Array<{ id: string; text: string }>;
  }
  /** An envelope that did not open with the key it claims, or that this client cannot read. */
  | { type: "rejected"; id: string; from: string; fingerprint: string; reason: string }
  /** Outgoing messages: accepted by the relay, refused for now (`retry`), or `failed`. */
  | OutboxEvent
  /** An error frame from the relay that is about no message, or a frame that was not valid. */
  | { type: "relay_error"; code: string; message: string }
  /**
   * Something this client could not do: `store` a delivery (it is not acked and comes again),
   * `record` an outcome in history, send a `receipt`.
   */
  | { type: "error"; during: "store" | "record" | "receipt"; error: ClientError };

/** The `type`s of {@linkcode ChatEvent}. */
export type ChatEventType = ChatEvent["type"];

/** Options for {@linkcode ChatClient}. */
export interface ChatClientOptions {
  /**
   * `auto` (default): a message is acked as soon as it is stored and its event is out.
   * `manual`: the caller acks with {@linkcode ChatClient.ack} once it has handled the message;
   * until then the relay keeps it and delivers it again after a reconnect (`duplicate: true`).
   */
  ackMode?: "auto" | "manual";
  /**
   * Handle deliveries (default true). False leaves them at the relay, untouched, for another
   * client of the same profile (the `send` command).
   */
  receive?: boolean;
  /** Time for connecting and authenticating, and for each send attempt (default 10 s). */
  timeoutMs?: number;
  /**
   * Give up (state `closed`) once no connection was up for this long; 0 = after the first failed
   * attempt. Default: never.
   */
  giveUpAfterMs?: number;
  /** Spacing of reconnect attempts. */
  backoff?: BackoffOptions;
  /** Largest frame the relay accepts (default 64 KiB). */
  maxFrameBytes?: number;
  /** Pacing of outgoing frames (see {@linkcode ConnectOptions}). */
  framesPerSecond?: number;
  /** Burst of the pacing. */
  frameBurst?: number;
  /** One line per frame and state change (a `--verbose` log). */
  log?: (line: string) => void;
  /** The clock. */
  now?: () => Date;
  /** How envelopes are sealed and opened (default: protocol v1 with the identity). */
  sealer?: Sealer;
  /** How one connection is made (tests). */
  connect?: (url: string, identity: KeyPair, opts: ConnectOptions) => Promise<RelaySession>;
}

/** Options for {@linkcode ChatClient.open}. */
export interface OpenOptions extends ChatClientOptions {
  /** Profile name (default "default"): the files are in `<home>/.chat-<profile>/`. */
  profile?: string;
  /** Home directory (default `$HOME`). */
  home?: string;
  /** Passphrase of a protected identity. */
  passphrase?: string;
  /** Receives the store's warnings (loose permissions, unreadable lines). */
  warn?: (message: string) => void;
}

/** A listener for events of type `T` ("*": all of them). */
export type ChatListener<T extends ChatEventType | "*"> = (
  event: T extends "*" ? ChatEvent : Extract<ChatEvent, { type: T }>,
) => void;

const REFUSAL_CODES = {
  empty: "empty_message",
  too_long: "message_too_long",
  too_large: "message_too_large",
} as const satisfies Record<MessageRefusal["code"], ClientErrorCode>;

/** Manual-ack ids remembered to ack copies the relay delivers again. */
const REMEMBERED_ACKS = 10_000;

function asClientError(e: unknown): ClientError {
  return e instanceof ClientError
    ? e
    : new ClientError("io", e instanceof Error ? e.message : String(e), { cause: e });
}

/**
 * One profile talking through one relay.
 *
 * @example A bot that answers every message
 * ```ts ignore
 * import { ChatClient } from "@chat-p2p/client";
 *
 * const client = await ChatClient.open({ profile: "bot" });
 * client.on("message", ({ message, duplicate }) => {
 *   if (!duplicate) client.send(message.from, `you said: ${message.text}`);
 * });
 * await client.connect("ws://127.0.0.1:8080/ws");
 * ```
 *
 * @example Manual acks: a message is acked only once it is handled
 * ```ts ignore
 * import { ChatClient } from "@chat-p2p/client";
 *
 * const client = await ChatClient.open({ profile: "worker", ackMode: "manual" });
 * await client.connect("ws://127.0.0.1:8080/ws");
 * for await (const e of client.events()) {
 *   if (e.type !== "message") continue;
 *   await handle(e.message.text); // if this throws, the relay delivers it again later
 *   client.ack(e.message.id);
 * }
 * ```
 */
export class ChatClient {
  /** The profile's files. */
  readonly store: ProfileStore;
  /** My base64 public key (my address). */
  readonly key: string;
  readonly #identity: KeyPair;
  readonly #opts: ChatClientOptions;
  readonly #timeoutMs: number;
  readonly #now: () => Date;
  readonly #sealer: Sealer;
  readonly #outbox: Outbox;
  readonly #inbox: Inbox;
  readonly #receipts: ReceiptBatch;
  readonly #listeners = new Set<(e: ChatEvent) => void>();
  /** Delivered messages not acked yet, and their senders (for the receipt). */
  readonly #unacked = new Map<string, string>();
  /**
   * Ids the caller acked (manual mode), newest last, at most {@linkcode REMEMBERED_ACKS}: a copy
   * delivered again is acked without an event.
   */
  readonly #ackedByCaller = new Set<string>();
  readonly #resumed = new Set<string>();
  #relay: ReconnectingRelay | undefined;
  /** Settles after the last delivery handed to the inbox is handled. */
  #lastReceive: Promise<void> = Promise.resolve();
  /** The current connection has received its backlog (receipts may go out). */
  #synced = false;
  #receiptsSending: Promise<void> | undefined;
  /** Set by the first `close()`: deliveries from then on are left at the relay. */
  #closing: Promise<void> | undefined;
  #closed = false;

  /**
   * Opens the profile `opts.profile` under `opts.home` (default `$HOME`) and loads its
   * identity.
   */
  static async open(opts: OpenOptions = {}): Promise<ChatClient> {
    const env = (name: string) => name === "HOME" ? opts.home ?? Deno.env.get("HOME") : undefined;
    const store = openStore(env, opts.profile ?? "default", opts.warn ?? (() => {}));
    return new ChatClient(store, await store.loadIdentity(opts.passphrase), opts);
  }

  /** A client for `store`'s profile, whose key pair is `identity`. Not connected yet. */
  constructor(store: ProfileStore, identity: KeyPair, opts: ChatClientOptions = {}) {
    this.store = store;
    this.key = toBase64(identity.publicKey);
    this.#identity = identity;
    this.#opts = opts;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#now = opts.now ?? (() => new Date());
    this.#sealer = opts.sealer ?? v1Sealer(identity);
    this.#inbox = new Inbox({ store, sealer: this.#sealer, now: this.#now });
    this.#receipts = new ReceiptBatch(this.#sealer, this.#now);
    this.#outbox = new Outbox({
      store,
      sealer: this.#sealer,
      now: this.#now,
      transport: {
        isConnected: () => this.state === "connected",
        send: (envelope) => this.#send(envelope),
      },
      onEvent: (e) => this.#emit(e),
      onError: (e) => this.#emit({ type: "error", during: "record", error: asClientError(e) }),
    });
  }

  /** The relay connection's state ("disconnected" before {@linkcode ChatClient.connect}). */
  get state(): ConnectionState {
    return this.#relay?.state ?? "disconnected";
  }

  /**
   * Connects to the relay at `url` and keeps the connection up (reconnecting with backoff).
   * Resolves once connected; rejects with a {@linkcode RelayError} if it gives up first (see
   * `giveUpAfterMs`; `auth_failed` and `bad_url` at once). Call it once.
   */
  connect(url: string): Promise<void> {
    if (this.#relay) {
      return Promise.reject(
        new ClientError("protocol", "this client is already connected to a relay"),
      );
    }
    const relay = new ReconnectingRelay(url, this.#identity, {
      timeoutMs: this.#timeoutMs,
      ...pick(this.#opts, [
        "maxFrameBytes",
        "framesPerSecond",
        "frameBurst",
        "log",
        "backoff",
        "giveUpAfterMs",
        "connect",
      ]),
    });
    this.#relay = relay;
    relay.on((e) => this.#onRelayEvent(e));
    relay.start();
    return relay.connected();
  }

  /**
   * Sends `text` to `to` (a contact name, a base64 key, or a fingerprint of a known key) and
   * returns the message id. The message is in history ("sending") when this returns; the outbox
   * sends it, now or once connected, and reports `accepted`, `retry` or `failed` events. Earlier
   * messages to the same peer still queued in history go first. Throws `unknown_contact`;
   * `empty_message`, `message_too_long` or `message_too_large` for a text that
   * {@linkcode checkMessage} refuses; `frame_too_large` for one too large for this relay's frames
   * (nothing is written then).
   */
  send(to: string, text: string): string {
    this.#assertOpen();
    const refused = checkMessage(text);
    if (refused) throw new ClientError(REFUSAL_CODES[refused.code], refused.message);
    const peer = this.#peerKey(to);
    this.resume(peer);
    return this.#outbox.enqueue(peer, text, this.#opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)
      .id;
  }

  /**
   * Queues the messages to `to` that history still holds as "sending" (an earlier run ended
   * before the relay took them), once per peer; returns those it added.
   * {@linkcode ChatClient.send} does this by itself; call it to send them without a new message.
   */
  resume(to: string): QueuedMessage[] {
    this.#assertOpen();
    const peer = this.#peerKey(to);
    if (this.#resumed.has(peer)) return [];
    this.#resumed.add(peer);
    return this.#outbox.resume(peer);
  }

  /** Puts failed messages to `to` (all, or the one with `id`) back in the queue; returns them. */
  resend(to: string, id?: string): QueuedMessage[] {
    this.#assertOpen();
    const peer = this.#peerKey(to);
    this.resume(peer);
    return this.#outbox.requeue(peer, id);
  }

  /** Messages queued (to `to`, or to anyone), oldest first, with the last error of each. */
  queued(to?: string): QueuedMessage[] {
    return this.#outbox.queued(to === undefined ? undefined : this.#peerKey(to));
  }

  /**
   * Resolves once queued message `id` is accepted or failed; it may stay queued for long, so
   * bound the wait (`deadline`). Rejects for an id that is not queued.
   */
  outcome(id: string): Promise<SendOutcome> {
    return this.#outbox.outcome(id);
  }

  /**
   * Acks delivered messages (manual mode; in auto mode the client does it). The relay then
   * forgets them and their senders get receipts. Without a connection the relay keeps them, and
   * a copy delivered again is acked with no new event.
   */
  ack(ids: string | string[]): void {
    const list = typeof ids === "string" ? [ids] : ids;
    for (const id of list) {
      const from = this.#unacked.get(id);
      if (from === undefined) continue;
      this.#unacked.delete(id);
      this.#receipts.add(from, id);
      if (this.#opts.ackMode === "manual") this.#rememberAck(id);
    }
    this.#relay?.ack(list);
    this.#flushReceipts();
  }

  /**
   * Calls `listener` for every event of `type` ("*": every event); returns a function that
   * removes it. Listeners run synchronously, in the order events happen.
   */
  on<T extends ChatEventType | "*">(type: T, listener: ChatListener<T>): () => void {
    const l = (e: ChatEvent) => {
      if (type === "*" || e.type === type) (listener as (e: ChatEvent) => void)(e);
    };
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  /**
   * Every event from now on, as an async iterator that ends with the connection's `closed` event
   * (the client is closed, or the connection gave up).
   */
  events(): AsyncIterableIterator<ChatEvent> {
    const feed: { queue: ChatEvent[]; wake?: () => void; done: boolean } = {
      queue: [],
      done: this.#closed,
    };
    const off = this.on("*", (e) => {
      feed.queue.push(e);
      if (e.type === "connection" && e.state === "closed") feed.done = true;
      feed.wake?.();
    });
    return this.#iterate(feed, off);
  }

  async *#iterate(
    feed: { queue: ChatEvent[]; wake?: () => void; done: boolean },
    off: () => void,
  ): AsyncIterableIterator<ChatEvent> {
    try {
      while (true) {
        const e = feed.queue.shift();
        if (e) {
          yield e;
          continue;
        }
        if (feed.done || this.#closed) return;
        await new Promise<void>((r) => (feed.wake = r));
        feed.wake = undefined;
      }
    } finally {
      off();
    }
  }

  /**
   * Stores what is still being received, acks it, sends the receipts that are due (waiting up to
   * `timeoutMs`, default the client's timeout), then closes the connection. Queued messages stay
   * in history as "sending" for the next run.
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.#closing ??= this.#close(opts.timeoutMs ?? this.#timeoutMs);
  }

  async #close(ms: number): Promise<void> {
    const wait = (p: Promise<unknown>) => deadline(p, ms).catch(() => {});
    await wait(this.#inbox.idle().then(() => this.#lastReceive));
    // The flush on its way, then one for the acks that came after it.
    if (this.#receiptsSending) await wait(this.#receiptsSending);
    this.#flushReceipts();
    if (this.#receiptsSending) await wait(this.#receiptsSending);
    this.#closed = true;
    this.#outbox.close();
    await this.#relay?.close();
    if (!this.#relay) this.#emit({ type: "connection", state: "closed", attempt: 0 });
  }

  #rememberAck(id: string): void {
    this.#ackedByCaller.delete(id);
    this.#ackedByCaller.add(id);
    if (this.#ackedByCaller.size > REMEMBERED_ACKS) {
      this.#ackedByCaller.delete(this.#ackedByCaller.values().next().value!);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClientError("closed", "this client is closed");
  }

  #peerKey(to: string): string {
    // A key is its own answer: no need to read contacts.json and hash it for a fingerprint.
    if (decodePublicKey(to)) return to;
    return this.store.resolvePeer(to, { allowUnknownKey: true }).key;
  }

  #emit(e: ChatEvent): void {
    emit(this.#listeners, e);
  }

  #send(envelope: Parameters<ReconnectingRelay["send"]>[0]): Promise<void> {
    const relay = this.#relay;
    if (!relay) {
      return Promise.reject(new RelayError("connection_closed", "not connected to a relay"));
    }
    return relay.send(envelope, { timeoutMs: this.#timeoutMs });
  }

  #onRelayEvent(e: ConnectionEvent | RelayEvent): void {
    switch (e.type) {
      case "connection":
        if (e.state !== "connected") this.#synced = false;
        this.#emit(e);
        if (e.state === "connected") this.#outbox.flush();
        return;
      case "deliver": {
        if (this.#opts.receive === false || this.#closing) return;
        this.#lastReceive = this.#inbox.receive(e.envelope).then(
          (o) => this.#handle(o),
          (err) => this.#emit({ type: "error", during: "store", error: asClientError(err) }),
        );
        return;
      }
      case "synced": {
        if (this.#opts.receive === false) return;
        const session = this.#relay?.session;
        this.#lastReceive.then(() => {
          if (this.#relay?.session !== session) return; // that connection is gone
          this.#synced = true;
          this.#emit({ type: "synced", count: e.count });
          this.#flushReceipts();
        });
        return;
      }
      case "error":
        this.#emit({ type: "relay_error", code: e.code, message: e.message });
        return;
      case "invalid":
        this.#emit({ type: "relay_error", code: e.code, message: e.message });
        if (e.id) this.#relay?.ack([e.id]); // it would come back forever
        return;
    }
  }

  #handle(o: InboxOutcome): void {
    switch (o.kind) {
      case "rejected":
        this.#emit({ type: "rejected", ...withoutKind(o) });
        this.#relay?.ack([o.id]);
        return;
      case "receipt":
        if (o.delivered.length > 0) {
          this.#emit({
            type: "delivered",
            from: o.from,
            contact: o.contact,
            messages: o.delivered,
          });
        }
        this.#relay?.ack([o.id]);
        return;
      case "message": {
        const { id, from } = o.message;
        this.#unacked.set(id, from);
        if (this.#ackedByCaller.has(id)) return this.ack(id); // handled already
        this.#emit({ type: "message", message: o.message, duplicate: o.duplicate });
        if (this.#opts.ackMode !== "manual") this.ack(id);
      }
    }
  }

  /** Sends the receipts that are due, one flush at a time, once the backlog is received. */
  #flushReceipts(): void {
    if (this.#receiptsSending || this.#receipts.isEmpty || !this.#synced) return;
    this.#receiptsSending = this.#receipts.flush((env) => this.#send(env)).then((failures) => {
      for (const f of failures) {
        this.#emit({ type: "error", during: "receipt", error: asClientError(f.error) });
      }
    }).finally(() => {
      this.#receiptsSending = undefined;
    });
  }
}

function withoutKind<T extends { kind: string }>(o: T): Omit<T, "kind"> {
  const { kind: _, ...rest } = o;
  return rest;
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
