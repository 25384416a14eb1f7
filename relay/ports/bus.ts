/**
 * The `Bus` port: "mailbox X has envelope E" announcements between relays. Every relay that holds
 * a live socket for X pushes E to it. Implemented in-process (embedded mode) and on Kafka; both
 * pass `bus/contract.ts`.
 *
 * @module
 */
import type { BackendStatus } from "./errors.ts";

/** Receives every announcement published on the bus (by any relay, this one included). */
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
   * Registers the handler for announcements published after this resolves. Called once per bus
   * instance, before publishing.
   */
  subscribe(handler: BusHandler): Promise<void>;
  /** Whether the bus answers right now. */
  check(): Promise<BackendStatus>;
  /** Stops consuming and releases connections. */
  close(): Promise<void>;
}
