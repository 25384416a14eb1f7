/**
 * Errors the client library throws, as data: every failure carries a `code` from one union,
 * {@linkcode ClientErrorCode}, so a UI (the CLI, a bot) maps codes to its own words and exit
 * codes. Messages are one sentence in lower case, naming the file, key, relay or setting involved,
 * never key material.
 *
 * @module
 */
import type { ErrorCode } from "@chat-p2p/protocol";

/** Failures of the profile store (files under `~/.chat-<profile>/`). */
export type StoreErrorCode =
  /** `HOME` is not set, so there is no profile directory. */
  | "no_home"
  /** The profile name cannot be a directory name. */
  | "invalid_profile"
  /** The profile has no identity yet (`init` makes one). */
  | "no_identity"
  /** identity.json exists but cannot be used. */
  | "identity_corrupt"
  /** The secret key is protected and no passphrase was given. */
  | "passphrase_required"
  /** The passphrase does not open the secret key. */
  | "wrong_passphrase"
  /** contacts.json exists but is not a JSON object, or an entry in the way cannot be read. */
  | "contacts_corrupt"
  /** No contact, key or fingerprint matches what was asked for. */
  | "unknown_contact"
  /** The name cannot be a contact name (see contacts.ts, `explainContactName`). */
  | "invalid_contact_name"
  /** The name (or one too like it) or the key is already saved. */
  | "contact_exists"
  /** The contact's key was verified, and this would replace it with another one. */
  | "key_changed"
  /** config.json cannot be read, or a setting's value is not valid. */
  | "bad_config"
  /** A file could not be read or written. */
  | "io";

/** Failures talking to a relay that the client detects itself (no error frame involved). */
export type ConnectionErrorCode =
  /** No TCP connection or WebSocket handshake (refused, DNS, wrong path). */
  | "unreachable"
  /** The relay did not answer in time (connect, challenge, ready, accepted). */
  | "timeout"
  /** The socket closed (or was never open) while something waited on it. */
  | "connection_closed"
  /** The relay URL is not a ws://, wss://, http:// or https:// URL. */
  | "bad_url"
  /** The relay sent something this client cannot make sense of. */
  | "protocol"
  /** The client itself closed the connection or the client. */
  | "closed";

/**
 * A relay failure: a code the relay sent in an error frame ({@linkcode ErrorCode}, plus codes a
 * newer relay may add) or one the client found itself ({@linkcode ConnectionErrorCode};
 * `frame_too_large` is also checked locally before sending).
 */
export type RelayErrorCode = ErrorCode | ConnectionErrorCode;

/** A message that may not be sent, whatever the relay (see limits.ts, `checkMessage`). */
export type MessageErrorCode =
  /** Nothing but white space. */
  | "empty_message"
  /** More characters (grapheme clusters) than a message may have. */
  | "message_too_long"
  /** More bytes, encoded, than one message carries. */
  | "message_too_large";

/** Every code a {@linkcode ClientError} can carry. */
export type ClientErrorCode = StoreErrorCode | RelayErrorCode | MessageErrorCode;

/** A failure of the client library with a machine-readable code. */
export class ClientError extends Error {
  /** What went wrong, for programs. */
  readonly code: ClientErrorCode;

  /** Creates an error with `code` and a message for people. */
  constructor(code: ClientErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClientError";
    this.code = code;
  }
}

/** A failure talking to a relay; `fromRelay` says whether the relay sent the code. */
export class RelayError extends ClientError {
  /** Relay error code or client-side code. */
  declare readonly code: RelayErrorCode;
  /** Envelope id the error is about, if any. */
  readonly id: string | undefined;
  /** Milliseconds the relay asked to wait before retrying (`rate_limited`). */
  readonly retryAfterMs: number | undefined;
  /** True when `code` and `message` come from an error frame the relay sent about an envelope. */
  readonly fromRelay: boolean;

  /** Creates a relay error. */
  constructor(
    code: RelayErrorCode,
    message: string,
    opts: { id?: string; retryAfterMs?: number; fromRelay?: boolean } = {},
  ) {
    super(code, message);
    this.name = "RelayError";
    this.id = opts.id;
    this.retryAfterMs = opts.retryAfterMs;
    this.fromRelay = opts.fromRelay ?? false;
  }
}
