/**
 * Crash points for the kill -9 tests (tests/crash_test.ts): when the environment variable
 * `CHAT_P2P_CRASH_AT` names a point, the process kills itself with SIGKILL there, as a power cut
 * or `kill -9` would, between two steps of sending or receiving. Unset, or without permission to
 * read it, nothing ever happens.
 *
 * @module
 */

/** The steps a crash can come between, in the order they happen. */
export type CrashPoint =
  /** Send: the ratchet message is computed, the advanced sessions are not written yet. */
  | "send:encrypted"
  /** Send: sessions written, the message is not in history yet. */
  | "send:sessions"
  /** Send: the message (with its ratchet message) is in history, not sent yet. */
  | "send:history"
  /** Send: the envelope is written to the socket, its `accepted` not recorded. */
  | "send:sent"
  /** Receive: a batch is decrypted in memory, nothing written. */
  | "receive:decrypted"
  /** Receive: the batch is in history, the sessions that opened it not written. */
  | "receive:history"
  /** Receive: sessions written, not acked. */
  | "receive:sessions"
  /** Receive: the ack is written to the socket. */
  | "receive:acked";

const NAME = "CHAT_P2P_CRASH_AT";

const at: string | undefined = (() => {
  try {
    const allowed = Deno.permissions.querySync({ name: "env", variable: NAME }).state;
    return allowed === "granted" ? Deno.env.get(NAME) : undefined;
  } catch {
    return undefined;
  }
})();

/** Kills this process with SIGKILL when `CHAT_P2P_CRASH_AT` is `point`. */
export function crashPoint(point: CrashPoint): void {
  if (at === point) Deno.kill(Deno.pid, "SIGKILL");
}
