/**
 * A relay connection that stays up: {@linkcode ReconnectingRelay} keeps a **sender** socket
 * (sends only, opens no mailbox: sealed sender) and, unless told otherwise, two reading sockets:
 * the **inbox** socket, which opens only the request inbox (whose `open` names the identity key),
 * and the **reader** socket, which opens the pair mailboxes. So no socket links the identity to
 * its pair mailboxes, nor counts its contacts for the relay, from frames alone (IP addresses and
 * timing still can: PROTOCOL.md §16). It passes on what the relay pushes, and when any socket
 * drops closes them all and connects again after a backoff with jitter (`backoffDelay` of
 * @chat-p2p/protocol/async: 0.5 s doubling up to 30 s, each wait 50–100 % of its step, so the
 * clients of a relay that restarts do not all come back at once). Every change of state is an
 * event. It gives up only when told to ({@linkcode ReconnectOptions.giveUpAfterMs}) or when
 * retrying cannot help: the URL is not a relay URL, or the relay speaks another protocol version.
 *
 * @module
 */
import type { EnvelopeV2, KeyPair, MailboxKind } from "@chat-p2p/protocol";
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
  /** Every socket is up: sends, opens and acks go through. */
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
  connect?: (url: string, opts: ConnectOptions) => Promise<RelaySession>;
  /**
   * Keep the reading sockets too, inbox and reader (default true); false: only send (the `send`
   * command).
   */
  reader?: boolean;
  /** Random source for the jitter (tests). */
  random?: () => number;
}

/** Failures no later attempt can fix. */
function isFatal(e: RelayError): boolean {
  return e.code === "bad_url" || e.code === "unsupported_version";
}

function asRelayError(e: unknown): RelayError {
  if (e instanceof RelayError) return e;
  if (e instanceof ClientError) return new RelayError("protocol", e.message);
  return new RelayError("protocol", e instanceof Error ? e.message : String(e));
}

/**
 * The sockets of one connection: the sender's, and unless it only sends the inbox socket (the
 * request inbox only) and the reader socket (pair mailboxes).
 */
interface Link {
  sender: RelaySession;
  inbox?: RelaySession;
  reader?: RelaySession;
}

/**
 * A connection to one relay that reconnects by itself.
 *
 * @example
 * ```ts ignore
 * import { generateKeyPair } from "@chat-p2p/protocol";
 * import { ReconnectingRelay } from "@chat-p2p/client";
 *
 * const me = generateKeyPair();
 * const relay = new ReconnectingRelay("ws://127.0.0.1:8080/ws");
 * relay.on((e) => {
 *   if (e.type === "connection" && e.state === "connected") relay.open("inbox", me);
 *   if (e.type === "deliver") relay.ack(e.envelope.to, [e.envelope.id]); // after storing it
 * });
 * relay.start();
 * await relay.connected();
 * await relay.close();
 * ```
 */
export class ReconnectingRelay {
  /** The URL as given. */
  readonly url: string;
  readonly #opts: ReconnectOptions;
  readonly #listeners = new Set<(e: ReconnectingEvent) => void>();
  readonly #stop = new AbortController();
  #state: ConnectionState = "disconnected";
  #link: Link | undefined;
  #running: Promise<void> | undefined;
  #closedError: RelayError | undefined;

  /** Creates the connection; nothing happens until {@linkcode ReconnectingRelay.start}. */
  constructor(url: string, opts: ReconnectOptions = {}) {
    this.url = url;
    this.#opts = opts;
  }

  /** The current state. */
  get state(): ConnectionState {
    return this.#state;
  }

  /** The sender socket while `connected`. */
  get session(): RelaySession | undefined {
    return this.#state === "connected" ? this.#link?.sender : undefined;
  }

  /** The socket of the pair mailboxes while `connected` (none when it only sends). */
  get reader(): RelaySession | undefined {
    return this.#state === "connected" ? this.#link?.reader : undefined;
  }

  /** The socket of the request inbox while `connected` (none when it only sends). */
  get inboxReader(): RelaySession | undefined {
    return this.#state === "connected" ? this.#link?.inbox : undefined;
  }

  /** The socket that opens mailboxes of `kind`: the inbox socket, or the reader socket. */
  readerFor(kind: MailboxKind): RelaySession | undefined {
    return kind === "inbox" ? this.inboxReader : this.reader;
  }

