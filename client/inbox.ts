/**
 * What happens to an envelope the relay delivers, shared by `sync` and `chat`: open it with the
 * key it claims to come from, store what it carries in that peer's history (dedup by id), and
 * say what happened so the caller can ack it and print it. Also the receipts sent back to
 * senders once their messages are stored.
 *
 * @module
 */
import {
  type Envelope,
  type KeyPair,
  MAX_ACK_IDS,
  openEnvelope,
  sealEnvelope,
} from "@chat-p2p/protocol";
import { type Contact, keyFingerprint, type ProfileStore } from "./store/profile_store.ts";
import type { RelaySession } from "./connection.ts";

/** A received chat message, as printed by `sync` and `chat`. */
export interface IncomingMessage {
  id: string;
  /** Sender's base64 key. */
  from: string;
  /** Contact name of the sender, or null for a key not saved as a contact. */
  contact: string | null;
  /** Sender's fingerprint. */
  fingerprint: string;
  text: string;
  /** Sender's clock, from inside the box. */
  sent_at: string;
  /** Local time it was stored. */
  at: string;
}

/** The outcome of handling one delivered envelope. Every outcome may be acked. */
export type InboxOutcome =
  /** A message, stored now (`duplicate` false) or already in history (`duplicate` true). */
  | { kind: "message"; message: IncomingMessage; duplicate: boolean }
  /** A receipt: `delivered` lists my outgoing messages that are now marked delivered. */
  | {
    kind: "receipt";
    id: string;
    from: string;
    contact: string | null;
    delivered: Array<{ id: string; text: string }>;
  }
  /** Not opened or not understood: report it, ack it, never show it as from `from`. */
  | { kind: "rejected"; id: string; from: string; fingerprint: string; reason: string };

/** Looks up contact names by key. */
export function contactNames(contacts: Contact[]): Map<string, string> {
  return new Map(contacts.map((c) => [c.key, c.name]));
}

/**
 * Opens and durably stores one delivered envelope. The caller acks `envelope.id` afterwards,
 * whatever the outcome (a rejected box would otherwise come back forever).
 */
export function handleEnvelope(
  store: ProfileStore,
  me: KeyPair,
  names: Map<string, string>,
  envelope: Envelope,
  now: Date,
): InboxOutcome {
  const fp = safeFingerprint(envelope.from);
  const opened = openEnvelope(envelope, me);
  if (!opened.ok) {
    return {
      kind: "rejected",
      id: envelope.id,
      from: envelope.from,
      fingerprint: fp,
      reason: opened.message,
    };
  }
  const payload = opened.value;
  const at = now.toISOString();
  const log = store.history(envelope.from);
  const contact = names.get(envelope.from) ?? null;
  if (payload.kind === "message") {
    const stored = log.appendMessage({
      id: envelope.id,
      dir: "in",
      text: payload.text,
      sent_at: payload.sent_at,
      at,
    });
    const prev = stored ? undefined : log.get(envelope.id);
    if (prev && prev.dir !== "in") {
      // An id I used for one of my own messages: not a redelivery, something is off.
      return {
        kind: "rejected",
        id: envelope.id,
        from: envelope.from,
        fingerprint: fp,
        reason: "its id is already used by a message I sent",
      };
    }
    return {
      kind: "message",
      duplicate: !stored,
      message: {
        id: envelope.id,
        from: envelope.from,
        contact,
        fingerprint: fp,
        text: payload.text,
        sent_at: payload.sent_at,
        at: prev?.at ?? at,
      },
    };
  }
  const delivered: Array<{ id: string; text: string }> = [];
  for (const id of payload.ids) {
    // Only the peer the message went to can mark it: the receipt is applied to its own history.
    if (log.appendState(id, "delivered", at)) {
      delivered.push({ id, text: log.get(id)?.text ?? "" });
    }
  }
  return { kind: "receipt", id: envelope.id, from: envelope.from, contact, delivered };
}

function safeFingerprint(key: string): string {
  try {
    return keyFingerprint(key);
  } catch {
    return "(invalid key)";
  }
}

/** Collects stored message ids per sender and sends each sender one receipt (per 1000 ids). */
export class ReceiptBatch {
  readonly #ids = new Map<string, string[]>();

  /** Notes that message `id` from `from` is stored. */
  add(from: string, id: string): void {
    const list = this.#ids.get(from);
    if (list) {
      if (!list.includes(id)) list.push(id);
    } else this.#ids.set(from, [id]);
  }

  /** True when nothing is waiting. */
  get isEmpty(): boolean {
    return this.#ids.size === 0;
  }

  /**
   * Seals and sends the receipts, waiting for each `accepted`. Failures are returned (not
   * thrown) so one full mailbox does not stop the others; the batch is emptied either way.
   */
  async flush(
    session: RelaySession,
    me: KeyPair,
    now: () => Date,
    timeoutMs?: number,
  ): Promise<Array<{ to: string; error: unknown }>> {
    const failures: Array<{ to: string; error: unknown }> = [];
    const jobs: Promise<void>[] = [];
    for (const [to, ids] of this.#ids) {
      for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
        const envelope = sealEnvelope(
          {
            v: 1,
            kind: "receipt",
            status: "delivered",
            ids: ids.slice(i, i + MAX_ACK_IDS),
            sent_at: now().toISOString(),
          },
          me,
          to,
        );
        jobs.push(
          session.send(envelope, timeoutMs === undefined ? {} : { timeoutMs }).catch((error) => {
            failures.push({ to, error });
          }),
        );
      }
    }
    this.#ids.clear();
    await Promise.all(jobs);
    return failures;
  }
}
