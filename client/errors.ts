/**
 * Errors the client library throws, as data: every failure carries a `code` from one union, so a
 * UI (the CLI, a bot) maps codes to its own words and exit codes. Messages are one sentence in
 * lower case, naming the file, key or setting involved, never key material.
 *
 * @module
 */

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
  /** contacts.json exists but is not a JSON object. */
  | "contacts_corrupt"
  /** No contact, key or fingerprint matches what was asked for. */
  | "unknown_contact"
  /** A file could not be read or written. */
  | "io";

/** A failure of the client library with a machine-readable code. */
export class ClientError extends Error {
  /** What went wrong, for programs. */
  readonly code: StoreErrorCode;

  /** Creates an error with `code` and a message for people. */
  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClientError";
    this.code = code;
  }
}
