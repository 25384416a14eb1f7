/**
 * The outbox: outgoing messages from the moment they are written to history until the relay has
 * them. A message is appended to history as "sending" before it goes on the wire, so a crash, a
 * dropped connection or a relay that is down loses nothing: the outbox (of this run, or of the
 * next one, through {@linkcode Outbox.resume}) seals it again under the same envelope id and
 * sends it. The relay stores an id once per mailbox and the recipient's history keeps an id once,
 * so a message that did get through before is not shown twice.
 *
 * ## When a message fails
 *
 * **A message becomes `failed` only when the relay refused it for a reason that retrying cannot
 * fix: the envelope itself is wrong.** Those codes are {@linkcode PERMANENT_REFUSALS}:
 * `bad_json`, `bad_frame`, `unsupported_version`, `unknown_type`, `binary_frame`,
 * `frame_too_large` (from the relay, or found by the client before sending) and
 * `spoofed_sender`. Everything else leaves it queued ("sending") and it is sent again under the
 * same id:
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
import type { Envelope, Payload } from "@chat-p2p/protocol";
import { backoffDelay, type BackoffOptions } from "@chat-p2p/protocol/async";
import { RelayError, type RelayErrorCode } from "./errors.ts";
import type { Sealer } from "./sealing.ts";
import type { ProfileStore } from "./store/profile_store.ts";

/** Refusals that retrying cannot fix: a message refused with one of these is `failed`. */
export const PERMANENT_REFUSALS: ReadonlySet<RelayErrorCode> = new Set<RelayErrorCode>([
  "bad_json",
  "bad_frame",
  "unsupported_version",
  "unknown_type",
  "binary_frame",
  "frame_too_large",
  "spoofed_sender",
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
 * isPermanentRefusal(new RelayError("spoofed_sender", "not your key", { fromRelay: true })); // true
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
  /** True while an authenticated connection is up. */
  isConnected(): boolean;
  /** Sends one envelope; resolves at `accepted`, rejects with a {@linkcode RelayError}. */
  send(envelope: Envelope): Promise<void>;
}

/** A message in the outbox. */
export interface QueuedMessage {
  /** Envelope id (also the history id). */
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
  /** How messages are sealed. */
  sealer: Sealer;
  /** Where envelopes go. */
  transport: OutboxTransport;
  /** Receives every {@linkcode OutboxEvent}. */
  onEvent?: (event: OutboxEvent) => void;
  /** Receives failures to record an outcome in history (the disk), which nothing else sees. */
  onError?: (error: unknown) => void;
  /** The clock (history times). */
  now?: () => Date;
  /** Spacing of retries after transient refusals (default {@linkcode RETRY_BACKOFF}). */
  backoff?: BackoffOptions;
}

interface Item {
  message: QueuedMessage;
  envelope: Envelope;
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
  readonly #onEvent: (event: OutboxEvent) => void;
  readonly #onError: (error: unknown) => void;
  readonly #now: () => Date;
  readonly #backoff: BackoffOptions;
  readonly #items = new Map<string, Item>();
  #closed = false;

  /** Creates an empty outbox; nothing is read from history until {@linkcode Outbox.resume}. */
  constructor(opts: OutboxOptions) {
    this.#store = opts.store;
    this.#sealer = opts.sealer;
    this.#transport = opts.transport;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.#onError = opts.onError ?? ((e) =>
      queueMicrotask(() => {
        throw e;
      }));
    this.#now = opts.now ?? (() => new Date());
    this.#backoff = opts.backoff ?? RETRY_BACKOFF;
  }

  /** The queued messages (to `peer`, or to everyone), oldest first. */
  queued(peer?: string): QueuedMessage[] {
    return [...this.#items.values()]
      .filter((i) => peer === undefined || i.message.peer === peer)
      .map((i) => ({ ...i.message }));
  }

  /**
   * Writes a new message to `peer` to history ("sending") and queues it; returns its id. The
   * envelope is sealed first, so a message too large for the wire throws (`frame_too_large`)
   * before anything is written.
   */
  enqueue(peer: string, text: string, maxFrameBytes: number): QueuedMessage {
    const sent_at = this.#now().toISOString();
    const envelope = this.#seal(peer, text, sent_at);
    const size = new TextEncoder().encode(JSON.stringify({ v: 1, type: "send", envelope }))
      .length;
    if (size > maxFrameBytes) {
      throw new RelayError(
        "frame_too_large",
        `message too large: ${size} bytes on the wire, the relay accepts at most ${maxFrameBytes}`,
      );
    }
    const message: QueuedMessage = { id: envelope.id, peer, text, sent_at };
    // Durable before it can reach the wire: a message the relay may hold is never missing here.
    this.#store.history(peer).appendMessage({ ...message, dir: "out", at: sent_at });
    this.#add(message, envelope);
    return { ...message };
  }

  /**
   * Takes over the messages to `peer` that history holds as "sending" (an earlier run stopped
   * before the relay answered) and queues them under their own ids; returns those it added.
   */
  resume(peer: string): QueuedMessage[] {
    const added: QueuedMessage[] = [];
    for (const e of this.#store.history(peer).entries()) {
      if (e.dir !== "out" || e.state !== "sending" || this.#items.has(e.id)) continue;
      const message = { id: e.id, peer, text: e.text, sent_at: e.sent_at };
      this.#add(message, this.#seal(peer, e.text, e.sent_at, e.id));
      added.push({ ...message });
    }
    return added;
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

  #seal(peer: string, text: string, sent_at: string, id?: string): Envelope {
    const payload: Payload = { v: 1, kind: "message", text, sent_at };
    return this.#sealer.seal(payload, peer, id);
  }

  #add(message: QueuedMessage, envelope: Envelope): void {
    const item: Item = {
      message,
      envelope,
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
    this.#transport.send(item.envelope).then(
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
