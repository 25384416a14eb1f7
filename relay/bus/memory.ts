/**
 * In-process `Bus` for the embedded relay. Several `MemoryBus` instances made from one
 * {@linkcode MemoryBusHub} behave like relays on one Kafka topic (used by tests).
 *
 * @module
 */
import type { Bus, BusHandler } from "../ports/bus.ts";
import type { BackendStatus } from "../ports/errors.ts";

/** The shared medium several in-process buses publish on. */
export class MemoryBusHub {
  readonly handlers = new Set<BusHandler>();
}

/** A bus whose subscribers live in this process. */
export class MemoryBus implements Bus {
  readonly kind = "memory";
  #hub: MemoryBusHub;
  #handler?: BusHandler;

  constructor(hub: MemoryBusHub = new MemoryBusHub()) {
    this.#hub = hub;
  }

  publish(mailboxId: string, raw: string): Promise<void> {
    // Deliver in a later microtask so no handler runs inside the publisher's call, as with a real
    // broker; order per mailbox is kept because microtasks run in FIFO order.
    queueMicrotask(() => {
      for (const h of this.#hub.handlers) {
        if (h === this.#handler) continue; // the publishing relay delivers its own
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
    if (this.#handler) this.#hub.handlers.delete(this.#handler);
    this.#handler = handler;
    this.#hub.handlers.add(handler);
    return Promise.resolve();
  }

  check(): Promise<BackendStatus> {
    return Promise.resolve({ ok: true, detail: "in process" });
  }

  close(): Promise<void> {
    if (this.#handler) this.#hub.handlers.delete(this.#handler);
    this.#handler = undefined;
    return Promise.resolve();
  }
}
