/**
 * Delivery: `accept` writes an envelope to its mailbox (durable) and announces it (for a pair
 * mailbox known to be registered while the write is under way, otherwise after it): it pushes it to
 * this relay's live sockets for that mailbox at once, and publishes it on the bus, where every
 * other relay holding a live socket for the mailbox pushes it. The router knows the sockets of
 * this relay only, and routes by opaque mailbox id (the envelope's `to`).
 *
 * A relay alone skips the bus. With a store that relays share (Redis), each relay holds a lease
 * there ({@linkcode Mailbox.join}) and every put counts the other leases, in the same atomic step
 * as the write. When the last put found none, the next announcement is published only if its own
 * put then counts another relay: a relay that joined before that put subscribed to the bus before
 * it joined, so it hears the publish; one that joined after it reads the envelope from the store
 * when its reader opens the mailbox. A relay whose lease lapsed (its renewals failed for a whole
 * lease) may have been counted out, so its sockets are closed, and their readers reopen.
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
  /**
   * Announcements for its mailboxes may have been skipped (this relay's lease in the shared
   * store lapsed): the recipient must read them again (a session closes, so its client reopens).
   */
  lost?(): void;
}

/**
 * Most pair mailboxes the router remembers as registered (about 5 MB); one it forgot is stored
 * first again, then announced, until a put of it succeeds.
 */
const KNOWN_MAILBOXES = 100_000;

/**
 * This relay's lease in a shared store, and how often it is renewed: a relay that stops renewing
 * (killed) is counted out 30 s later; one alive has missed five renewals before that.
 * `skipAlone: false` keeps the lease but publishes every announcement, for a rolling upgrade from
 * relays that take no lease (`RELAY_PUBLISH_ALONE`).
 */
