/**
 * Delivery: `accept` writes an envelope to its mailbox (durable) and announces it (for a pair
 * mailbox known to be registered while the write is under way, otherwise after it): it pushes it to
 * this relay's live sockets for that mailbox at once, and publishes it on the bus, where every
 * other relay holding a live socket for the mailbox pushes it. The router knows the sockets of
 * this relay only, and routes by opaque mailbox id (the envelope's `to`).
 *
 * @module
 */
import { type EnvelopeV2, serializeEnvelopeV2 } from "@chat-p2p/protocol";
import type { Bus } from "../ports/bus.ts";
import type { Mailbox, MailboxKind, StoredEnvelope } from "../ports/mailbox.ts";
import {
  BackendUnavailableError,
  errorMessage,
  MailboxFullError,
  UnknownMailboxError,
} from "../ports/errors.ts";
import { type Logger, OutageLog } from "../infra/log.ts";
import type { Metrics } from "../infra/metrics.ts";

/** Something on this relay that wants the envelopes of mailboxes (a session that opened them). */
export interface Recipient {
  /**
   * Called for each announced envelope of a mailbox it registered for; may repeat ids. Runs
   * inside another session's `accept` (or the bus's handler): it must not call back into the
   * router; a throw is logged and skips only this recipient.
   */
  push(mailboxId: string, id: string, raw: string): void;
}

/**
 * Most pair mailboxes the router remembers as registered (about 5 MB); one it forgot is stored
 * first again, then announced, until a put of it succeeds.
 */
const KNOWN_MAILBOXES = 100_000;

/** Routes envelopes between sessions, the mailbox and the bus. */
export class Router {
  readonly mailbox: Mailbox;
  readonly bus: Bus;
  #log: Logger;
  #metrics?: Metrics;
  /**
   * Live recipients per mailbox: the recipient itself while there is one (the usual case: a Set
   * per idle socket cost about 240 bytes with its table), a Set once there are more.
   */
  #local = new Map<string, Recipient | Set<Recipient>>();
  /**
   * Pair mailboxes this relay saw registered (opened here, or a put stored): their envelopes are
   * announced while they are written. Oldest forgotten past {@linkcode KNOWN_MAILBOXES}.
   */
  #known = new Set<string>();
  /** Backend refusals, reported per outage rather than per request (see OutageLog). */
  #refused: { send: OutageLog; ack: OutageLog; read: OutageLog; open: OutageLog };

