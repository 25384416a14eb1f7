/**
 * What the backend adapters report, shared by both ports: the refusals a send can meet
 * (`unknown_mailbox`, `mailbox_full`, `unavailable`) and the state `/readyz` shows. Adapters map
 * every vendor failure to one of these, so the session never sees a Redis, Kafka or SQLite error.
 *
 * @module
 */

/** State of a backend, for /healthz and /readyz. */
export interface BackendStatus {
  ok: boolean;
  /** Short human detail ("connected", the error message, ...). Never secrets. */
  detail: string;
}

/** The mailbox is at its count or byte limit; nothing was stored. */
export class MailboxFullError extends Error {
  override name = "MailboxFullError";
  readonly code = "mailbox_full" as const;
}

/** The message of a put refused at a cap (the same text from every adapter). */
export function fullMessage(held: number, limit: number, what: "messages" | "bytes"): string {
  return `mailbox holds ${held} ${what} (limit ${limit})`;
}

/** Nobody registered the mailbox (or its registration lapsed); nothing was stored. */
export class UnknownMailboxError extends Error {
  override name = "UnknownMailboxError";
  readonly code = "unknown_mailbox" as const;
}

/** The backend could not be reached or failed; nothing was stored. */
export class BackendUnavailableError extends Error {
  override name = "BackendUnavailableError";
  readonly code = "unavailable" as const;
}

/** The message of an error, or the text of anything else thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
