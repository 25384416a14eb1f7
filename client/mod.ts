/**
 * The chat-p2p client library: the connection to a relay, the outbox and inbox, and the profile
 * store (identity, contacts, history on the person's own disk). No terminal code: the CLI and any
 * bot or other UI build on it.
 *
 * @module
 */
export * from "./errors.ts";
export * from "./connection.ts";
export * from "./outbox.ts";
export * from "./inbox.ts";
export * from "./store/profile_store.ts";
export * from "./store/message_log.ts";
export * from "./store/key_protection.ts";
