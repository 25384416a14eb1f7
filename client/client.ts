/**
 * {@linkcode ChatClient}: the client library in one object, for a bot or a UI. It owns a
 * profile's store, a {@linkcode ReconnectingRelay} (a sender socket, an inbox socket that opens
 * only the request inbox, and a reader socket that opens the pair mailbox of every contact and of every peer with history: no socket
 * ties the identity to its pair mailboxes), the {@linkcode Outbox} and the
 * {@linkcode Inbox}: `send` returns a message id at once and the outbox takes it from there
 * (encrypted and in history first, then the relay, again after every reconnect, until accepted
 * or refused for good); deliveries are decrypted and stored, then acked (automatically, or by
 * the caller in manual mode), and their senders get receipts, piggybacked on the next message or
 * sent after a random delay. Messages from keys that are not contacts are kept as requests until
 * {@linkcode ChatClient.acceptRequest}. Everything that happens is an event.
 *
 * @module
 */
import {
  decodePublicKey,
  type KeyPair,
  MAX_FRAME_BYTES_V2,
  newId,
  toBase64,
} from "@chat-p2p/protocol";
import { type BackoffOptions, deadline, delay } from "@chat-p2p/protocol/async";
import {
  type ConnectOptions,
  DEFAULT_TIMEOUT_MS,
  type RelayEvent,
  type RelaySession,
} from "./connection.ts";
import { emit } from "./_emit.ts";
import { ClientError, type ClientErrorCode, RelayError } from "./errors.ts";
import {
  type Delivered,
  type Delivery,
  Inbox,
  type InboxOutcome,
  type IncomingMessage,
} from "./inbox.ts";
import { checkMessage, type MessageRefusal } from "./limits.ts";
import type { Mailboxes } from "./mailboxes.ts";
import { Outbox, type OutboxEvent, type QueuedMessage, type SendOutcome } from "./outbox.ts";
import { ReceiptQueue } from "./receipts.ts";
import { type ConnectionEvent, type ConnectionState, ReconnectingRelay } from "./reconnecting.ts";
import { profileSealer, type Sealer } from "./sealing.ts";
import { openStore, type ProfileStore } from "./store/profile_store.ts";
import { addContact } from "./store/contacts.ts";
import { type RequestMessage, RequestStore } from "./store/requests.ts";

/** Everything a {@linkcode ChatClient} reports. */
export type ChatEvent =
  /** The relay connection changed state (see {@linkcode ConnectionState}). */
  | ConnectionEvent
  /** Everything that waited at the relay in the mailboxes opened on connecting is received. */
  | { type: "synced"; count: number }
  /**
   * A message, stored in history. `duplicate`: it was already there (delivered again because an
   * ack did not reach the relay). In manual-ack mode, ack its id once it is handled.
   */
  | { type: "message"; message: IncomingMessage; duplicate: boolean }
  /**
   * A first-contact message from a key that is not a contact, kept in requests/ (never shown as
   * a message until {@linkcode ChatClient.acceptRequest}); `duplicate`: kept already.
   */
  | {
    type: "request";
    from: string;
    fingerprint: string;
    message: RequestMessage;
    duplicate: boolean;
  }
  /** A receipt: these messages I sent to `from` are now delivered (✓✓). */
  | {
    type: "delivered";
    from: string;
    contact: string | null;
    messages: Delivered;
  }
  /**
   * An envelope that did not open or could not be read: `from` is the contact whose mailbox it
   * came through (not proof it was theirs); absent for a forged or unreadable request.
   */
  | { type: "rejected"; id: string; from?: string; fingerprint?: string; reason: string }
  /** Outgoing messages: accepted by the relay, refused for now (`retry`), or `failed`. */
  | OutboxEvent
  /** An error frame from the relay that is about no message, or a frame that was not valid. */
  | { type: "relay_error"; code: string; message: string }
  /**
   * Something this client could not do: `store` a delivery (it is not acked and comes again),
   * `record` an outcome in history, send a `receipt`, `open` a mailbox.
   */
  | { type: "error"; during: "store" | "record" | "receipt" | "open"; error: ClientError };

