/**
 * The inbox: what happens to an envelope the relay delivers. It is opened through the
 * {@linkcode Sealer} (with the key it claims to come from), what it carries is stored in that
 * peer's history (deduplicated by id), and only then may it be acked: **store, then ack**. A
 * message that is acked is never lost, and one that is not is delivered again and stored once.
 *
 * Envelopes arriving together are stored together: {@linkcode Inbox.receive} queues them, and
 * each batch costs one append and one fsync per conversation (a 10,000-message backlog is a few
 * dozen fsyncs, not 10,000), with one batch on the disk while the next one forms.
 *
 * {@linkcode ReceiptBatch} collects the ids of stored messages and tells each sender once per
 * batch that they were delivered.
 *
 * @module
 */
import { type Envelope, MAX_ACK_IDS } from "@chat-p2p/protocol";
import { Batcher } from "@chat-p2p/protocol/async";
import { isPermanentRefusal } from "./outbox.ts";
import type { Sealer } from "./sealing.ts";
import type { NewRecord } from "./store/message_log.ts";
import { keyFingerprint, type ProfileStore } from "./store/profile_store.ts";

/** A received chat message. */
export interface IncomingMessage {
  /** Envelope id. */
  id: string;
  /** Sender's base64 key. */
  from: string;
  /** Contact name of the sender, or null for a key not saved as a contact. */
  contact: string | null;
  /** Sender's fingerprint. */
  fingerprint: string;
  /** The plaintext. */
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

/** Options for {@linkcode Inbox}. */
export interface InboxOptions {
  /** Where messages are stored (each sender's history). */
  store: ProfileStore;
  /** How envelopes are opened. */
  sealer: Sealer;
  /** The clock (the local time a message is stored). */
  now?: () => Date;
  /** Most envelopes stored by one append (default 1000). */
  maxBatch?: number;
}

function safeFingerprint(key: string): string {
  try {
    return keyFingerprint(key);
  } catch {
    return "(invalid key)";
  }
}

/** Opens and durably stores delivered envelopes, in batches. */
export class Inbox {
  readonly #store: ProfileStore;
  readonly #sealer: Sealer;
  readonly #now: () => Date;
  readonly #batcher: Batcher<Envelope, InboxOutcome>;

