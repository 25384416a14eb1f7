/**
 * In-memory `Mailbox`: for unit tests and as the reference the other adapters are checked
 * against. Not durable.
 *
 * @module
 */
import {
  DEFAULT_MAILBOX_LIMITS,
  type Mailbox,
  type MailboxLimits,
  type StoredEnvelope,
} from "../ports/mailbox.ts";
import { type BackendStatus, MailboxFullError } from "../ports/errors.ts";

const utf8 = new TextEncoder();

interface Box {
  items: Map<string, StoredEnvelope & { bytes: number }>;
  nextSeq: number;
  bytes: number;
}

/** A mailbox kept in this process's memory. */
export class MemoryMailbox implements Mailbox {
  readonly kind = "memory";
  #boxes = new Map<string, Box>();
  #limits: MailboxLimits;

  constructor(limits: MailboxLimits = DEFAULT_MAILBOX_LIMITS) {
    this.#limits = limits;
  }

  #box(id: string): Box {
    let b = this.#boxes.get(id);
    if (!b) {
      b = { items: new Map(), nextSeq: 1, bytes: 0 };
      this.#boxes.set(id, b);
    }
    return b;
  }

  put(
    mailboxId: string,
    envelope: { id: string; raw: string },
    now = Date.now(),
  ): Promise<"stored" | "duplicate"> {
    const b = this.#box(mailboxId);
    if (b.items.has(envelope.id)) return Promise.resolve("duplicate");
    const bytes = utf8.encode(envelope.raw).length;
    if (b.items.size + 1 > this.#limits.maxCount) {
      return Promise.reject(
        new MailboxFullError(
          `mailbox holds ${b.items.size} messages (limit ${this.#limits.maxCount})`,
        ),
      );
    }
    if (b.bytes + bytes > this.#limits.maxBytes) {
      return Promise.reject(
        new MailboxFullError(`mailbox holds ${b.bytes} bytes (limit ${this.#limits.maxBytes})`),
      );
    }
    b.items.set(envelope.id, {
      id: envelope.id,
      raw: envelope.raw,
      seq: b.nextSeq++,
      receivedAt: now,
      bytes,
    });
    b.bytes += bytes;
    return Promise.resolve("stored");
  }

  pending(
    mailboxId: string,
    opts: { afterSeq?: number; limit?: number; now?: number } = {},
  ): Promise<StoredEnvelope[]> {
    const b = this.#boxes.get(mailboxId);
    if (!b) return Promise.resolve([]);
    const after = opts.afterSeq ?? 0;
    const limit = opts.limit ?? 500;
    const oldest = (opts.now ?? Date.now()) - this.#limits.maxAgeMs;
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

  #expire(b: Box, now: number): number {
    const oldest = now - this.#limits.maxAgeMs;
    let n = 0;
    for (const e of b.items.values()) {
      if (e.receivedAt >= oldest) break; // insertion order = age order
      b.items.delete(e.id);
      b.bytes -= e.bytes;
      n++;
    }
    return n;
  }

  sweep(now = Date.now()): Promise<number> {
    let n = 0;
    for (const [id, b] of this.#boxes) {
      n += this.#expire(b, now);
      if (b.items.size === 0) this.#boxes.delete(id);
    }
    return Promise.resolve(n);
  }

  check(): Promise<BackendStatus> {
    return Promise.resolve({ ok: true, detail: "in process" });
  }

  close(): Promise<void> {
    this.#boxes.clear();
    return Promise.resolve();
  }
}
