/**
 * The chat-p2p client library: everything a bot or a UI needs to talk through a relay, with no
 * terminal code.
 *
 * - {@linkcode ChatClient} (client.ts): the facade. Open a profile, connect, `send` (returns the
 *   id at once; the outbox takes it from there), receive events (messages, requests, receipts,
 *   accepted, retry, failed, connection state), ack automatically or by hand, accept or block
 *   first-contact requests, close.
 * - {@linkcode ReconnectingRelay} (reconnecting.ts): a sender socket, an inbox socket (the
 *   request inbox only) and a reader socket (pair mailboxes) that reconnect together with
 *   backoff and jitter; {@linkcode connectRelay} (connection.ts): one socket.
 * - {@linkcode Outbox} (outbox.ts) with the one rule for "failed" vs "still queued"
 *   ({@linkcode isPermanentRefusal}); {@linkcode Inbox} (inbox.ts): decrypt, store, write the
 *   sessions, then ack, in batches; {@linkcode ReceiptQueue} (receipts.ts).
 * - {@linkcode Sealer} (sealing.ts): the one place ratchet messages and envelopes are made and
 *   opened; {@linkcode Mailboxes} (mailboxes.ts): the request inbox and the pair mailboxes.
 * - {@linkcode ProfileStore} (store/): identity, contacts, history, sessions and requests on the
 *   person's own disk, encrypted at rest with a passphrase (store/at_rest.ts);
 *   contacts.ts: names, verification, add/remove/rename ({@linkcode addContact}, ...);
 *   config.ts: per-profile settings ({@linkcode ProfileConfig}); conversations.ts: arrival order,
 *   unread messages and the list of conversations ({@linkcode ReadMarks},
 *   {@linkcode conversations}).
 * - {@linkcode safetyNumber} (safety_number.ts): the 60 digits two people compare to verify keys.
 * - {@linkcode checkMessage} (limits.ts): how long a message may be, in characters (grapheme
 *   clusters) and in encoded bytes; the one check every sender uses.
 * - Errors carry a code from one union, {@linkcode ClientErrorCode} (errors.ts).
 *
 * @example Send a message and wait until the relay has it
 * ```ts ignore
 * import { ChatClient } from "@chat-p2p/client";
 * import { deadline } from "@chat-p2p/protocol/async";
 *
 * const client = await ChatClient.open({ profile: "alice" });
 * await client.connect("ws://127.0.0.1:8080/ws");
 * const id = client.send("bob", "hi bob"); // in history now, as "sending"
 * const outcome = await deadline(client.outcome(id), 10_000); // { state: "accepted" }
 * console.log(id, outcome.state);
 * await client.close();
 * ```
 *
 * @example Receive: every message, stored in history before the event, acked after it
 * ```ts ignore
 * import { ChatClient } from "@chat-p2p/client";
 *
 * const client = await ChatClient.open({ profile: "bob" });
 * client.on("message", ({ message, duplicate }) => {
 *   if (!duplicate) console.log(`${message.contact ?? message.fingerprint}: ${message.text}`);
 * });
 * client.on("connection", (e) => console.error(e.state, e.error?.message ?? ""));
 * await client.connect("ws://127.0.0.1:8080/ws");
 * ```
 *
 * @module
 */
export * from "./errors.ts";
export * from "./limits.ts";
export * from "./client.ts";
export * from "./connection.ts";
export * from "./reconnecting.ts";
export * from "./outbox.ts";
export * from "./inbox.ts";
export * from "./receipts.ts";
export * from "./sealing.ts";
export * from "./mailboxes.ts";
export * from "./store/profile_store.ts";
export * from "./store/contacts.ts";
export * from "./store/config.ts";
export * from "./store/conversations.ts";
export * from "./safety_number.ts";
export * from "./store/message_log.ts";
export * from "./store/key_protection.ts";
export * from "./store/at_rest.ts";
export * from "./store/sessions.ts";
export * from "./store/requests.ts";
