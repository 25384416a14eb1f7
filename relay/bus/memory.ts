/**
 * In-process `Bus` for the embedded relay. Several `MemoryBus` instances made from one
 * {@linkcode MemoryBusHub} behave like relays on one Kafka topic (used by tests).
 *
 * @module
 */
import type { Bus, BusHandler } from "../ports/bus.ts";
import type { BackendStatus } from "../ports/errors.ts";

/** The shared medium several in-process buses publish on: each subscribed bus's handler. */
export class MemoryBusHub {
  readonly handlers = new Map<MemoryBus, BusHandler>();
}

/** A bus whose subscribers live in this process. */
export class MemoryBus implements Bus {
  readonly kind = "memory";
  #hub: MemoryBusHub;

  constructor(hub: MemoryBusHub = new MemoryBusHub()) {
    this.#hub = hub;
  }

  publish(mailboxId: string, raw: string): Promise<void> {
    const handlers = this.#hub.handlers;
    // The publishing relay delivers its own: nobody else listens on the embedded relay's hub.
    if (handlers.size === 0 || (handlers.size === 1 && handlers.has(this))) {
      return Promise.resolve();
    }
    // Deliver in a later microtask so no handler runs inside the publisher's call, as with a real
    // broker; order per mailbox is kept because microtasks run in FIFO order.
    queueMicrotask(() => {
      for (const [bus, h] of handlers) {
        if (bus === this) continue;
        try {
          h(mailboxId, raw);
        } catch (err) {
          console.error(
            JSON.stringify({ level: "error", msg: "bus handler failed", err: String(err) }),
          );
        }
      }
    });
    return Promise.resolve();
  }

  subscribe(handler: BusHandler): Promise<void> {
    this.#hub.handlers.set(this, handler);
    return Promise.resolve();
  }

  check(): Promise<BackendStatus> {
    return Promise.resolve({ ok: true, detail: "in process" });
  }

  close(): Promise<void> {
    this.#hub.handlers.delete(this);
    return Promise.resolve();
  }
}
