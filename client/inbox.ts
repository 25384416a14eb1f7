/**
 * The inbox: what happens to the envelopes the relay delivers. A batch of them is opened and
 * decrypted **in memory** (outer layer, then the ratchet, on a copy of the sessions), what they
 * carry is **appended to history** (one write and one fsync per conversation), first-contact
 * requests to `requests/`, then the advanced **sessions are written**, and only then may the
 * envelopes be **acked**. All of it runs without yielding, so no send can use a session in
 * between.
 *
 * A crash anywhere before the sessions are written gets the batch delivered again, and the old
 * sessions still open it (history drops the ids it has). A crash after it gets the batch again
 * too; the ratchet then calls it a replay, and it is acked without being shown twice. Nothing
 * acked is ever missing from history.
 *
 * Envelopes arriving together are stored together: {@linkcode Inbox.receive} queues them, so a
 * 10,000-message backlog costs a few dozen fsyncs, not 10,000.
 *
 * @module
 */
import type { EnvelopeV2, MessagePayloadV2 } from "@chat-p2p/protocol";
import { Batcher } from "@chat-p2p/protocol/async";
import { crashPoint } from "./_crash.ts";
import type { Sealer, Unwrapped } from "./sealing.ts";
import type { NewRecord } from "./store/message_log.ts";
import { keyFingerprint, type ProfileStore } from "./store/profile_store.ts";
import type { RequestMessage, RequestStore } from "./store/requests.ts";

/** A received chat message. */
export interface IncomingMessage {
  /** Message id (the history id). */
  id: string;
  /** Sender's base64 key. */
  from: string;
  /** Contact name of the sender, or null for a key not saved as a contact. */
  contact: string | null;
  /** Sender's fingerprint. */
  fingerprint: string;
  /** The plaintext. */
  text: string;
  /** Sender's clock, from inside the ratchet. */
  sent_at: string;
  /** Local time it was stored. */
  at: string;
}

/** Which envelope an outcome is about: what to ack. */
export interface Delivery {
  /** The mailbox it came from. */
  mailbox: string;
  /** Its envelope id. */
  envelope: string;
}

/** Messages of mine that a receipt (or a message carrying receipts) marked delivered. */
export type Delivered = Array<{ id: string; text: string }>;

/** The outcome of handling one delivered envelope. All may be acked but `ignored`. */
export type InboxOutcome =
  & { delivery: Delivery }
  & (
    /**
     * A message, stored now (`duplicate` false) or already in history (`duplicate` true);
     * `delivered`: my messages its piggybacked receipts marked delivered.
     */
    | { kind: "message"; message: IncomingMessage; duplicate: boolean; delivered: Delivered }
    /** A receipt: `delivered` lists my outgoing messages that are now marked delivered. */
    | { kind: "receipt"; from: string; contact: string | null; delivered: Delivered }
    /** A first-contact message from a key that is not a contact, kept in requests/. */
    | {
      kind: "request";
      from: string;
      fingerprint: string;
      message: RequestMessage;
      duplicate: boolean;
    }
    /**
     * Not opened or not understood: report it, ack it, never show it. `from` is the contact whose
     * mailbox it came through; a forged first-contact request names no one (`from` undefined).
     */
    | { kind: "rejected"; from?: string; fingerprint?: string; reason: string }
    /** Nothing to show or report (a replay, a blocked key, a reserved payload): ack it. */
    | { kind: "dropped"; reason: string }
    /** Not for a mailbox this client reads: report it, but do not ack (it names nothing of mine). */
    | { kind: "ignored"; reason: string }
  );

/** The outcome of `kind`. */
type Outcome<K extends InboxOutcome["kind"]> = Extract<InboxOutcome, { kind: K }>;

/** Options for {@linkcode Inbox}. */
export interface InboxOptions {
  /** Where messages are stored (each sender's history). */
  store: ProfileStore;
  /** How envelopes are opened. */
  sealer: Sealer;
  /** Where first-contact requests and the block list are. */
  requests: RequestStore;
  /**
   * Treat first-contact messages from any key as messages (a bot); default false: messages from
   * keys that are not contacts are kept in requests/ until accepted.
   */
  acceptRequests?: boolean;
  /** The clock (the local time a message is stored). */
  now?: () => Date;
  /** Most envelopes stored by one append (default 1000). */
  maxBatch?: number;
}

/** Fingerprints already computed (a backlog is thousands of messages from a few keys). */
const fingerprints = new Map<string, string>();

