/**
 * The outbox: outgoing messages from the moment they are written to history until the relay has
 * them. A message is encrypted on the peer's ratchet (the advanced sessions are on disk first),
 * then appended to history as "sending" **with the ratchet message it became**, before it goes
 * on the wire. So a crash, a dropped connection or a relay that is down loses nothing: the outbox
 * (of this run, or of the next one, through {@linkcode Outbox.resume}) wraps the same bytes again
 * under the same envelope id and sends them, and never encrypts a message twice. The relay stores
 * an envelope id once per mailbox, the recipient's ratchet opens a message key once and its
 * history keeps a message id once, so a message that did get through before is not shown twice.
 *
 * The wrapping is the transport's business (`ChatClient`): the pair mailbox. When the relay does
 * not know that mailbox (`unknown_mailbox`: the peer has not read from this relay yet), the
 * transport registers it itself if the peer has written to me before (the sender derives its auth
 * key too; opened on a throwaway socket, nothing acked) and sends there, so strangers who fill the
 * peer's request inbox cannot hold up a contact's messages. Only a first contact goes to the
 * peer's request inbox, and to the pair mailbox (registered the same way) if strangers filled that
 * inbox (`mailbox_full`). `unknown_mailbox` is therefore no refusal at all here.
 *
 * ## When a message fails
 *
 * **A message becomes `failed` only when the relay refused it for a reason that retrying cannot
 * fix: the envelope itself is wrong.** Those codes are {@linkcode PERMANENT_REFUSALS}:
 * `bad_json`, `bad_frame`, `unsupported_version`, `unknown_type`, `binary_frame` and
 * `frame_too_large` (from the relay, or found by the client before sending). Everything else
 * leaves it queued ("sending") and it is sent again under the same id:
 *
 * - no answer in time (`timeout`), the connection lost (`connection_closed`) or never made
 *   (`unreachable`): sent again as soon as a connection is up;
 * - `rate_limited`: sent again after the relay's `retry_after_ms`;
 * - `unavailable`, `mailbox_full`, `internal`, and any code this client does not know: sent
 *   again after a backoff with jitter (1 s doubling up to 30 s), and at once on a new connection.
 *
 * A failed message stays in history as `failed` until someone puts it back in the queue
 * ({@linkcode Outbox.requeue}, `chat-p2p resend`).
 *
 * @module
 */
import {
  fromBase64,
  isMessageId,
  type MessagePayloadV2,
  newId,
  newMessageId,
  sha256,
  toBase64,
  toHex,
} from "@chat-p2p/protocol";
import { backoffDelay, type BackoffOptions } from "@chat-p2p/protocol/async";
import { RelayError, type RelayErrorCode } from "./errors.ts";
import { crashPoint } from "./_crash.ts";
import { checkPayload, type Sealer, sendFrameBytes } from "./sealing.ts";
import type { HistoryEntry } from "./store/message_log.ts";
import type { ProfileStore } from "./store/profile_store.ts";

/** Refusals that retrying cannot fix: a message refused with one of these is `failed`. */
export const PERMANENT_REFUSALS: ReadonlySet<RelayErrorCode> = new Set<RelayErrorCode>([
  "bad_json",
  "bad_frame",
  "unsupported_version",
  "unknown_type",
  "binary_frame",
  "frame_too_large",
]);

/**
 * The rule, as code: true when `error` means the envelope can never be accepted (a
 * {@linkcode RelayError} with a code in {@linkcode PERMANENT_REFUSALS}); false for everything
 * that a later attempt may fix.
 *
 * @example
 * ```ts
 * import { isPermanentRefusal, RelayError } from "@chat-p2p/client";
 *
 * isPermanentRefusal(new RelayError("bad_frame", "not an envelope", { fromRelay: true })); // true
 * isPermanentRefusal(new RelayError("unavailable", "backend down", { fromRelay: true })); // false
 * isPermanentRefusal(new RelayError("timeout", "no answer")); // false
 * ```
 */
export function isPermanentRefusal(error: unknown): boolean {
  return error instanceof RelayError && PERMANENT_REFUSALS.has(error.code);
}

/**
 * Records failed messages to `peer` (all of them, or the one with `id`) as "sending" again, so
 * the next outbox for that peer sends them; returns their ids. Needs no key, only history.
 */
