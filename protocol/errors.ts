/**
 * Error codes a relay sends (v1 and v2; docs/PROTOCOL.md says which version uses which), WebSocket close codes, and the result type every parser returns:
 * errors are data (`{ok: false, code, message}`), which the relay sends back as an error frame.
 *
 * @module
 */

/** Every error code a relay sends, with its meaning. */
export const ERROR_CODES = {
  bad_json: "the frame is not valid JSON text",
  bad_frame: "the frame is JSON but not a valid frame (missing or mistyped field)",
  unsupported_version: "the frame or envelope has a protocol version this relay does not speak",
  unknown_type: "the frame's type is not one this side accepts",
  frame_too_large: "the frame is larger than the relay accepts (the socket is then closed, 1009)",
  binary_frame: "binary frames are not part of the protocol; send JSON text",
  not_authenticated: "this frame needs an authenticated socket; answer the challenge first",
  already_authenticated: "the socket is already authenticated",
  auth_failed: "the signature does not verify for that key, challenge and relay URL",
  auth_timeout: "the socket did not authenticate in time (the socket is then closed, 1008)",
  spoofed_sender: "the envelope's `from` is not the key authenticated on this socket",
  mailbox_full: "the recipient's mailbox is at its message or byte limit; try later",
  unknown_mailbox:
    "v2: no mailbox with that id is registered (send to the recipient's request inbox instead)",
  not_open: "v2: the frame names a mailbox this socket has not opened",
  rate_limited: "too many frames; retry after `retry_after_ms`",
  unavailable: "the relay cannot store messages right now (backend down); nothing was stored",
  internal: "the relay failed unexpectedly; nothing was stored",
} as const;

/** An error code from {@linkcode ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** WebSocket close codes the relay uses. */
export const CLOSE_CODES = {
  /** Relay shutting down; reconnect elsewhere or later. */
  goingAway: 1001,
  /** Binary data on a text-only protocol. */
  unsupportedData: 1003,
  /** Auth failed or timed out, or another policy violation. */
  policy: 1008,
  /** Frame over the size limit. */
  tooBig: 1009,
  /** Unexpected relay failure. */
  internal: 1011,
  /** The socket fell too far behind (slow consumer); its messages stay in the mailbox. */
  tryAgainLater: 1013,
} as const;

/** A parse result: the value, or an error code with a message for the error frame. */
export type Parsed<T> =
  | { ok: true; value: T }
  | { ok: false; code: ErrorCode; message: string; id?: string };