  /** The current socket on which `mailbox` is open, if any. */
  openedOn(mailbox: string): RelaySession | undefined {
    return [this.inboxReader, this.reader].find((s) => s?.opened.has(mailbox));
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
   * Sends an envelope on the current sender socket; rejects with `connection_closed` when there
   * is none (see {@linkcode RelaySession.send} for the rest).
   */
  send(envelope: EnvelopeV2, opts: { key?: string; timeoutMs?: number } = {}): Promise<void> {
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
   * Opens a mailbox (see {@linkcode RelaySession.open}): the request inbox on the inbox socket,
   * a pair mailbox on the reader socket. Rejects with `connection_closed` when there is none.
   * Mailboxes are not opened again by themselves after a reconnect: open them on every
   * `connected` event.
   */
  open(kind: MailboxKind, authKeyPair: KeyPair): Promise<string> {
    const r = this.readerFor(kind);
    if (!r) {
      return Promise.reject(
        new RelayError("connection_closed", `no reader connection to relay ${this.url}`),
      );
    }
    return r.open(kind, authKeyPair);
  }

  /**
   * Acks ids of a mailbox on the current socket that opened it. Returns false when there is
   * none: the relay keeps them and delivers them again.
   */
  ack(mailbox: string, ids: string[]): boolean {
    const s = this.openedOn(mailbox);
    if (!s || !s.isOpen) return false;
    try {
      s.ack(mailbox, ids);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Registers a mailbox at the relay without reading it: opens it on a short-lived socket of its
   * own (not one of this connection's), waits for `opened`, and closes that socket at once,
   * acking nothing (whatever the relay pushes meanwhile stays there for the mailbox's reader).
   * Resolves with the mailbox id; rejects like {@linkcode RelaySession.open}, or with
   * `connection_closed` when this relay is not connected.
   */
  async register(kind: MailboxKind, authKeyPair: KeyPair): Promise<string> {
    if (this.#state !== "connected") {
      throw new RelayError("connection_closed", `not connected to relay ${this.url}`);
    }
    const s = await (this.#opts.connect ?? connectRelay)(this.url, this.#opts);
    try {
      return await s.open(kind, authKeyPair);
    } finally {
      await s.close();
    }
  }

  /** Stops reconnecting and closes the sockets (queued frames are written first, briefly). */
  async close(): Promise<void> {
    if (!this.#stop.signal.aborted) this.#stop.abort();
    await this.#closeLink(this.#link);
    await this.#running;
    if (this.#state !== "closed") this.#setState({ state: "closed", attempt: 0 });
  }

  async #closeLink(link: Link | undefined): Promise<void> {
    await Promise.all([link?.sender.close(), link?.inbox?.close(), link?.reader?.close()]);
  }

  /** The sockets of a new link, or the first failure (the others are closed then). */
  async #connectLink(): Promise<Link> {
    const connect = this.#opts.connect ?? connectRelay;
    const wanted = [connect(this.url, this.#opts)];
    if (this.#opts.reader !== false) {
      wanted.push(connect(this.url, this.#opts), connect(this.url, this.#opts));
    }
    const got = await Promise.allSettled(wanted);
    const failed = got.find((g) => g.status === "rejected");
    if (failed) {
      await Promise.all(got.map((g) => g.status === "fulfilled" ? g.value.close() : undefined));
      throw failed.reason;
    }
    const [sender, inbox, reader] = got.map((g) =>
      (g as PromiseFulfilledResult<RelaySession>).value
    );
    return { sender, inbox, reader };
  }

  /** Passes on what any socket pushes until one of them closes; then closes the others. */
  async #pump(link: Link): Promise<CloseInfo> {
    const sockets = [link.sender, link.inbox, link.reader].filter((s) => s !== undefined);
    const first = await Promise.race(
      sockets.map(async (s) => {
        for await (const e of s) this.#emit(e);
        return await s.closed;
      }),
    );
    await this.#closeLink(link);
    return first;
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
    const backoff = this.#opts.backoff ?? RECONNECT_BACKOFF;
    const giveUpAfter = this.#opts.giveUpAfterMs ?? Infinity;
    const signal = this.#stop.signal;
    let attempt = 0;
    let downSince = Date.now();
    while (!signal.aborted) {
      attempt++;
      this.#setState({ state: "connecting", attempt });
      let link: Link;
      try {
        link = await this.#connectLink();
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
        await this.#closeLink(link); // closed while connecting
        break;
      }
      this.#link = link;
      this.#setState({ state: "connected", attempt });
      attempt = 0;
      const close = await this.#pump(link);
      this.#link = undefined;
      if (signal.aborted) break;
      downSince = Date.now();
      const retryInMs = backoffDelay(0, backoff, this.#opts.random);
      this.#setState({ state: "disconnected", attempt: 0, close, retryInMs });
      await sleep(retryInMs, signal);
    }
  }
}