export function requeueFailed(store: ProfileStore, peer: string, now: Date, id?: string): string[] {
  const log = store.history(peer);
  const at = now.toISOString();
  return log.entries()
    .filter((e) => e.dir === "out" && e.state === "failed" && (id === undefined || e.id === id))
    .filter((e) => log.appendState(e.id, "sending", at))
    .map((e) => e.id);
}

/** Default spacing of retries after a transient refusal. */
export const RETRY_BACKOFF: BackoffOptions = { minTimeout: 1000, maxTimeout: 30_000, jitter: 0.5 };

/** Where the outbox sends: the relay connection, whatever its state. */
export interface OutboxTransport {
  /** True while a connection is up. */
  isConnected(): boolean;
  /**
   * Wraps the ratchet message `wire` for `peer` under envelope id `env` and sends it; resolves at
   * `accepted`, rejects with a {@linkcode RelayError}.
   */
  send(peer: string, wire: Uint8Array, env: string): Promise<void>;
}

/** A message in the outbox. */
export interface QueuedMessage {
  /** Message id (the history id). */
  id: string;
  /** The peer's base64 key. */
  peer: string;
  /** The plaintext. */
  text: string;
  /** When it was written (sender's clock, inside the box). */
  sent_at: string;
  /** Why the last attempt did not get through, if one was made. */
  lastError?: RelayError;
}

/** What finally happened to a message (see {@linkcode Outbox.outcome}). */
export type SendOutcome =
  | { state: "accepted" }
  | { state: "failed"; error: RelayError };

/** State changes of outgoing messages. */
export type OutboxEvent =
  /** The relay stored it (history: accepted). */
  | { type: "accepted"; message: QueuedMessage }
  /** Refused for good (history: failed); see the module's rule. */
  | { type: "failed"; message: QueuedMessage; error: RelayError }
  /** Refused for now: it stays queued and is sent again in `delayMs` (or on a new connection). */
  | { type: "retry"; message: QueuedMessage; error: RelayError; delayMs: number };

/** Options for {@linkcode Outbox}. */
export interface OutboxOptions {
  /** Where history is (messages are "sending" there while queued). */
  store: ProfileStore;
  /** How messages are encrypted. */
  sealer: Sealer;
  /** Where envelopes go. */
  transport: OutboxTransport;
  /**
   * Receipts to piggyback on a message to `peer` (taken when the message is written; given back
   * with `untake` when it cannot be).
   */
  receipts?: { take(peer: string): string[]; untake(peer: string, ids: string[]): void };
  /** Receives every {@linkcode OutboxEvent}. */
  onEvent?: (event: OutboxEvent) => void;
  /** Receives failures to record an outcome in history (the disk), which nothing else sees. */
  onError?: (error: unknown) => void;
  /** The clock (history times). */
  now?: () => Date;
  /** Spacing of retries after transient refusals (default {@linkcode RETRY_BACKOFF}). */
  backoff?: BackoffOptions;
  /**
   * A message the relay accepted but whose receipt has not come after this long is offered to
   * the relay again (same envelope id, same bytes) by {@linkcode Outbox.resume}: a relay that lost
   * it stores it again, one that still holds it keeps one copy, and a recipient that has it
   * already drops the copy and sends its receipt again. Default
   * {@linkcode REDELIVER_AFTER_MS}.
   */
  redeliverAfterMs?: number;
}

/** Default time after which an accepted message without a receipt is offered to the relay again. */
export const REDELIVER_AFTER_MS = 24 * 60 * 60 * 1000;

interface Item {
  message: QueuedMessage;
  /** The ratchet message, wrapped anew for every attempt. */
  wire: Uint8Array;
  /** Its envelope id, the same for every attempt. */
  env: string;
  inFlight: boolean;
  attempts: number;
  timer?: ReturnType<typeof setTimeout>;
  /** The wait was asked for by the relay (`retry_after_ms`): a new connection does not cut it. */
  relayAskedWait: boolean;
  waiters: Array<(o: SendOutcome) => void>;
}

/** The outgoing queue of one profile, over every peer, oldest first. */
export class Outbox {
  readonly #store: ProfileStore;
  readonly #sealer: Sealer;
  readonly #transport: OutboxTransport;
  readonly #receipts: NonNullable<OutboxOptions["receipts"]> | undefined;
  readonly #onEvent: (event: OutboxEvent) => void;
  readonly #onError: (error: unknown) => void;
  readonly #now: () => Date;
  readonly #backoff: BackoffOptions;
  readonly #redeliverAfterMs: number;
  readonly #items = new Map<string, Item>();
  #closed = false;

