/**
 * The `Mailbox` port: where the relay keeps envelopes for a recipient until the recipient acks
 * them. Chat-shaped, not vendor-shaped; implemented by memory, SQLite and Redis adapters, all of
 * which pass `mailbox/contract.ts`.
 *
 * @module
 */
import type { BackendStatus } from "./errors.ts";

/** An envelope held in a mailbox. */
export interface StoredEnvelope {
  /** Envelope id (unique within a mailbox; a second put of the same id is a duplicate). */
  id: string;
  /** Canonical envelope JSON text, exactly as it will be delivered (`serializeEnvelope`). */
  raw: string;
  /** Position in the mailbox: strictly increasing in insertion order within one mailbox. */
  seq: number;
  /** When the relay stored it (ms since the epoch); drives the age limit. */
  receivedAt: number;
}

/** Per-mailbox limits. Every adapter enforces them identically. */
export interface MailboxLimits {
  /** Most envelopes one mailbox holds. */
  maxCount: number;
  /** Most bytes (sum of `raw` UTF-8 lengths) one mailbox holds. */
  maxBytes: number;
  /** Envelopes older than this are dropped, never delivered. */
  maxAgeMs: number;
}

/** Defaults: 10,000 envelopes, 64 MiB, 30 days per mailbox. */
export const DEFAULT_MAILBOX_LIMITS: MailboxLimits = {
  maxCount: 10_000,
  maxBytes: 64 * 1024 * 1024,
  maxAgeMs: 30 * 24 * 3600 * 1000,
};

/** Where envelopes wait for their recipient. */
export interface Mailbox {
  /** Adapter name for logs and /healthz: "memory", "sqlite", "redis". */
  readonly kind: string;
  /**
   * Durably stores an envelope (durable when the promise resolves). Returns "duplicate" without
   * storing again when the mailbox already holds that id. Throws {@linkcode MailboxFullError} at
   * a limit and {@linkcode BackendUnavailableError} when the store is unreachable.
   */
  put(
    mailboxId: string,
    envelope: { id: string; raw: string },
    now?: number,
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
  /** Drops expired envelopes everywhere; returns how many. */
  sweep(now?: number): Promise<number>;
  /** Whether the backend answers right now. */
  check(): Promise<BackendStatus>;
  /** Releases connections and files. */
  close(): Promise<void>;
}