/** The `type`s of {@linkcode ChatEvent}. */
export type ChatEventType = ChatEvent["type"];

/** The range of the random delay before queued receipts are sent, in ms. */
export type DelayRange = readonly [min: number, max: number];

/** Receipt delay of a long-running client (a chat, a bot). */
export const RECEIPT_DELAY_MS: DelayRange = [2_000, 20_000];
/** Receipt delay of a one-shot command, and of any client as it closes. */
export const CLOSING_RECEIPT_DELAY_MS: DelayRange = [500, 2_500];

/** Options for {@linkcode ChatClient}. */
export interface ChatClientOptions {
  /**
   * `auto` (default): a message is acked as soon as it is stored and its event is out.
   * `manual`: the caller acks with {@linkcode ChatClient.ack} once it has handled the message;
   * until then the relay keeps it and delivers it again after a reconnect (`duplicate: true`).
   */
  ackMode?: "auto" | "manual";
  /**
   * Handle deliveries (default true). False opens no mailbox at all: only a sender socket (the
   * `send` command); deliveries stay at the relay for another client of the same profile.
   */
  receive?: boolean;
  /**
   * Treat first-contact messages from keys that are not contacts as messages (a bot that answers
   * anyone). Default false: they are kept as requests.
   */
  acceptRequests?: boolean;
  /**
   * Random delay before queued receipts go out: default {@linkcode RECEIPT_DELAY_MS}; a one-shot
   * command passes {@linkcode CLOSING_RECEIPT_DELAY_MS}.
   */
  receiptDelayMs?: DelayRange;
  /**
   * Offer a message the relay accepted again when no receipt came for this long (default 24 h,
   * see `REDELIVER_AFTER_MS`): what a relay lost after accepting it is sent again.
   */
  redeliverAfterMs?: number;
  /** Time for connecting, opening mailboxes, and each send attempt (default 10 s). */
  timeoutMs?: number;
  /**
   * Give up (state `closed`) once no connection was up for this long; 0 = after the first failed
   * attempt. Default: never.
   */
  giveUpAfterMs?: number;
  /** Spacing of reconnect attempts. */
  backoff?: BackoffOptions;
  /** Largest frame the relay accepts (default 128 KiB). */
  maxFrameBytes?: number;
  /** Pacing of outgoing frames (see {@linkcode ConnectOptions}). */
  framesPerSecond?: number;
  /** Burst of the pacing. */
  frameBurst?: number;
  /** One line per frame and state change (a `--verbose` log). */
  log?: (line: string) => void;
  /** The clock. */
  now?: () => Date;
  /** Random numbers in [0, 1) for the receipt delays (tests). */
  random?: () => number;
  /** How one connection is made (tests). */
  connect?: (url: string, opts: ConnectOptions) => Promise<RelaySession>;
}

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