  /** Creates an empty outbox; nothing is read from history until {@linkcode Outbox.resume}. */
  constructor(opts: OutboxOptions) {
    this.#store = opts.store;
    this.#sealer = opts.sealer;
    this.#transport = opts.transport;
    this.#receipts = opts.receipts;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.#onError = opts.onError ?? ((e) =>
      queueMicrotask(() => {
        throw e;
      }));
    this.#now = opts.now ?? (() => new Date());
    this.#backoff = opts.backoff ?? RETRY_BACKOFF;
    this.#redeliverAfterMs = opts.redeliverAfterMs ?? REDELIVER_AFTER_MS;
  }

  /** The queued messages (to `peer`, or to everyone), oldest first. */
  queued(peer?: string): QueuedMessage[] {
    return [...this.#items.values()]
      .filter((i) => peer === undefined || i.message.peer === peer)
      .map((i) => ({ ...i.message }));
  }

  /**
   * Encrypts a new message to `peer`, writes it to history ("sending", with its ratchet message)
   * and queues it; returns it. Throws before anything is written when the message cannot fit in
   * a frame of `maxFrameBytes` (`frame_too_large`) or in the largest padding bucket
   * (`message_too_large`).
   */
  enqueue(peer: string, text: string, maxFrameBytes: number): QueuedMessage {
    const sent_at = this.#now().toISOString();
    const message: QueuedMessage = { id: newMessageId(), peer, text, sent_at };
    const payload: MessagePayloadV2 = { v: 2, kind: "message", id: message.id, text, sent_at };
    checkPayload(payload, maxFrameBytes);
    // Receipts for that peer ride along, unless they would make the message too large to send.
    let receipts = this.#receipts?.take(peer) ?? [];
    if (receipts.length > 0) {
      const frame = sendFrameBytes({ ...payload, receipts });
      if (frame !== undefined && frame <= maxFrameBytes) payload.receipts = receipts;
      else {
        this.#receipts?.untake(peer, receipts);
        receipts = [];
      }
    }
    const env = newId();
    let wire: Uint8Array;
    try {
      wire = this.#sealer.encrypt(peer, payload);
      crashPoint("send:sessions");
      // Durable before it can reach the wire: a message the relay may hold is never missing here,
      // and a crash before this line loses only a message nobody was told about (its key, used
      // up in the sessions file, is never used again).
      this.#store.history(peer).appendMessage({
        id: message.id,
        dir: "out",
        text,
        sent_at,
        at: sent_at,
        wire: toBase64(wire),
        env,
      });
    } catch (e) {
      this.#receipts?.untake(peer, receipts);
      throw e;
    }
    crashPoint("send:history");
    this.#add(message, wire, env);
    return { ...message };
  }

  /**
   * Takes over the messages to `peer` that history holds as "sending" (an earlier run stopped
   * before the relay answered) and queues them under their own ids; returns those it added. A
   * message queued by chat-p2p 1 has no ratchet message yet: it is encrypted now and its ratchet
   * message recorded before it is sent. Messages accepted long ago without a receipt are offered
   * again too (see {@linkcode OutboxOptions.redeliverAfterMs}).
   */
  resume(peer: string): QueuedMessage[] {
    const added: QueuedMessage[] = [];
    const log = this.#store.history(peer);
    const before = this.#now().getTime() - this.#redeliverAfterMs;
    const due = (e: HistoryEntry) =>
      e.state === "sending" ||
      (e.state === "accepted" && e.wire !== undefined && Date.parse(e.state_at ?? e.at) <= before);
    for (const e of log.entries()) {
      if (e.dir !== "out" || !due(e) || this.#items.has(e.id)) continue;
      const message = { id: e.id, peer, text: e.text, sent_at: e.sent_at };
      const { wire, env } = e.wire !== undefined && e.env !== undefined
        ? { wire: fromBase64(e.wire)!, env: e.env }
        : this.#upgrade(peer, e);
      this.#add(message, wire, env);
      added.push({ ...message });
    }
    return added;
  }

  /** Encrypts a message that chat-p2p 1 left queued and records its ratchet message. */
  #upgrade(peer: string, e: HistoryEntry): { wire: Uint8Array; env: string } {
    // v1 ids are 32 lower-case hex digits, as v2 message ids; anything else gets a stable one.
    const id = isMessageId(e.id)
      ? e.id
      : toHex(sha256(new TextEncoder().encode(e.id))).slice(0, 32);
    const wire = this.#sealer.encrypt(peer, {
      v: 2,
      kind: "message",
      id,
      text: e.text,
      sent_at: e.sent_at,
    });
    const env = newId();
    const at = this.#now().toISOString();
    this.#store.history(peer).appendBatch([{ t: "wire", id: e.id, wire: toBase64(wire), env, at }]);
    return { wire, env };
  }

  /**
   * Puts failed messages to `peer` (all of them, or the one with `id`) back in the queue:
   * history records them as "sending" again ({@linkcode requeueFailed}) and they are sent under
   * their ids. Returns them.
   */
  requeue(peer: string, id?: string): QueuedMessage[] {
    const ids = requeueFailed(this.#store, peer, this.#now(), id);
    return this.resume(peer).filter((m) => ids.includes(m.id));
  }

  /**
   * Resolves once the message with `id` is accepted or failed; a message that stays queued
   * keeps it waiting (bound it with `deadline`). Unknown ids: see their history state.
   */
  outcome(id: string): Promise<SendOutcome> {
    const item = this.#items.get(id);
    if (!item) {
      return Promise.reject(new RangeError(`message ${id} is not in the outbox`));
    }
    return new Promise((resolve) => item.waiters.push(resolve));
  }

  /**
   * Sends every queued message that is not on its way: call it when a connection comes up.
   * Waits after transient refusals are cut short, except those the relay asked for.
   */
  flush(): void {
    for (const item of this.#items.values()) {
      if (item.timer !== undefined && !item.relayAskedWait) {
        clearTimeout(item.timer);
        item.timer = undefined;
      }
      this.#trySend(item);
    }
  }

  /** Stops every retry timer; queued messages stay in history as "sending". */
  close(): void {
    this.#closed = true;
    for (const item of this.#items.values()) clearTimeout(item.timer);
  }

  #add(message: QueuedMessage, wire: Uint8Array, env: string): void {
    const item: Item = {
      message,
      wire,
      env,
      inFlight: false,
      attempts: 0,
      relayAskedWait: false,
      waiters: [],
    };
    this.#items.set(message.id, item);
    this.#trySend(item);
  }

  #trySend(item: Item): void {
    if (this.#closed || item.inFlight || item.timer !== undefined) return;
    if (!this.#transport.isConnected()) return; // flush() sends it once connected
    item.inFlight = true;
    this.#transport.send(item.message.peer, item.wire, item.env).then(
      () => this.#settle(item, { state: "accepted" }),
      (e: unknown) => this.#refused(item, e),
    );
  }

  #refused(item: Item, e: unknown): void {
    item.inFlight = false;
    const error = e instanceof RelayError
      ? e
      : new RelayError("internal", e instanceof Error ? e.message : String(e));
    if (isPermanentRefusal(error)) return this.#settle(item, { state: "failed", error });
    item.message.lastError = error;
    if (error.code === "connection_closed" || error.code === "closed") return; // flush() resends
    const delayMs = error.retryAfterMs ?? backoffDelay(item.attempts++, this.#backoff);
    item.relayAskedWait = error.retryAfterMs !== undefined;
    item.timer = setTimeout(() => {
      item.timer = undefined;
      this.#trySend(item);
    }, delayMs);
    this.#onEvent({ type: "retry", message: { ...item.message }, error, delayMs });
  }

  #settle(item: Item, outcome: SendOutcome): void {
    this.#items.delete(item.message.id);
    const at = this.#now().toISOString();
    try {
      this.#store.history(item.message.peer).appendState(item.message.id, outcome.state, at);
    } catch (e) {
      // Still "sending" in history: the next run sends it again, and the relay keeps it once.
      this.#onError(e);
    }
    const message = { ...item.message };
    this.#onEvent(
      outcome.state === "accepted"
        ? { type: "accepted", message }
        : { type: "failed", message, error: outcome.error },
    );
    for (const w of item.waiters) w(outcome);
  }
}