function safeFingerprint(key: string): string {
  let fp = fingerprints.get(key);
  if (fp === undefined) {
    try {
      fp = keyFingerprint(key);
    } catch {
      fp = "(invalid key)";
    }
    if (fingerprints.size > 10_000) fingerprints.clear();
    fingerprints.set(key, fp);
  }
  return fp;
}

/** A rejected envelope that came through `peer`'s pair mailbox, or claims `peer`'s key. */
function rejectedFrom(delivery: Delivery, peer: string, reason: string): InboxOutcome {
  return { delivery, kind: "rejected", from: peer, fingerprint: safeFingerprint(peer), reason };
}

/** Decrypts and durably stores delivered envelopes, in batches. */
export class Inbox {
  readonly #store: ProfileStore;
  readonly #sealer: Sealer;
  readonly #requests: RequestStore;
  readonly #acceptAll: boolean;
  readonly #now: () => Date;
  readonly #batcher: Batcher<EnvelopeV2, InboxOutcome>;

  /** Creates an inbox writing to `store`'s histories. */
  constructor(opts: InboxOptions) {
    this.#store = opts.store;
    this.#sealer = opts.sealer;
    this.#requests = opts.requests;
    this.#acceptAll = opts.acceptRequests ?? false;
    this.#now = opts.now ?? (() => new Date());
    this.#batcher = new Batcher((envelopes) => Promise.resolve(this.#storeBatch(envelopes)), {
      maxItems: opts.maxBatch ?? 1000,
    });
  }

  /**
   * Opens and stores one envelope; resolves with what it was once that is durable (then it may
   * be acked). Outcomes resolve in the order envelopes were given. Rejects with the store's
   * error (`io`) when history or sessions cannot be written: do not ack, the relay delivers it
   * again.
   */
  receive(envelope: EnvelopeV2): Promise<InboxOutcome> {
    return this.#batcher.add(envelope);
  }

  /** Resolves once every envelope given so far is stored (or failed). */
  idle(): Promise<void> {
    return this.#batcher.idle();
  }

  #storeBatch(envelopes: EnvelopeV2[]): InboxOutcome[] {
    const names = new Map(this.#store.loadContacts().map((c) => [c.key, c.name]));
    const blocked = this.#requests.blocked();
    const work = this.#sealer.workspace();
    const at = this.#now().toISOString();
    const outcomes: InboxOutcome[] = [];
    /** Records per sender; requests per stranger; what to do once they are written. */
    const records = new Map<string, NewRecord[]>();
    const requests = new Map<string, RequestMessage[]>();
    const finish: Array<() => void> = [];
    const recordsOf = (peer: string) => {
      const list = records.get(peer) ?? [];
      records.set(peer, list);
      return list;
    };
    /** Adds receipt records for `ids`; after the write, the messages they marked delivered. */
    const receiptRecords = (peer: string, ids: string[] | undefined) => {
      const recs = recordsOf(peer);
      const first = recs.length;
      for (const id of ids ?? []) recs.push({ t: "state", id, state: "delivered", at });
      return (flags: boolean[]): Delivered =>
        (ids ?? []).filter((_, k) => flags[first + k])
          .map((id) => ({ id, text: this.#store.history(peer).get(id)?.text ?? "" }));
    };
    const written = new Map<string, boolean[]>();
    const requestWritten = new Map<string, boolean[]>();
    /** Messages of this batch by envelope id: a copy later in the batch is a duplicate. */
    const inBatch = new Map<string, IncomingMessage>();

    for (const envelope of envelopes) {
      const delivery: Delivery = { mailbox: envelope.to, envelope: envelope.id };
      const u = this.#sealer.unwrap(envelope);
      if (!u.ok) {
        outcomes.push(this.#notOpened(delivery, u));
        continue;
      }
      const peer = u.peer;
      if (u.via === "request" && blocked.has(peer)) {
        outcomes.push({ delivery, kind: "dropped", reason: "from a blocked key" });
        continue;
      }
      const d = work.decrypt(peer, u.message, u.via);
      if (!d.ok) {
        const copy = d.reason === "replay" ? inBatch.get(`${peer} ${envelope.id}`) : undefined;
        outcomes.push(
          copy
            ? { delivery, kind: "message", message: copy, duplicate: true, delivered: [] }
            : this.#failed(delivery, u, d.reason, d.message, names.get(peer) ?? null),
        );
        continue;
      }
      const p = d.payload;
      const contact = names.get(peer) ?? null;
      if (p.kind === "rotate") {
        outcomes.push({ delivery, kind: "dropped", reason: "rotate is reserved" });
        continue;
      }
      if (p.kind === "receipt") {
        const delivered = receiptRecords(peer, p.ids);
        const outcome: Outcome<"receipt"> = {
          delivery,
          kind: "receipt",
          from: peer,
          contact,
          delivered: [],
        };
        outcomes.push(outcome);
        finish.push(() => outcome.delivered = delivered(written.get(peer)!));
        continue;
      }
      const prev = this.#store.history(peer).get(p.id);
      if (prev && prev.dir !== "in") {
        // An id I used for one of my own messages: not a redelivery, something is off.
        outcomes.push(rejectedFrom(delivery, peer, "its id is already used by a message I sent"));
        continue;
      }
      if (u.via === "request" && contact === null && !this.#acceptAll && !prev) {
        const list = requests.get(peer) ?? [];
        requests.set(peer, list);
        const k = list.length;
        const message = requestMessage(p, at, envelope.id);
        list.push(message);
        const outcome: Outcome<"request"> = {
          delivery,
          kind: "request",
          from: peer,
          fingerprint: safeFingerprint(peer),
          message,
          duplicate: true,
        };
        outcomes.push(outcome);
        finish.push(() => outcome.duplicate = !requestWritten.get(peer)![k]);
        continue;
      }
      const recs = recordsOf(peer);
      const first = recs.length;
      recs.push({ t: "msg", ...requestMessage(p, at, envelope.id), dir: "in" });
      const delivered = receiptRecords(peer, p.receipts);
      const message: IncomingMessage = {
        id: p.id,
        from: peer,
        contact,
        fingerprint: safeFingerprint(peer),
        text: p.text,
        sent_at: p.sent_at,
        at: prev?.at ?? at,
      };
      inBatch.set(`${peer} ${envelope.id}`, message);
      const outcome: Outcome<"message"> = {
        delivery,
        kind: "message",
        message,
        duplicate: true,
        delivered: [],
      };
      outcomes.push(outcome);
      finish.push(() => {
        const flags = written.get(peer)!;
        // Stored by this batch; else an earlier copy (this batch's or before) is the one kept.
        outcome.duplicate = !flags[first];
        outcome.delivered = delivered(flags);
      });
    }
    // History first, then requests, then the sessions that opened them; the acks come after.
    crashPoint("receive:decrypted");
    for (const [peer, recs] of records) {
      written.set(peer, this.#store.history(peer).appendBatch(recs));
    }
    for (const [peer, msgs] of requests) requestWritten.set(peer, this.#requests.add(peer, msgs));
    crashPoint("receive:history");
    work.commit();
    crashPoint("receive:sessions");
    for (const f of finish) f();
    return outcomes;
  }

  #notOpened(delivery: Delivery, u: Extract<Unwrapped, { ok: false }>): InboxOutcome {
    if (u.why === "not_mine") return { delivery, kind: "ignored", reason: u.message };
    if (u.peer === undefined) {
      return { delivery, kind: "rejected", reason: `a request that does not open: ${u.message}` };
    }
    return rejectedFrom(delivery, u.peer, u.message);
  }

  /** A ratchet message or payload that did not open: a replay, a forgery, or damage. */
  #failed(
    delivery: Delivery,
    u: Extract<Unwrapped, { ok: true }>,
    reason: string,
    message: string,
    contact: string | null,
  ): InboxOutcome {
    if (reason === "replay") {
      // The same envelope again (an ack that did not reach the relay): it is in history.
      const prev = this.#store.history(u.peer).byEnvelope(delivery.envelope);
      if (prev) {
        return {
          delivery,
          kind: "message",
          message: {
            id: prev.id,
            from: u.peer,
            contact,
            fingerprint: safeFingerprint(u.peer),
            text: prev.text,
            sent_at: prev.sent_at,
            at: prev.at,
          },
          duplicate: true,
          delivered: [],
        };
      }
      return { delivery, kind: "dropped", reason: message };
    }
    if (u.via === "request" && reason === "auth_failed") {
      // Anyone can claim a key in a sealed request: never show the claim.
      return { delivery, kind: "rejected", reason: `a forged request (${message})` };
    }
    const why = reason === "payload" ? `its content is not understood: ${message}` : message;
    return rejectedFrom(delivery, u.peer, why);
  }
}

function requestMessage(p: MessagePayloadV2, at: string, env: string): RequestMessage {
  return { id: p.id, text: p.text, sent_at: p.sent_at, at, env };
}
