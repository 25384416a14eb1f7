/**
 * The `Mailbox` port: where the relay keeps envelopes for a mailbox until its reader acks them,
 * and which mailboxes exist. Chat-shaped, not vendor-shaped; implemented by memory, SQLite and
 * Redis adapters, all of which pass `mailbox/contract.ts`.
 *
 * Protocol v2: a mailbox id is opaque (a hash the reader's `open` proves it may read). A mailbox
 * is **registered** by its first `open` and stays registered while it is opened at least once
 * per maximum age; sends without a `key` go only to registered mailboxes. Request inboxes also
 * take sends before they are registered (`{inbox: true}`: the session checked that the id is the
 * inbox of the key given). Stored times are coarse on purpose: an envelope's arrival is kept to
 * the hour and an open to the day, which is all expiry needs. Positions (`seq`) are per mailbox:
 * nothing counts across mailboxes.
 *
 * @module
 */
import type { MailboxKind } from "@chat-p2p/protocol";
import { type BackendStatus, fullMessage } from "./errors.ts";

/** The two kinds of mailbox (the protocol's own type): a pair mailbox or a request inbox. */
export type { MailboxKind };

/** An envelope held in a mailbox. */
export interface StoredEnvelope {
  /** Envelope id (unique within a mailbox; a second put of the same id is a duplicate). */
  id: string;
  /** Canonical envelope JSON text, exactly as it will be delivered (`serializeEnvelopeV2`). */
  raw: string;
  /**
   * Position in the mailbox: strictly increasing in insertion order within one mailbox, from 1
   * for the first envelope a mailbox holds. Never shared across mailboxes.
   */
  seq: number;
  /** The hour it was stored (ms since the epoch, rounded down to the hour); drives expiry. */
  receivedAt: number;
}

/** How much one mailbox holds at most. */
export interface Caps {
  /** Most envelopes. */
  maxCount: number;
  /** Most bytes (sum of `raw` UTF-8 lengths). */
  maxBytes: number;
}

/** Limits. Every adapter enforces them identically. */
export interface MailboxLimits extends Caps {
  /** Envelopes older than this are dropped, never delivered; so are registrations not opened. */
  maxAgeMs: number;
  /** Request inboxes: separate, smaller caps, so flooding one never touches a pair mailbox. */
  inbox: Caps;
}

/** Defaults: pair mailboxes 10,000 envelopes / 64 MiB, request inboxes 1,000 / 16 MiB; 30 days. */
export const DEFAULT_MAILBOX_LIMITS: MailboxLimits = {
  maxCount: 10_000,
  maxBytes: 64 * 1024 * 1024,
  maxAgeMs: 30 * 24 * 3600 * 1000,
  inbox: { maxCount: 1000, maxBytes: 16 * 1024 * 1024 },
};

/**
 * Why a mailbox of `kind` that holds `count` envelopes of `bytes` bytes in all cannot take one
 * more of `size` bytes (the message of its {@linkcode MailboxFullError}); undefined if it can.
 * The memory and SQLite adapters check with it; Redis checks the same inside its put script.
 */
export function overCaps(
  limits: MailboxLimits,
  kind: MailboxKind,
  count: number,
  bytes: number,
  size: number,
): string | undefined {
  const caps: Caps = kind === "inbox" ? limits.inbox : limits;
  if (count + 1 > caps.maxCount) return fullMessage(count, caps.maxCount, "messages");
  if (bytes + size > caps.maxBytes) return fullMessage(bytes, caps.maxBytes, "bytes");
  return undefined;
}

/** One hour and one day in ms: the granularity of stored times. */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

/** `t` rounded down to a multiple of `unit` (ms since the epoch). */
export function roundDown(t: number, unit: number): number {
  return Math.floor(t / unit) * unit;
}

/**
 * Envelopes whose stored hour is before this are expired at `now`. Stored hours are rounded
 * down, so the hour is added: an envelope is kept at least `maxAgeMs` and at most an hour more.
 */
export function envelopeCutoff(now: number, maxAgeMs: number): number {
  return now - maxAgeMs - HOUR_MS;
}

/**
 * Registrations whose last-opened day is before this are forgotten at `now` (kept at least
 * `maxAgeMs` after the last open, at most a day more).
 */
