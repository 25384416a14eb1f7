/**
 * The `Bus` port: "mailbox X has envelope E" announcements between relays. Every other relay that
 * holds a live socket for X pushes E to it; the relay that published pushes to its own sockets
 * itself, without the round trip (`core/router.ts`). Implemented in-process (embedded mode) and on
 * Kafka; both pass `bus/contract.ts`.
 *
 * @module
 */
import type { BackendStatus } from "./errors.ts";

/** Receives every announcement another bus instance (another relay) published. */
export type BusHandler = (mailboxId: string, raw: string) => void;

/** The bus between relays. */
export interface Bus {
  /** Adapter name for logs and /healthz: "memory", "kafka". */
  readonly kind: string;
  /**
   * Announces that `raw` (canonical envelope JSON) was stored in `mailboxId`. Announcements for
   * one mailbox reach subscribers in publish order. Resolves once the bus has taken it (Kafka:
   * acknowledged by all in-sync replicas); adapters may batch concurrent publishes.
   */
  publish(mailboxId: string, raw: string): Promise<void>;
  /**
   * Registers the handler for announcements other instances publish after this resolves; this
   * instance's own announcements never reach it. Called once per bus instance, before publishing.
   */
  subscribe(handler: BusHandler): Promise<void>;
  /** Whether the bus answers right now. */
  check(): Promise<BackendStatus>;
  /** Stops consuming and releases connections. */
  close(): Promise<void>;
}
