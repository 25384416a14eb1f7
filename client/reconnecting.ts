/**
 * A relay connection that stays up: {@linkcode ReconnectingRelay} connects, passes on what the
 * relay pushes, and when the socket drops connects again after a backoff with jitter
 * (`backoffDelay` of @chat-p2p/protocol/async: 0.5 s doubling up to 30 s, each wait 50–100 % of
 * its step, so the clients of a relay that restarts do not all come back at once). Every change
 * of state is an event. It gives up only when told to ({@linkcode ReconnectOptions.giveUpAfterMs})
 * or when retrying cannot help: the relay refused the identity (`auth_failed`) or the URL is not
 * a relay URL.
 *
 * @module
 */
import type { Envelope, KeyPair } from "@chat-p2p/protocol";
import { backoffDelay, type BackoffOptions, sleep } from "@chat-p2p/protocol/async";
import {
  type CloseInfo,
  type ConnectOptions,
  connectRelay,
  type RelayEvent,
  type RelaySession,
} from "./connection.ts";
import { emit } from "./_emit.ts";
import { ClientError, RelayError } from "./errors.ts";

/** Where the connection stands. */
export type ConnectionState =
  /** An attempt is under way. */
  | "connecting"
  /** Authenticated: sends and acks go through. */
  | "connected"
  /** Down; another attempt follows after `retryInMs`. */
  | "disconnected"
  /** Stopped for good: closed by the caller, or given up (`error` says why). */
  | "closed";

/** A change of {@linkcode ConnectionState}. */
export interface ConnectionEvent {
  /** Always "connection". */
  type: "connection";
  /** The state it is in now. */
  state: ConnectionState;
  /** Attempts since the last time it was connected (1 for the first). */
  attempt: number;
  /** How the socket closed, when a connection that was up dropped. */
  close?: CloseInfo;
  /** Why an attempt failed, or why it gave up. */
  error?: RelayError;
  /** When `disconnected`: the wait before the next attempt. */
  retryInMs?: number;
}

/** What a {@linkcode ReconnectingRelay} reports: state changes and what the relay pushes. */
export type ReconnectingEvent = ConnectionEvent | RelayEvent;

/** Default spacing of reconnect attempts. */
export const RECONNECT_BACKOFF: BackoffOptions = {
  minTimeout: 500,
  multiplier: 2,
  maxTimeout: 30_000,
  jitter: 0.5,
};

/** Options for {@linkcode ReconnectingRelay}. */
export interface ReconnectOptions extends ConnectOptions {
  /** Spacing of attempts (default {@linkcode RECONNECT_BACKOFF}). */
  backoff?: BackoffOptions;
  /**
   * Give up (state `closed`) once no connection was up for this long; 0 = after the first
   * failed attempt. Default: never.
   */
  giveUpAfterMs?: number;
  /** How to make one connection (default {@linkcode connectRelay}); tests pass a fake. */
  connect?: (url: string, identity: KeyPair, opts: ConnectOptions) => Promise<RelaySession>;
  /** Random source for the jitter (tests). */
  random?: () => number;
}

/** Failures no later attempt can fix. */
function isFatal(e: RelayError): boolean {
  return e.code === "auth_failed" || e.code === "bad_url";
}

function asRelayError(e: unknown): RelayError {
  if (e instanceof RelayError) return e;
  if (e instanceof ClientError) return new RelayError("protocol", e.message);
  return new RelayError("protocol", e instanceof Error ? e.message : String(e));
}

/**
 * A connection to one relay that reconnects by itself.
 *
 * @example
 * ```ts ignore
 * import { generateKeyPair } from "@chat-p2p/protocol";
 * import { ReconnectingRelay } from "@chat-p2p/client";
 *
 * const relay = new ReconnectingRelay("ws://127.0.0.1:8080/ws", generateKeyPair());
 * relay.on((e) => {
 *   if (e.type === "connection") console.log(e.state, e.error?.message ?? "");
 *   if (e.type === "deliver") relay.ack([e.envelope.id]); // after storing it
 * });
 * relay.start();
 * await relay.connected();
 * await relay.close();
 * ```
 */
export class ReconnectingRelay {
  /** The URL as given. */
  readonly url: string;
  readonly #identity: KeyPair;
  readonly #opts: ReconnectOptions;
  readonly #listeners = new Set<(e: ReconnectingEvent) => void>();
  readonly #stop = new AbortController();
  #state: ConnectionState = "disconnected";
  #session: RelaySession | undefined;
  #running: Promise<void> | undefined;
  #closedError: RelayError | undefined;

