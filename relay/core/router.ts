/**
 * Store-then-notify delivery. `accept` writes an envelope to its mailbox (durable), then announces
 * it on the bus; every relay holding a live socket for that mailbox pushes it. The router knows
 * the sockets of this relay only, and routes by opaque mailbox id.
 *
 * @module
 */
import { type Envelope, mailboxIdOf, serializeEnvelope } from "@chat-p2p/protocol";
import type { Bus } from "../ports/bus.ts";
import type { Mailbox, StoredEnvelope } from "../ports/mailbox.ts";
import { BackendUnavailableError, errorMessage } from "../ports/errors.ts";
import { type Logger, OutageLog } from "../infra/log.ts";
import type { Metrics } from "../infra/metrics.ts";

/** Something on this relay that wants envelopes for one mailbox (an authenticated session). */
export interface Recipient {
  /** Called for each announced envelope for the mailbox; may repeat ids. */
  push(id: string, raw: string): void;
}

/** Routes envelopes between sessions, the mailbox and the bus. */
export class Router {
  readonly mailbox: Mailbox;
  readonly bus: Bus;
  #log: Logger;
  #metrics?: Metrics;
  #local = new Map<string, Set<Recipient>>();
  /** Backend refusals, reported per outage rather than per request (see OutageLog). */
  #refused: { send: OutageLog; ack: OutageLog; read: OutageLog };

  constructor(mailbox: Mailbox, bus: Bus, log: Logger, metrics?: Metrics) {
    this.mailbox = mailbox;
    this.bus = bus;
    this.#log = log;
    this.#metrics = metrics;
    this.#refused = {
      send: new OutageLog(log, "sends refused: backend unavailable"),
      ack: new OutageLog(log, "acks refused: backend unavailable"),
      read: new OutageLog(log, "mailbox reads failed: backend unavailable"),
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
    await this.bus.subscribe((mailboxId, raw) => this.#announce(mailboxId, raw));
  }

  #announce(mailboxId: string, raw: string): void {
    const set = this.#local.get(mailboxId);
    if (!set) return;
    const id = idOfRaw(raw);
    if (!id) {
      this.#log.warn("bus announcement without an id dropped", { mailbox_bytes: raw.length });
      return;
    }
    for (const r of set) r.push(id, raw);
  }

  /** Registers a live recipient for `mailboxId` on this relay. */
  register(mailboxId: string, r: Recipient): void {
    let set = this.#local.get(mailboxId);
    if (!set) this.#local.set(mailboxId, set = new Set());
    set.add(r);
  }

  /** Removes a recipient registered with {@linkcode register}. */
  unregister(mailboxId: string, r: Recipient): void {
    const set = this.#local.get(mailboxId);
    if (!set) return;
    set.delete(r);
    if (set.size === 0) this.#local.delete(mailboxId);
  }

  /** How many mailboxes have a live socket here. */
  get liveMailboxes(): number {
    return this.#local.size;
  }

  /**
   * Stores the (already validated and authorised) envelope, then announces it. Resolves once it
   * is durable and announced; a duplicate id is announced again (the first announcement may have
   * been lost) and counts as accepted. Rejects with `MailboxFullError` or
   * `BackendUnavailableError`; then the client is told it was not accepted.
   */
  accept(envelope: Envelope): Promise<"stored" | "duplicate"> {
    return this.#watch(this.#refused.send, this.#accept(envelope));
  }

  async #accept(envelope: Envelope): Promise<"stored" | "duplicate"> {
    const mailboxId = mailboxIdOf(envelope);
    const raw = serializeEnvelope(envelope);
    const t0 = performance.now();
    const result = await this.mailbox.put(mailboxId, { id: envelope.id, raw });
    this.#metrics?.observe(
      "backend_seconds",
      { op: "mailbox_put" },
      (performance.now() - t0) / 1000,
    );
    const t1 = performance.now();
    try {
      await this.bus.publish(mailboxId, raw);
    } catch (err) {
      // Stored but not announced: the recipient still gets it on its next connect. Tell the
      // sender it was not accepted, so it retries with the same id (which is then a duplicate).
      throw err instanceof BackendUnavailableError
        ? err
        : new BackendUnavailableError(`bus publish failed: ${errorMessage(err)}`);
    }
    this.#metrics?.observe(
      "backend_seconds",
      { op: "bus_publish" },
      (performance.now() - t1) / 1000,
    );
    return result;
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
  // serializeEnvelope always writes {"v":1,"id":"...", ...}; ids never contain quotes.
  const start = raw.indexOf('"id":"');
  if (start < 0) return undefined;
  const end = raw.indexOf('"', start + 6);
  return end < 0 ? undefined : raw.slice(start + 6, end);
}