  /** Creates an inbox writing to `store`'s histories. */
  constructor(opts: InboxOptions) {
    this.#store = opts.store;
    this.#sealer = opts.sealer;
    this.#now = opts.now ?? (() => new Date());
    this.#batcher = new Batcher((envelopes) => this.#storeBatch(envelopes), {
      maxItems: opts.maxBatch ?? 1000,
    });
  }

  /**
   * Opens and stores one envelope; resolves with what it was once that is durable (then it may
   * be acked). Outcomes resolve in the order envelopes were given. Rejects with the store's
   * error (`io`) when the history cannot be written: do not ack, the relay delivers it again.
   */
  receive(envelope: Envelope): Promise<InboxOutcome> {
    return this.#batcher.add(envelope);
  }

  /** Resolves once every envelope given so far is stored (or failed). */
  idle(): Promise<void> {
    return this.#batcher.idle();
  }

  async #storeBatch(envelopes: Envelope[]): Promise<InboxOutcome[]> {
    const names = new Map(this.#store.loadContacts().map((c) => [c.key, c.name]));
    const at = this.#now().toISOString();
    const outcomes: InboxOutcome[] = [];
    /** Records per sender, and for each outcome the index of its records there. */
    const records = new Map<string, NewRecord[]>();
    const finish: Array<(written: Map<string, boolean[]>) => void> = [];
    for (const envelope of envelopes) {
      const i = outcomes.length;
      const opened = this.#sealer.open(envelope);
      if (!opened.ok) {
        outcomes.push(this.#rejected(envelope, opened.message));
        continue;
      }
      const { from, payload } = opened.value;
      const log = this.#store.history(from);
      const contact = names.get(from) ?? null;
      const recs = records.get(from) ?? [];
      records.set(from, recs);
      const first = recs.length;
      if (payload.kind === "message") {
        const prev = log.get(envelope.id);
        if (prev && prev.dir !== "in") {
          // An id I used for one of my own messages: not a redelivery, something is off.
          outcomes.push(this.#rejected(envelope, "its id is already used by a message I sent"));
          continue;
        }
        recs.push({
          t: "msg",
          id: envelope.id,
          dir: "in",
          text: payload.text,
          sent_at: payload.sent_at,
          at,
        });
        const message: IncomingMessage = {
          id: envelope.id,
          from,
          contact,
          fingerprint: safeFingerprint(from),
          text: payload.text,
          sent_at: payload.sent_at,
          at: prev?.at ?? at,
        };
        outcomes.push({ kind: "message", message, duplicate: true });
        finish.push((written) => {
          const stored = written.get(from)![first];
          // Stored by this batch; else an earlier copy (this batch's or before) is the one kept.
          outcomes[i] = { kind: "message", message, duplicate: !stored };
        });
      } else {
        // Only the peer the message went to can mark it: the receipt goes to its own history.
        for (const id of payload.ids) recs.push({ t: "state", id, state: "delivered", at });
        outcomes.push({ kind: "receipt", id: envelope.id, from, contact, delivered: [] });
        finish.push((written) => {
          const flags = written.get(from)!;
          const delivered = payload.ids
            .filter((_, k) => flags[first + k])
            .map((id) => ({ id, text: log.get(id)?.text ?? "" }));
          outcomes[i] = { kind: "receipt", id: envelope.id, from, contact, delivered };
        });
      }
    }
    const written = new Map<string, boolean[]>();
    await Promise.all(
      [...records].map(async ([from, recs]) => {
        written.set(from, await this.#store.history(from).appendBatch(recs));
      }),
    );
    for (const f of finish) f(written);
    return outcomes;
  }

  #rejected(envelope: Envelope, reason: string): InboxOutcome {
    return {
      kind: "rejected",
      id: envelope.id,
      from: envelope.from,
      fingerprint: safeFingerprint(envelope.from),
      reason,
    };
  }
}

/**
 * Collects stored message ids per sender and sends each sender one receipt (per 1000 ids).
 * Receipts the relay refuses for now are kept for the next flush; those it can never accept are
 * dropped (the rule of outbox.ts).
 */
export class ReceiptBatch {
  readonly #ids = new Map<string, string[]>();
  readonly #sealer: Sealer;
  readonly #now: () => Date;

  /** Creates an empty batch sealing with `sealer`. */
  constructor(sealer: Sealer, now: () => Date = () => new Date()) {
    this.#sealer = sealer;
    this.#now = now;
  }

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
   * Seals and sends the receipts with `send`, waiting for each answer. Failures are returned
   * (not thrown) so one full mailbox does not stop the others; receipts refused for now go back
   * in the batch.
   */
  async flush(
    send: (envelope: Envelope) => Promise<void>,
  ): Promise<Array<{ to: string; error: unknown }>> {
    const failures: Array<{ to: string; error: unknown }> = [];
    const jobs: Promise<void>[] = [];
    const batches = [...this.#ids];
    this.#ids.clear();
    for (const [to, ids] of batches) {
      for (let i = 0; i < ids.length; i += MAX_ACK_IDS) {
        const part = ids.slice(i, i + MAX_ACK_IDS);
        const envelope = this.#sealer.seal(
          {
            v: 1,
            kind: "receipt",
            status: "delivered",
            ids: part,
            sent_at: this.#now().toISOString(),
          },
          to,
        );
        jobs.push(
          send(envelope).catch((error) => {
            failures.push({ to, error });
            if (!isPermanentRefusal(error)) { for (const id of part) this.add(to, id); }
          }),
        );
      }
    }
    await Promise.all(jobs);
    return failures;
  }
}