  /** Creates the connection; nothing happens until {@linkcode ReconnectingRelay.start}. */
  constructor(url: string, identity: KeyPair, opts: ReconnectOptions = {}) {
    this.url = url;
    this.#identity = identity;
    this.#opts = opts;
  }

  /** The current state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The authenticated session while `connected`. */
  get session(): RelaySession | undefined {
    return this.#state === "connected" ? this.#session : undefined;
  }

  /** Calls `listener` with every event; returns a function that stops it. */
  on(listener: (e: ReconnectingEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts connecting (once). */
  start(): void {
    this.#running ??= this.#run();
  }

  /**
   * Resolves when connected (at once if it is); rejects with the reason when it is closed or
   * gives up first.
   */
  connected(): Promise<void> {
    if (this.#state === "connected") return Promise.resolve();
    if (this.#state === "closed") return Promise.reject(this.#closedReason());
    return new Promise((resolve, reject) => {
      const off = this.on((e) => {
        if (e.type !== "connection") return;
        if (e.state === "connected") {
          off();
          resolve();
        } else if (e.state === "closed") {
          off();
          reject(this.#closedReason());
        }
      });
    });
  }

  /**
   * Sends an envelope on the current connection; rejects with `connection_closed` when there is
   * none (see {@linkcode RelaySession.send} for the rest).
   */
  send(envelope: Envelope, opts: { timeoutMs?: number } = {}): Promise<void> {
    const s = this.session;
    if (!s) {
      return Promise.reject(
        new RelayError("connection_closed", `not connected to relay ${this.url}`, {
          id: envelope.id,
        }),
      );
    }
    return s.send(envelope, opts);
  }

  /**
   * Acks ids on the current connection. Returns false when there is none: the relay keeps them
   * and delivers them again on the next connection.
   */
  ack(ids: string[]): boolean {
    const s = this.session;
    if (!s || !s.isOpen) return false;
    try {
      s.ack(ids);
      return true;
    } catch {
      return false;
    }
  }

  /** Stops reconnecting and closes the socket (queued frames are written first, briefly). */
  async close(): Promise<void> {
    if (!this.#stop.signal.aborted) this.#stop.abort();
    await this.#session?.close();
    await this.#running;
    if (this.#state !== "closed") this.#setState({ state: "closed", attempt: 0 });
  }

  #closedReason(): RelayError {
    return this.#closedError ??
      new RelayError("closed", `the connection to relay ${this.url} was closed`);
  }

  #emit(e: ReconnectingEvent): void {
    emit(this.#listeners, e);
  }

  #setState(e: Omit<ConnectionEvent, "type">): void {
    this.#state = e.state;
    if (e.state === "closed" && e.error) this.#closedError = e.error;
    this.#emit({ type: "connection", ...e });
  }

  async #run(): Promise<void> {
    const connect = this.#opts.connect ?? connectRelay;
    const backoff = this.#opts.backoff ?? RECONNECT_BACKOFF;
    const giveUpAfter = this.#opts.giveUpAfterMs ?? Infinity;
    const signal = this.#stop.signal;
    let attempt = 0;
    let downSince = Date.now();
    while (!signal.aborted) {
      attempt++;
      this.#setState({ state: "connecting", attempt });
      let session: RelaySession;
      try {
        session = await connect(this.url, this.#identity, this.#opts);
      } catch (e) {
        const error = asRelayError(e);
        const left = downSince + giveUpAfter - Date.now();
        if (signal.aborted) break;
        if (isFatal(error) || left <= 0) {
          this.#setState({ state: "closed", attempt, error });
          return;
        }
        const retryInMs = Math.min(
          left,
          backoffDelay(attempt - 1, backoff, this.#opts.random),
        );
        this.#setState({ state: "disconnected", attempt, error, retryInMs });
        await sleep(retryInMs, signal);
        continue;
      }
      if (signal.aborted) {
        await session.close(); // closed while connecting
        break;
      }
      this.#session = session;
      this.#setState({ state: "connected", attempt });
      attempt = 0;
      for await (const e of session) this.#emit(e);
      const close = await session.closed;
      this.#session = undefined;
      if (signal.aborted) break;
      downSince = Date.now();
      const retryInMs = backoffDelay(0, backoff, this.#opts.random);
      this.#setState({ state: "disconnected", attempt: 0, close, retryInMs });
      await sleep(retryInMs, signal);
    }
  }
}