export function registrationCutoff(now: number, maxAgeMs: number): number {
  return now - maxAgeMs - DAY_MS;
}

/** Options of a put. */
export interface PutOptions {
  /**
   * A request-inbox send (the frame had `key` and `to` is its inbox): stored whether or not the
   * inbox is registered, under the inbox caps. Without it the mailbox must be registered
   * ({@linkcode UnknownMailboxError} otherwise) and the caps of its registered kind apply.
   */
  inbox?: boolean;
  /** The time of the put (default now; tests pass others). */
  now?: number;
  /**
   * With a store that relays share ({@linkcode Mailbox.join}): this relay's member token. The put
   * then counts the other members whose lease is running when it is applied (atomically with
   * the write) and hands the count to `peers` before it resolves, stored or duplicate.
   */
  member?: string;
  /** Receives that count (see `member`); not called when the put is refused or fails. */
  peers?: (others: number) => void;
  /**
   * The router has pushed this envelope to a live reader on this relay, and no other relay can
   * have it yet (this relay was alone on a shared store, so nothing was published before the
   * put). A store may then hold the write back for a moment: if that reader acks the envelope
   * meanwhile, the put is withdrawn (never written, answered `stored`, `peers` not called), since
   * a reader acks only what it has durably stored. Stores that write at once ignore it.
   */
  live?: boolean;
}

/** What a sweep removed. */
export interface Swept {
  /** Envelopes past the age limit. */
  envelopes: number;
  /** Registrations not opened within the age limit. */
  mailboxes: number;
}

/** Where envelopes wait for their reader. */
export interface Mailbox {
  /** Adapter name for logs and /healthz: "memory", "sqlite", "redis". */
  readonly kind: string;
  /**
   * Registers the mailbox (its first open) or notes that it was opened today. Resolves once
   * later puts see the registration.
   */
  register(mailboxId: string, kind: MailboxKind, now?: number): Promise<void>;
  /**
   * Durably stores an envelope (durable when the promise resolves). Returns "duplicate" without
   * storing again when the mailbox already holds that id. Throws
   * {@linkcode UnknownMailboxError} when the mailbox is not registered (and the put is not a
   * request-inbox send), {@linkcode MailboxFullError} at a cap and
   * {@linkcode BackendUnavailableError} when the store is unreachable.
   */
  put(
    mailboxId: string,
    envelope: { id: string; raw: string },
    options?: PutOptions,
  ): Promise<"stored" | "duplicate">;
  /**
   * Envelopes waiting in the mailbox, oldest first, with `seq` greater than `afterSeq` (default:
   * from the start), at most `limit` (default 500). Expired envelopes are never returned.
   */
  pending(
    mailboxId: string,
    opts?: { afterSeq?: number; limit?: number; now?: number },
  ): Promise<StoredEnvelope[]>;
  /** Forgets the envelopes with these ids; returns how many were removed. Unknown ids are ignored. */
  ack(mailboxId: string, ids: readonly string[]): Promise<number>;
  /** How many envelopes and bytes the mailbox holds (expired ones may still count until swept). */
  depth(mailboxId: string): Promise<{ count: number; bytes: number }>;
  /** Envelopes and bytes held over all mailboxes (for metrics); optional for adapters. */
  totals?(): Promise<{ count: number; bytes: number }>;
  /** Drops expired envelopes and forgets registrations not opened within the age limit. */
  sweep(now?: number): Promise<Swept>;
  /** Whether the backend answers right now. */
  check(): Promise<BackendStatus>;
  /** Releases connections and files. */
  close(): Promise<void>;
  /**
   * Stores that several relays share (Redis; memory, for tests) keep who shares them, so that a
   * relay alone skips the bus: registers `member` (a token per running relay) with a lease of
   * `leaseMs` from the store's clock, and renews it when called again. Resolves true when the
   * member was registered and its lease still running; false on the first join and after a
   * lapse, when another relay's put may have counted this one out. Adapters whose store one
   * relay owns (SQLite) leave it out.
   */
  join?(member: string, leaseMs: number): Promise<boolean>;
  /** Ends `member`'s lease at once (a relay shutting down). */
  leave?(member: string): Promise<void>;
}
