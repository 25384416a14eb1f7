/**
 * Outgoing messages that were written to history but never answered by a relay: the "sending"
 * state. A message is appended to history before it goes on the wire, so a crash, a dropped
 * connection or a relay that is down loses nothing: the next `chat` or `send` with that contact
 * seals it again under the same envelope id and sends it. The relay stores an id once per
 * mailbox, and the recipient's history keeps an id once, so a message that did get through
 * before the crash is not shown twice.
 *
 * @module
 */
import { type Envelope, type KeyPair, sealEnvelope } from "@chat-p2p/protocol";
import type { ProfileStore } from "./store/profile_store.ts";

/** An outgoing message ready to be (re)sent. */
export interface QueuedMessage {
  /** The sealed envelope (its id is the history id). */
  envelope: Envelope;
  /** The plaintext, for status lines. */
  text: string;
}

/**
 * Messages to `peerKey` recorded in history as "sending" (no accepted, delivered or failed state
 * yet), oldest first, sealed again with their original ids, texts and send times.
 */
export function queuedOutgoing(store: ProfileStore, me: KeyPair, peerKey: string): QueuedMessage[] {
  return store.history(peerKey).entries()
    .filter((e) => e.dir === "out" && e.state === "sending")
    .map((e) => ({
      envelope: sealEnvelope(
        { v: 1, kind: "message", text: e.text, sent_at: e.sent_at },
        me,
        peerKey,
        e.id,
      ),
      text: e.text,
    }));
}
