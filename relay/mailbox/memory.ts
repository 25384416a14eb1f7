/**
 * In-memory `Mailbox`: for unit tests and as the reference the other adapters are checked
 * against. Not durable.
 *
 * @module
 */
import {
  DAY_MS,
  DEFAULT_MAILBOX_LIMITS,
  envelopeCutoff,
  HOUR_MS,
  type Mailbox,
  type MailboxKind,
  type MailboxLimits,
  overCaps,
  type PutOptions,
  registrationCutoff,
  roundDown,
  type StoredEnvelope,
  type Swept,
} from "../ports/mailbox.ts";
import { type BackendStatus, MailboxFullError, UnknownMailboxError } from "../ports/errors.ts";

const utf8 = new TextEncoder();

interface Box {
  items: Map<string, StoredEnvelope & { bytes: number }>;
  lastSeq: number;
  bytes: number;
}

/** A mailbox kept in this process's memory. */
export class MemoryMailbox implements Mailbox {
  readonly kind = "memory";
  #boxes = new Map<string, Box>();
  /** Registered mailboxes: kind and the day (ms) of the last open. */
  #registry = new Map<string, { kind: MailboxKind; day: number }>();
  #limits: MailboxLimits;
  /** Relays sharing this store (see `join`): member token -> lease end (ms). */
  #members = new Map<string, number>();

  constructor(limits: MailboxLimits = DEFAULT_MAILBOX_LIMITS) {
    this.#limits = limits;
  }

  register(mailboxId: string, kind: MailboxKind, now = Date.now()): Promise<void> {
    const day = roundDown(now, DAY_MS);
    const r = this.#registry.get(mailboxId);
    if (r) r.day = Math.max(r.day, day);
    else this.#registry.set(mailboxId, { kind, day });
    return Promise.resolve();
  }

  put(
    mailboxId: string,
    envelope: { id: string; raw: string },
    options: PutOptions = {},
  ): Promise<"stored" | "duplicate"> {
    const kind = options.inbox ? "inbox" : this.#registry.get(mailboxId)?.kind;
    if (!kind) return Promise.reject(new UnknownMailboxError("no such mailbox"));
    const b = this.#boxes.get(mailboxId) ?? { items: new Map(), lastSeq: 0, bytes: 0 };
    if (b.items.has(envelope.id)) {
      this.#countPeers(options);
      return Promise.resolve("duplicate");
    }
    const bytes = utf8.encode(envelope.raw).length;
    const full = overCaps(this.#limits, kind, b.items.size, b.bytes, bytes);
    if (full) return Promise.reject(new MailboxFullError(full));
    this.#boxes.set(mailboxId, b);
    b.items.set(envelope.id, {
      id: envelope.id,
      raw: envelope.raw,
      seq: ++b.lastSeq,
      receivedAt: roundDown(options.now ?? Date.now(), HOUR_MS),
      bytes,
    });
    b.bytes += bytes;
    this.#countPeers(options);
    return Promise.resolve("stored");
  }

  /** Hands a put made with `member` the number of other members whose lease runs. */
  #countPeers(options: PutOptions): void {
    if (options.member === undefined) return;
    const now = Date.now();
    let others = 0;
    for (const [m, until] of this.#members) if (m !== options.member && until > now) others++;
    options.peers?.(others);
  }

  join(member: string, leaseMs: number): Promise<boolean> {
    const now = Date.now();
    const until = this.#members.get(member);
    this.#members.set(member, now + leaseMs);
    return Promise.resolve(until !== undefined && until > now);
  }

  leave(member: string): Promise<void> {
    this.#members.delete(member);
    return Promise.resolve();
  }

  pending(
    mailboxId: string,
    opts: { afterSeq?: number; limit?: number; now?: number } = {},
  ): Promise<StoredEnvelope[]> {
    const b = this.#boxes.get(mailboxId);
    if (!b) return Promise.resolve([]);
    const after = opts.afterSeq ?? 0;
    const limit = opts.limit ?? 500;
    const oldest = envelopeCutoff(opts.now ?? Date.now(), this.#limits.maxAgeMs);
    const out: StoredEnvelope[] = [];
    for (const e of b.items.values()) {
      if (e.seq <= after || e.receivedAt < oldest) continue;
      out.push({ id: e.id, raw: e.raw, seq: e.seq, receivedAt: e.receivedAt });
      if (out.length >= limit) break;
    }
    return Promise.resolve(out);
  }

  ack(mailboxId: string, ids: readonly string[]): Promise<number> {
    const b = this.#boxes.get(mailboxId);
    if (!b) return Promise.resolve(0);
    let n = 0;
    for (const id of ids) {
      const e = b.items.get(id);
      if (!e) continue;
      b.items.delete(id);
      b.bytes -= e.bytes;
      n++;
    }
    if (b.items.size === 0) this.#boxes.delete(mailboxId);
    return Promise.resolve(n);
  }

  depth(mailboxId: string): Promise<{ count: number; bytes: number }> {
    const b = this.#boxes.get(mailboxId);
    return Promise.resolve({ count: b?.items.size ?? 0, bytes: b?.bytes ?? 0 });
  }

  totals(): Promise<{ count: number; bytes: number }> {
    let count = 0, bytes = 0;
    for (const b of this.#boxes.values()) {
      count += b.items.size;
      bytes += b.bytes;
    }
    return Promise.resolve({ count, bytes });
  }

  sweep(now = Date.now()): Promise<Swept> {
    const oldest = envelopeCutoff(now, this.#limits.maxAgeMs);
    let envelopes = 0;
    for (const [id, b] of this.#boxes) {
      for (const e of b.items.values()) {
        if (e.receivedAt >= oldest) break; // insertion order = age order
        b.items.delete(e.id);
        b.bytes -= e.bytes;
        envelopes++;
      }
      if (b.items.size === 0) this.#boxes.delete(id);
    }
    const lapsed = registrationCutoff(now, this.#limits.maxAgeMs);
    let mailboxes = 0;
    for (const [id, r] of this.#registry) {
      if (r.day < lapsed) {
        this.#registry.delete(id);
        mailboxes++;
      }
    }
    return Promise.resolve({ envelopes, mailboxes });
  }

  check(): Promise<BackendStatus> {
    return Promise.resolve({ ok: true, detail: "in process" });
  }

  close(): Promise<void> {
    this.#boxes.clear();
    this.#registry.clear();
    return Promise.resolve();
  }
}