export const LEASE = { leaseMs: 30_000, renewMs: 5_000, skipAlone: true };

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
  #refused: {
    send: OutageLog;
    ack: OutageLog;
    read: OutageLog;
    open: OutageLog;
    lease: OutageLog;
  };
  /** This relay's token in a shared store's membership (undefined: the store has none). */
  readonly #member: string | undefined;
  /** The token puts are counted for: `#member`, unless publishing alone anyway (`skipAlone`). */
  readonly #countAs: string | undefined;
  /** The last put counted no other relay: announcements wait for their put's count. */
  #alone = false;
  /** Whether this relay holds a lease, the renewal timer and the renewal in flight. */
  #joined = false;
  #renewal?: ReturnType<typeof setInterval>;
  #renewing?: Promise<void>;
  #subscribed = false;
  /**
   * Until when (performance.now() ms) the lease surely runs: the send time of the last renewal
   * answered, plus the lease. Past it, other relays may have counted this one out.
   */
  #safeUntil = 0;
  /** Past `#safeUntil` without an answer: live sockets were closed once already. */
  #cutOff = false;

  #lease: typeof LEASE;

  constructor(mailbox: Mailbox, bus: Bus, log: Logger, metrics?: Metrics, lease = LEASE) {
    this.mailbox = mailbox;
    this.#lease = lease;
    this.bus = bus;
    this.#log = log;
    this.#metrics = metrics;
    this.#refused = {
      send: new OutageLog(log, "sends refused: backend unavailable"),
      ack: new OutageLog(log, "acks refused: backend unavailable"),
      read: new OutageLog(log, "mailbox reads failed: backend unavailable"),
      open: new OutageLog(log, "mailbox opens failed: backend unavailable"),
      lease: new OutageLog(log, "relay lease not renewed: backend unavailable"),
    };
    this.#member = mailbox.join ? crypto.randomUUID() : undefined;
    this.#countAs = lease.skipAlone ? this.#member : undefined;
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

  /**
   * Subscribes to the bus, then (a shared store) takes this relay's lease and renews it. Call
   * before serving; may be called again after it threw.
   */
  async start(): Promise<void> {
    if (!this.#subscribed) {
      await this.bus.subscribe((mailboxId, raw) => this.#arrived(mailboxId, raw));
      this.#subscribed = true;
    }
    if (this.#member === undefined || this.#joined) return;
    // Joined only once subscribed: a relay that counts this one then publishes to it.
    const sent = performance.now();
    await this.mailbox.join!(this.#member, this.#lease.leaseMs);
    this.#safeUntil = sent + this.#lease.leaseMs;
    this.#joined = true;
    this.#renewal = setInterval(() => {
      if (performance.now() > this.#safeUntil && !this.#cutOff) {
        // Not renewed in time (Redis unreachable from here, a renewal stuck, a stall): other
        // relays may be skipping the bus for this one's readers; they reconnect, maybe elsewhere.
        this.#cutOff = true;
        this.#lapsed("relay lease not renewed in time");
      }
      this.#renewing ??= this.#renew().finally(() => this.#renewing = undefined);
    }, this.#lease.renewMs);
    Deno.unrefTimer(this.#renewal);
  }

  /**
   * Renews the lease. Judged by this relay's own clock as well as the store's answer: an answer
   * that comes after the lease would have ended (Redis stalled with the command queued) may hide a
   * lapse, so it counts as one.
   */
  async #renew(): Promise<void> {
    const sent = performance.now();
    try {
      const running = await this.#watch(
        this.#refused.lease,
        this.mailbox.join!(this.#member!, this.#lease.leaseMs),
      );
      if (!this.#joined) return; // stopped meanwhile
      const late = performance.now() > this.#safeUntil;
      this.#safeUntil = sent + this.#lease.leaseMs;
      this.#cutOff = false;
      if (!running || late) this.#lapsed("relay lease had lapsed");
    } catch (err) {
      if (!(err instanceof BackendUnavailableError)) {
        this.#log.error("relay lease renewal failed", { err: errorMessage(err) });
      }
    }
  }

  /**
   * The lease lapsed or may have: other relays may have skipped the bus for this one's readers,
   * so every live socket is closed and its reader reopens (reading the store).
   */
  #lapsed(why: string): void {
    this.#log.warn(`${why}; closing live sockets so their readers reopen`, {
      mailboxes: this.#local.size,
    });
    this.#metrics?.inc("lease_lapses_total");
    for (const to of [...this.#local.values()]) {
      for (const r of to instanceof Set ? [...to] : [to]) {
        try {
          r.lost?.();
        } catch (err) {
          this.#log.error("closing a socket after a lapse failed", { err: errorMessage(err) });
        }
      }
    }
  }

  /** Stops renewing and ends the lease (shutdown; the bus and store are closed after it). */
  async stop(): Promise<void> {
    clearInterval(this.#renewal);
    if (!this.#joined) return;
    this.#joined = false;
    await this.#renewing; // else it could take the lease again after it ended
    try {
      await this.mailbox.leave?.(this.#member!);
    } catch (err) {
      this.#log.warn("relay lease not ended", { err: errorMessage(err) });
    }
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
   * Pushes an envelope accepted here to this relay's live sockets for the mailbox (no round trip
   * through the bus, which does not hand a relay its own announcements).
   */
  #pushLocal(mailboxId: string, id: string, raw: string): void {
    const to = this.#local.get(mailboxId);
    if (to) this.#push(to, mailboxId, id, raw);
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

  /**
   * The last put counted no other relay on the store: sends need no bus now (readiness does not
   * wait for it). Never with `skipAlone` off, whose puts are not counted.
   */
  get alone(): boolean {
    return this.#alone;
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
   *
   * On a shared store, the put also counts the other relays: while the last put counted none,
   * even a known mailbox's envelope is published only after its put, and only if that put
   * counted another relay (so a relay alone publishes nothing). Alone, the put of an envelope
   * pushed to a reader here is `live` (`PutOptions.live`): a store may hold it back
   * for that reader's ack to withdraw it.
   */
  async accept(envelope: EnvelopeV2, inbox = false): Promise<"stored" | "duplicate"> {
    const mailboxId = envelope.to;
    const raw = serializeEnvelopeV2(envelope);
    // The write is handed to the store before anything is pushed, and stores apply commands in
    // the order they get them (the SQLite writer's queue, Redis's one connection): a reader that
    // opens the mailbox after the push below reads it from the store. Keep it first.
    // `others`: how many other relays share the store, counted by the put (undefined: not shared
    // or not counted); with none, nothing is published.
    let others: number | undefined;
    // Alone, with a reader here: nothing is published before the put, so only that reader can
    // ack the envelope, and the store may hold the write back for the ack to withdraw it
    // (PutOptions.live). A withdrawn put resolves without a count: nothing to publish either.
    const known = !inbox && this.#known.has(mailboxId);
    const live = known && this.#alone && this.#local.has(mailboxId);
    const put = this.#put(mailboxId, envelope.id, raw, inbox, live, (n) => {
      others = n;
      this.#alone = n === 0;
    });
    const publishCounted = () => {
      const withdrawn = live && others === undefined;
      if (withdrawn) this.#metrics?.inc("mailbox_puts_withdrawn_total");
      return others === 0 || withdrawn
        ? this.#metrics?.inc("bus_publishes_skipped_total")
        : this.#publish(mailboxId, raw);
    };
    let announced: Promise<void>;
    if (known) {
      this.#pushLocal(mailboxId, envelope.id, raw);
      announced = this.#alone ? put.then(publishCounted) : this.#publish(mailboxId, raw);
    } else {
      announced = put.then(() => {
        this.#pushLocal(mailboxId, envelope.id, raw);
        return publishCounted();
      });
    }
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
    live: boolean,
    peers: (others: number) => void,
  ): Promise<"stored" | "duplicate"> {
    const t0 = performance.now();
    const result = await this.mailbox.put(mailboxId, { id, raw }, {
      inbox,
      member: this.#countAs,
      peers,
      live,
    });
    // A live put's time is mostly its hold (or its reader's ack), not the store's.
    if (!live) {
      this.#metrics?.observe(
        "backend_seconds",
        { op: "mailbox_put" },
        (performance.now() - t0) / 1000,
      );
    }
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