  constructor(mailbox: Mailbox, bus: Bus, log: Logger, metrics?: Metrics) {
    this.mailbox = mailbox;
    this.bus = bus;
    this.#log = log;
    this.#metrics = metrics;
    this.#refused = {
      send: new OutageLog(log, "sends refused: backend unavailable"),
      ack: new OutageLog(log, "acks refused: backend unavailable"),
      read: new OutageLog(log, "mailbox reads failed: backend unavailable"),
      open: new OutageLog(log, "mailbox opens failed: backend unavailable"),
    };
  }

  /** Reports `p`'s outcome to `outage`: a BackendUnavailableError counts, anything else ends it. */
  async #watch<T>(outage: OutageLog, p: Promise<T>): Promise<T> {
    try {
      const v = await p;
      outage.ok();
      return v;
    } catch (err) {
      if (err instanceof BackendUnavailableError) outage.fail(err.message);
      throw err;
    }
  }

  /** Subscribes to the bus. Call once before serving. */
  async start(): Promise<void> {
    await this.bus.subscribe((mailboxId, raw) => this.#arrived(mailboxId, raw));
  }

  /** Another relay's announcement, from the bus. */
  #arrived(mailboxId: string, raw: string): void {
    const to = this.#local.get(mailboxId);
    if (!to) return;
    const id = idOfRaw(raw);
    if (!id) {
      this.#log.warn("bus announcement without an id dropped", { mailbox_bytes: raw.length });
      return;
    }
    this.#push(to, mailboxId, id, raw);
  }

  /** Pushes to each recipient; one that throws neither stops the others nor fails the send. */
  #push(to: Recipient | Set<Recipient>, mailboxId: string, id: string, raw: string): void {
    if (!(to instanceof Set)) return this.#pushOne(to, mailboxId, id, raw);
    for (const r of to) this.#pushOne(r, mailboxId, id, raw);
  }

  #pushOne(r: Recipient, mailboxId: string, id: string, raw: string): void {
    try {
      r.push(mailboxId, id, raw);
    } catch (err) {
      this.#log.error("push to a live socket failed", { err: errorMessage(err) });
    }
  }

  /**
   * Announces an envelope accepted here: pushed to this relay's live sockets for the mailbox now
   * (no round trip through the bus, which does not hand a relay its own announcements), and
   * published for the other relays.
   */
  #announce(mailboxId: string, id: string, raw: string): Promise<void> {
    const to = this.#local.get(mailboxId);
    if (to) this.#push(to, mailboxId, id, raw);
    return this.#publish(mailboxId, raw);
  }

  /** Adds a live recipient for `mailboxId` on this relay. */
  listen(mailboxId: string, r: Recipient): void {
    const to = this.#local.get(mailboxId);
    if (to === undefined) this.#local.set(mailboxId, r);
    else if (to instanceof Set) to.add(r);
    else if (to !== r) this.#local.set(mailboxId, new Set([to, r]));
  }

  /** Removes a recipient added with {@linkcode listen}. */
  unlisten(mailboxId: string, r: Recipient): void {
    const to = this.#local.get(mailboxId);
    if (to === r) this.#local.delete(mailboxId);
    else if (to instanceof Set && to.delete(r) && to.size === 1) {
      this.#local.set(mailboxId, to.values().next().value!);
    }
  }

  /** How many mailboxes have a live socket here. */
  get liveMailboxes(): number {
    return this.#local.size;
  }

  /**
   * Stores the (already validated) envelope in the mailbox it names and announces it. Resolves
   * once it is durable and announced; a duplicate id is announced again (the first announcement
   * may have been lost) and counts as accepted. Rejects with `UnknownMailboxError`,
   * `MailboxFullError` or `BackendUnavailableError`; then the client is told it was not accepted.
   *
   * The envelope of a pair mailbox this relay knows to be registered is announced while the
   * store writes it, so a live reader does not wait for the fsync; `accepted` still waits for
   * both. A refused or failed store may therefore have reached a live reader already: the sender
   * retries with the same id and the reader drops the duplicate. Anything else (a request inbox,
   * `inbox`, which needs no registration; a mailbox this relay has not seen registered; one that
   * was just refused as full) is stored first and announced only once stored, so a full inbox
   * pushes nothing to its owner and sends to made-up mailbox ids never reach the bus.
   */
  async accept(envelope: EnvelopeV2, inbox = false): Promise<"stored" | "duplicate"> {
    const mailboxId = envelope.to;
    const raw = serializeEnvelopeV2(envelope);
    // The write is handed to the store before anything is pushed, and stores apply commands in
    // the order they get them (the SQLite writer's queue, Redis's one connection): a reader that
    // opens the mailbox after the push below reads it from the store. Keep it first.
    const put = this.#put(mailboxId, envelope.id, raw, inbox);
    const announced = !inbox && this.#known.has(mailboxId)
      ? this.#announce(mailboxId, envelope.id, raw)
      : put.then(() => this.#announce(mailboxId, envelope.id, raw));
    const [stored, published] = await Promise.allSettled([put, announced]);
    // The store's refusal names the reason (unknown, full); a failed publish only says "later".
    const err = stored.status === "rejected"
      ? stored.reason
      : published.status === "rejected"
      ? published.reason
      : undefined;
    if (!inbox) {
      if (stored.status === "fulfilled") this.#remember(mailboxId);
      else if (err instanceof UnknownMailboxError || err instanceof MailboxFullError) {
        this.#known.delete(mailboxId);
      }
    }
    if (err !== undefined) {
      // Inline rather than through #watch: this runs for every message.
      if (err instanceof BackendUnavailableError) this.#refused.send.fail(err.message);
      throw err;
    }
    this.#refused.send.ok();
    return (stored as PromiseFulfilledResult<"stored" | "duplicate">).value;
  }

  #remember(mailboxId: string): void {
    if (this.#known.has(mailboxId)) return;
    this.#known.add(mailboxId);
    if (this.#known.size > KNOWN_MAILBOXES) {
      this.#known.delete(this.#known.values().next().value!);
    }
  }

  async #put(
    mailboxId: string,
    id: string,
    raw: string,
    inbox: boolean,
  ): Promise<"stored" | "duplicate"> {
    const t0 = performance.now();
    const result = await this.mailbox.put(mailboxId, { id, raw }, inbox ? { inbox } : undefined);
    this.#metrics?.observe(
      "backend_seconds",
      { op: "mailbox_put" },
      (performance.now() - t0) / 1000,
    );
    return result;
  }

  /**
   * Announces on the bus. A failure is `BackendUnavailableError`: the envelope may be stored and
   * the reader gets it at its next open, but the sender is told it was not accepted, so it retries
   * with the same id (then a duplicate) and live readers are not left waiting for a reconnect.
   */
  async #publish(mailboxId: string, raw: string): Promise<void> {
    const t0 = performance.now();
    try {
      await this.bus.publish(mailboxId, raw);
    } catch (err) {
      throw err instanceof BackendUnavailableError
        ? err
        : new BackendUnavailableError(`bus publish failed: ${errorMessage(err)}`);
    }
    this.#metrics?.observe(
      "backend_seconds",
      { op: "bus_publish" },
      (performance.now() - t0) / 1000,
    );
  }

  /** Registers a mailbox that was opened (or notes that it was opened again). */
  async open(mailboxId: string, kind: MailboxKind): Promise<void> {
    await this.#watch(this.#refused.open, this.mailbox.register(mailboxId, kind));
    if (kind === "pair") this.#remember(mailboxId);
  }

  /** A page of pending envelopes, oldest first. */
  pending(mailboxId: string, afterSeq: number, limit: number): Promise<StoredEnvelope[]> {
    return this.#watch(this.#refused.read, this.mailbox.pending(mailboxId, { afterSeq, limit }));
  }

  /** Forgets envelopes the recipient has stored. */
  ack(mailboxId: string, ids: readonly string[]): Promise<number> {
    return this.#watch(this.#refused.ack, this.mailbox.ack(mailboxId, ids));
  }
}

/** Reads the id out of canonical envelope JSON without parsing the whole thing. */
export function idOfRaw(raw: string): string | undefined {
  // serializeEnvelopeV2 always writes {"v":2,"id":"...", ...}; ids never contain quotes.
  const start = raw.indexOf('"id":"');
  if (start < 0) return undefined;
  const end = raw.indexOf('"', start + 6);
  return end < 0 ? undefined : raw.slice(start + 6, end);
}