/** Receipts of one peer waiting for their random moment. */
interface ReceiptTimer {
  /** When they go out. */
  due: number;
  /** When the first of them was queued. */
  since: number;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * One profile talking through one relay.
 *
 * @example A bot that answers every message
 * ```ts ignore
 * import { ChatClient } from "@chat-p2p/client";
 *
 * const client = await ChatClient.open({ profile: "bot", acceptRequests: true });
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
  readonly #random: () => number;
  readonly #sealer: Sealer;
  readonly #mailboxes: Mailboxes;
  readonly #requests: RequestStore;
  readonly #outbox: Outbox;
  readonly #inbox: Inbox;
  readonly #receipts: ReceiptQueue;
  readonly #receiptTimers = new Map<string, ReceiptTimer>();
  readonly #receiptsSending = new Set<Promise<void>>();
  readonly #listeners = new Set<(e: ChatEvent) => void>();
  /** Delivered messages not acked yet: their sender and envelope. */
  readonly #unacked = new Map<string, { from: string; delivery: Delivery }>();
  /**
   * Ids the caller acked (manual mode), newest last, at most {@linkcode REMEMBERED_ACKS}: a copy
   * delivered again is acked without an event.
   */
  readonly #ackedByCaller = new Set<string>();
  readonly #resumed = new Set<string>();
  /** Registrations of pair mailboxes under way, by peer ({@linkcode ChatClient.#registerPair}). */
  readonly #registering = new Map<string, Promise<void>>();
  #relay: ReconnectingRelay | undefined;
  /** Settles once the last envelope handed to the relay is on its way (wire order). */
  #ordered: Promise<unknown> = Promise.resolve();
  /** Settles after the last delivery handed to the inbox is handled. */
  #lastReceive: Promise<void> = Promise.resolve();
  /** Mailboxes of the current reading sockets whose backlog has not come in yet. */
  #unsynced = new Set<string>();
  #syncedCount = 0;
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

  /**
   * A client for `store`'s profile, whose key pair is `identity` (loaded with
   * `store.loadIdentity`, which also unlocks the files). Not connected yet.
   */
  constructor(store: ProfileStore, identity: KeyPair, opts: ChatClientOptions = {}) {
    this.store = store;
    this.key = toBase64(identity.publicKey);
    this.#identity = identity;
    this.#opts = opts;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#now = opts.now ?? (() => new Date());
    this.#random = opts.random ?? Math.random;
    this.#sealer = profileSealer(store, identity);
    this.#mailboxes = this.#sealer.mailboxes;
    this.#requests = new RequestStore(store);
    this.#receipts = new ReceiptQueue(store);
    this.#inbox = new Inbox({
      store,
      sealer: this.#sealer,
      requests: this.#requests,
      acceptRequests: opts.acceptRequests,
      now: this.#now,
    });
    this.#outbox = new Outbox({
      store,
      sealer: this.#sealer,
      now: this.#now,
      transport: {
        isConnected: () => this.state === "connected",
        send: (peer, wire, env) => this.#sendWire(peer, wire, env),
      },
      receipts: {
        take: (peer) => {
          const ids = this.#receipts.take(peer);
          if (!this.#receipts.has(peer)) this.#cancelReceiptTimer(peer);
          return ids;
        },
        untake: (peer, ids) => this.#receipts.untake(peer, ids),
      },
      onEvent: (e) => this.#emit(e),
      onError: (e) => this.#emit({ type: "error", during: "record", error: asClientError(e) }),
      ...pick(opts, ["redeliverAfterMs"]),
    });
  }

  /** The relay connection's state ("disconnected" before {@linkcode ChatClient.connect}). */
  get state(): ConnectionState {
    return this.#relay?.state ?? "disconnected";
  }

  /**
   * Connects to the relay at `url` and keeps the connection up (reconnecting with backoff).
   * Resolves once connected; rejects with a {@linkcode RelayError} if it gives up first (see
   * `giveUpAfterMs`; `bad_url` and `unsupported_version` at once). Call it once. Mailboxes are
   * opened after that; the `synced` event says when their backlog is in.
   */
  connect(url: string): Promise<void> {
    if (this.#relay) {
      return Promise.reject(
        new ClientError("protocol", "this client is already connected to a relay"),
      );
    }
    const relay = new ReconnectingRelay(url, {
      timeoutMs: this.#timeoutMs,
      reader: this.#opts.receive !== false,
      maxFrameBytes: this.#opts.maxFrameBytes ?? MAX_FRAME_BYTES_V2,
      ...pick(this.#opts, [
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
   * returns the message id. The message is encrypted and in history ("sending") when this
   * returns; the outbox sends it, now or once connected, and reports `accepted`, `retry` or
   * `failed` events. Earlier messages to the same peer still queued in history go first. Throws
   * `unknown_contact`; `empty_message`, `message_too_long` or `message_too_large` for a text that
   * {@linkcode checkMessage} refuses; `frame_too_large` for one too large for the client's own frame
   * limit (nothing is written then). One that only the relay's smaller announced limit
   * (`hello.max_frame_bytes`) refuses is in history first and then fails (`failed` event).
   */
  send(to: string, text: string): string {
    this.#assertOpen();
    const refused = checkMessage(text);
    if (refused) throw new ClientError(REFUSAL_CODES[refused.code], refused.message);
    const peer = this.#peerKey(to);
    this.resume(peer);
    const id = this.#outbox.enqueue(peer, text, this.#opts.maxFrameBytes ?? MAX_FRAME_BYTES_V2).id;
    this.#readPairOf(peer); // its answer may come through our pair mailbox
    return id;
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
   * Acks delivered messages by message id (manual mode; in auto mode the client does it). The
   * relay then forgets them and their senders get receipts. Without a connection the relay keeps
   * them, and a copy delivered again is acked with no new event.
   */
  ack(ids: string | string[]): void {
    const list = typeof ids === "string" ? [ids] : ids;
    for (const id of list) {
      const u = this.#unacked.get(id);
      if (u === undefined) continue;
      this.#unacked.delete(id);
      this.#relay?.ack(u.delivery.mailbox, [u.delivery.envelope]);
      this.#queueReceipts(u.from, [id]);
      if (this.#opts.ackMode === "manual") this.#rememberAck(id);
    }
  }

  /**
   * Accepts the request of `key` as contact `name`: saves the contact (as `addContact` does, with
   * its rules), moves the request's messages into history, sets up the pair mailboxes (opened at
   * once when connected) and queues a receipt for them (sent after the usual delay, or by the
   * next run that connects). Returns the messages moved. Throws `contact_exists` (or
   * `invalid_contact_name`) and changes nothing when the contact cannot be saved.
   */
  async acceptRequest(key: string, name: string): Promise<RequestMessage[]> {
    this.#assertOpen();
    const req = this.#requests.get(key);
    await this.#mailboxes.ensure([key]);
    addContact(this.store, name, key);
    const moved = req?.messages ?? [];
    this.store.history(key).appendBatch(moved.map((m) => ({ t: "msg", ...m, dir: "in" })));
    this.#requests.remove(key);
    this.#queueReceipts(key, moved.map((m) => m.id));
    this.#readPairOf(key);
    return moved;
  }

  /**
   * Blocks `key`: its request and its sessions are deleted, and its later requests are dropped
   * on arrival. Throws `contact_exists` for a key saved as a contact (remove it first).
   */
  block(key: string): void {
    this.#assertOpen();
    const contact = this.store.loadContacts().find((c) => c.key === key);
    if (contact) {
      throw new ClientError(
        "contact_exists",
        `${contact.name} is a contact; only requests from keys that are not contacts are blocked`,
      );
    }
    this.#requests.block(key);
    this.#sealer.forget(key);
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
   * Stores what is still being received, acks it, sends the receipts that are due (at most a
   * random 0.5–2.5 s after the first of them was queued, waiting up to `timeoutMs`, default the
   * client's timeout), keeps the receipts it could not send for the next run, then closes the
   * connection. Queued messages stay
   * in history as "sending" for the next run.
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.#closing ??= this.#close(opts.timeoutMs ?? this.#timeoutMs);
  }

  async #close(ms: number): Promise<void> {
    const until = Date.now() + ms;
    const wait = (p: Promise<unknown>) =>
      deadline(p, Math.max(0, until - Date.now())).catch(() => {});
    await wait(this.#inbox.idle().then(() => this.#lastReceive));
    if (this.state === "connected") {
      // Receipts go out at their moment, but no later than a short random delay (0.5-2.5 s) after
      // the first of them was queued (receipts loaded from the last run: after now).
      const [min, max] = CLOSING_RECEIPT_DELAY_MS;
      const delayMs = min + this.#random() * (max - min);
      for (const peer of this.#receipts.peers()) {
        const t = this.#receiptTimers.get(peer);
        const due = Math.min(t?.due ?? Infinity, (t?.since ?? Date.now()) + delayMs);
        this.#cancelReceiptTimer(peer);
        this.#trackReceipts(
          delay(Math.max(0, due - Date.now())).then(() => this.#flushReceipts(peer)),
        );
      }
    }
    await wait(Promise.all(this.#receiptsSending));
    for (const peer of [...this.#receiptTimers.keys()]) this.#cancelReceiptTimer(peer);
    try {
      this.#receipts.save();
    } catch (e) {
      this.#emit({ type: "error", during: "receipt", error: asClientError(e) });
    }
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

  /**
   * Wraps a ratchet message for `peer`'s pair mailbox and sends it. When the relay does not know
   * that mailbox (`unknown_mailbox`: the peer has not read it at this relay yet):
   *
   * - if the peer has written to me before (it knows me: I am its contact or in its history, so
   *   it reads our pair mailbox, see {@linkcode ChatClient.#correspondents}), I
   *   register the mailbox myself ({@linkcode ChatClient.#registerPair}) and send to it again:
   *   the peer's request inbox, which strangers can fill, is never involved;
   * - otherwise (first contact: the peer may not know me yet) the same ratchet message goes to
   *   the peer's request inbox; if strangers filled it (`mailbox_full`), I register the pair
   *   mailbox and send there, where the peer reads it once I am its contact.
   *
   * Envelopes go on the wire in the order of the calls.
   */
  async #sendWire(peer: string, wire: Uint8Array, env: string): Promise<void> {
    const relay = this.#relay;
    if (!relay) throw new RelayError("connection_closed", "not connected to a relay", { id: env });
    const opts = { timeoutMs: this.#timeoutMs };
    const toPair = async (register: boolean) => {
      const pair = await this.#inOrder(async () => {
        if (register) await this.#registerPair(relay, peer);
        const out = await this.#sealer.pairEnvelope(peer, wire, env);
        return { answer: relay.send(out.envelope, opts) };
      });
      await pair.answer;
    };
    try {
      return await toPair(false);
    } catch (e) {
      if (!isRelayError(e, "unknown_mailbox")) throw e;
    }
    if (!this.#sealer.heardFrom(peer)) {
      try {
        const req = await this.#inOrder(async () => {
          const out = await this.#sealer.requestEnvelope(peer, wire, env);
          return { answer: relay.send(out.envelope, { ...opts, key: out.key }) };
        });
        return await req.answer;
      } catch (e) {
        if (!isRelayError(e, "mailbox_full")) throw e;
      }
    }
    await toPair(true);
  }

  /**
   * Registers the pair mailbox I write to `peer` through at this relay, as its reader would
   * (I derive its auth key too): opened on a throwaway socket, closed at once, nothing read or
   * acked. Concurrent callers for one peer share one registration.
   */
  #registerPair(relay: ReconnectingRelay, peer: string): Promise<void> {
    let running = this.#registering.get(peer);
    if (!running) {
      running = this.#mailboxes.sendMailboxWithAuth(peer)
        .then((mb) => relay.register("pair", mb.authKeyPair))
        .then(() => {})
        .finally(() => this.#registering.delete(peer));
      this.#registering.set(peer, running);
    }
    return running;
  }

  /** Runs `step` after the steps started before it (it returns its answer wrapped, unawaited). */
  #inOrder<T>(step: () => Promise<T>): Promise<T> {
    const p = this.#ordered.then(step);
    this.#ordered = p.catch(() => {});
    return p;
  }

  #onRelayEvent(e: ConnectionEvent | RelayEvent): void {
    switch (e.type) {
      case "connection":
        if (e.state !== "connected") this.#unsynced = new Set();
        this.#emit(e);
        if (e.state === "connected") {
          this.#outbox.flush();
          if (this.#opts.receive !== false) void this.#openMailboxes();
          for (const peer of this.#receipts.peers()) this.#scheduleReceipts(peer);
        }
        return;
      case "deliver": {
        if (this.#opts.receive === false || this.#closing) return;
        const envelope = e.envelope;
        if (!this.#relay?.openedOn(envelope.to)) {
          this.#emit({
            type: "relay_error",
            code: "not_open",
            message: `relay delivered envelope ${envelope.id} for a mailbox not opened here`,
          });
          return;
        }
        this.#lastReceive = this.#inbox.receive(envelope).then(
          (o) => this.#handle(o),
          (err) => this.#emit({ type: "error", during: "store", error: asClientError(err) }),
        );
        return;
      }
      case "synced": {
        const session = this.#relay?.reader;
        this.#syncedCount += e.count;
        this.#lastReceive.then(() => {
          if (this.#relay?.reader !== session) return; // that connection is gone
          this.#markSynced(e.mailbox);
        });
        return;
      }
      case "error":
      case "invalid":
        this.#emit({ type: "relay_error", code: e.code, message: e.message });
        return;
    }
  }

  #markSynced(mailbox: string): void {
    if (!this.#unsynced.delete(mailbox) || this.#unsynced.size > 0) return;
    const count = this.#syncedCount;
    this.#syncedCount = 0;
    this.#emit({ type: "synced", count });
  }

  /**
   * Opens my request inbox on the inbox socket and, on the reader socket, the pair mailbox of
   * every peer I talk to (pair keys derived once and cached): the `open` of the inbox names my
   * identity key, so it never shares a socket with a pair mailbox. `synced` comes once all of
   * them have sent their backlog.
   */
  async #openMailboxes(): Promise<void> {
    const relay = this.#relay!;
    const reader = relay.reader;
    const inbox = relay.inboxReader;
    try {
      const peers = this.#correspondents();
      await this.#mailboxes.ensure(peers);
      if (relay.reader !== reader) return; // that connection is gone; the next one opens its own
      const opens = [this.#mailboxes.inbox, ...peers.map((p) => this.#mailboxes.readIdOf(p))];
      this.#unsynced = new Set(opens);
      this.#syncedCount = 0;
      await Promise.all([
        this.#open(inbox, "inbox", this.#identity, this.#mailboxes.inbox),
        ...peers.map((p) => this.#openPair(p, reader)),
      ]);
    } catch (e) {
      if (relay.reader === reader) {
        this.#emit({ type: "error", during: "open", error: asClientError(e) });
      }
    }
  }

  /**
   * The peers whose pair mailbox I read: my contacts, and every other peer in my history (I wrote
   * to its key, or answered it in `acceptRequests` mode), blocked keys excepted. A peer that has
   * heard from me may write to our pair mailbox rather than my request inbox (§11 of
   * PROTOCOL.md), so I must read it.
   */
  #correspondents(): string[] {
    const blocked = this.#requests.blocked();
    const peers = new Set(this.store.loadContacts().map((c) => c.key));
    for (const p of this.store.peersWithHistory()) if (!blocked.has(p)) peers.add(p);
    return [...peers];
  }

  /**
   * Opens the pair mailbox `peer` writes to me through on `reader` (default: the current reader
   * socket), unless it is open there already.
   */
  async #openPair(peer: string, reader = this.#relay?.reader): Promise<void> {
    const mailbox = await this.#mailboxes.readMailbox(peer);
    if (reader?.opened.has(mailbox.idText)) return;
    await this.#open(reader, "pair", mailbox.authKeyPair, mailbox.idText);
  }

  /** Starts reading `peer`'s pair mailbox, if this client reads and is connected. */
  #readPairOf(peer: string): void {
    if (this.#opts.receive === false || !this.#relay?.reader) return;
    this.#openPair(peer).catch((e) =>
      this.#emit({ type: "error", during: "open", error: asClientError(e) })
    );
  }

  /** Opens a mailbox on `socket`, unless that socket is no longer the current one of `kind`. */
  async #open(
    socket: RelaySession | undefined,
    kind: "inbox" | "pair",
    authKeyPair: KeyPair,
    id: string,
  ): Promise<void> {
    if (!socket || socket !== this.#relay?.readerFor(kind)) return;
    try {
      await socket.open(kind, authKeyPair);
    } catch (e) {
      if (socket !== this.#relay?.readerFor(kind)) return;
      this.#emit({ type: "error", during: "open", error: asClientError(e) });
      this.#markSynced(id); // its backlog will not come: do not wait for it
    }
  }

  #handle(o: InboxOutcome): void {
    const ack = () => this.#relay?.ack(o.delivery.mailbox, [o.delivery.envelope]);
    switch (o.kind) {
      case "ignored":
        this.#emit({
          type: "relay_error",
          code: "not_open",
          message: `envelope ${o.delivery.envelope}: ${o.reason}`,
        });
        return;
      case "dropped":
        this.#opts.log?.(`envelope ${o.delivery.envelope} dropped: ${o.reason}`);
        return void ack();
      case "rejected": {
        const { delivery, kind: _, ...rest } = o;
        this.#emit({ type: "rejected", id: delivery.envelope, ...rest });
        return void ack();
      }
      case "request":
        this.#emit({
          type: "request",
          from: o.from,
          fingerprint: o.fingerprint,
          message: o.message,
          duplicate: o.duplicate,
        });
        return void ack();
      case "receipt":
        this.#emitDelivered(o.from, o.contact, o.delivered);
        return void ack();
      case "message": {
        const { id, from } = o.message;
        this.#emitDelivered(from, o.message.contact, o.delivered);
        this.#unacked.set(id, { from, delivery: o.delivery });
        if (o.message.contact === null) this.#readPairOf(from); // answered in acceptRequests mode
        if (this.#ackedByCaller.has(id)) return this.ack(id); // handled already
        this.#emit({ type: "message", message: o.message, duplicate: o.duplicate });
        if (this.#opts.ackMode !== "manual") this.ack(id);
      }
    }
  }

  #emitDelivered(from: string, contact: string | null, messages: Delivered): void {
    if (messages.length > 0) this.#emit({ type: "delivered", from, contact, messages });
  }

  /** Queues receipts for `ids` from `peer`, to go out after a random delay. */
  #queueReceipts(peer: string, ids: string[]): void {
    if (ids.length === 0) return;
    this.#receipts.add(peer, ids);
    this.#scheduleReceipts(peer);
  }

  #scheduleReceipts(peer: string): void {
    if (this.#receiptTimers.has(peer) || this.#closing || this.state !== "connected") return;
    const [min, max] = this.#opts.receiptDelayMs ?? RECEIPT_DELAY_MS;
    const ms = min + this.#random() * (max - min);
    const timer = setTimeout(() => {
      this.#receiptTimers.delete(peer);
      this.#trackReceipts(this.#flushReceipts(peer));
    }, ms);
    this.#receiptTimers.set(peer, { due: Date.now() + ms, since: Date.now(), timer });
  }

  /** Keeps `sending` in the set `close` waits for, until it settles. */
  #trackReceipts(sending: Promise<void>): void {
    this.#receiptsSending.add(sending);
    sending.finally(() => this.#receiptsSending.delete(sending));
  }

  #cancelReceiptTimer(peer: string): void {
    const t = this.#receiptTimers.get(peer);
    if (t) clearTimeout(t.timer);
    this.#receiptTimers.delete(peer);
  }

  /**
   * Sends the receipts queued for `peer` (a receipt payload per 1000 ids), each encrypted on the
   * ratchet like a message but kept in no history. Ids refused for now go back in the queue.
   */
  async #flushReceipts(peer: string): Promise<void> {
    for (let ids = this.#receipts.take(peer); ids.length > 0; ids = this.#receipts.take(peer)) {
      try {
        const wire = this.#sealer.encrypt(peer, { v: 2, kind: "receipt", ids });
        await this.#sendWire(peer, wire, newId());
      } catch (e) {
        this.#receipts.untake(peer, ids);
        this.#emit({ type: "error", during: "receipt", error: asClientError(e) });
        return;
      }
    }
  }
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

function isRelayError(e: unknown, code: RelayError["code"]): boolean {
  return e instanceof RelayError && e.code === code;
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
