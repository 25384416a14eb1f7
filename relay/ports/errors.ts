/**
 * What the backend adapters report, shared by both ports: the two refusals a send can meet
 * (`mailbox_full`, `unavailable`) and the state `/readyz` shows. Adapters map every vendor failure
 * to one of these, so the session never sees a Redis, Kafka or SQLite error.
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

/** The backend could not be reached or failed; nothing was stored. */
export class BackendUnavailableError extends Error {
  override name = "BackendUnavailableError";
  readonly code = "unavailable" as const;
}

/** The message of an error, or the text of anything else thrown. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
