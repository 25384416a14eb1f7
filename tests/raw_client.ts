/**
 * A raw protocol-v2 client for tests: sends any text or bytes, queues every frame it receives,
 * and records how the socket closed. Hostile-input tests need it to send what no real client
 * would. It also knows the few frames a well-behaved client sends (`open`, `send`, `ack`), and
 * makes mailboxes and envelopes the relay cannot tell from real ones.
 *
 * @module
 */
import {
  type EnvelopeV2,
  generateKeyPair,
  inboxId,
  type KeyPair,
  type MailboxKind,
  newId,
  openFrame,
  PAIR_BODY_OVERHEAD,
  pairMailboxId,
  parseRelayUrl,
  randomBytes,
  toBase64,
} from "@chat-p2p/protocol";

// deno-lint-ignore no-explicit-any
export type Frame = Record<string, any>;

/** A mailbox a test reads: its kind, the auth key pair that opens it, and its id. */
export interface TestMailbox {
  kind: MailboxKind;
  auth: KeyPair;
  /** Base64 mailbox id. */
  id: string;
}

/** A fresh pair mailbox (a random auth key, as a direction of a pair would have). */
export function pairBox(auth: KeyPair = generateKeyPair()): TestMailbox {
  return { kind: "pair", auth, id: toBase64(pairMailboxId(auth.publicKey)) };
}

/** The request inbox of `identity` (its auth key is the identity itself). */
export function inboxBox(identity: KeyPair = generateKeyPair()): TestMailbox {
  return { kind: "inbox", auth: identity, id: toBase64(inboxId(identity.publicKey)) };
}

/**
 * An envelope for mailbox `to` with a random body of a valid size (default the smallest pair
 * body): to the relay it is indistinguishable from a real one.
 */
export function envelope(
  to: string | TestMailbox,
  id = newId(),
  bodyBytes = 512 + PAIR_BODY_OVERHEAD,
): EnvelopeV2 {
  return {
    v: 2,
    id,
    to: typeof to === "string" ? to : to.id,
    body: toBase64(randomBytes(bodyBytes)),
  };
}

/** The canonical relay URL a client signs for `url`. */
export function canonical(url: string): string {
  const p = parseRelayUrl(url);
  if (!p.ok) throw new Error(p.message);
  return p.value;
}

/** A test client on one WebSocket. */
export class RawClient {
  readonly ws: WebSocket;
  readonly url: string;
  readonly frames: Frame[] = [];
  closeCode?: number;
  closed: Promise<number>;
  #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket, url: string) {
    this.ws = ws;
    this.url = url;
    const { promise, resolve } = Promise.withResolvers<number>();
    this.closed = promise;
    ws.onmessage = (e) => {
      this.frames.push(typeof e.data === "string" ? JSON.parse(e.data) : { binary: true });
      this.#wake();
    };
    ws.onclose = (e) => {
      this.closeCode = e.code;
      resolve(e.code);
      this.#wake();
    };
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Opens a socket and waits for it (and for the `hello` frame). */
  static async connect(url: string): Promise<RawClient> {
    const ws = new WebSocket(url);
    const c = new RawClient(ws, url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = (e) =>
        reject(new Error(`cannot connect to ${url}: ${(e as ErrorEvent).message}`));
    });
    c.challenge = (await c.next("hello")).challenge;
    return c;
  }

  /**
   * Connects and opens `boxes`, each to its `synced`; the frames up to there are taken off the
   * queue (see {@linkcode openAndSync} for what they were).
   */
  static async reader(url: string, ...boxes: TestMailbox[]): Promise<RawClient> {
    const c = await RawClient.connect(url);
    for (const b of boxes) await c.openAndSync(b);
    return c;
  }

  /**
   * Opens `boxes` once on a socket it then closes: the relay knows them from then on (sends to a
   * pair mailbox nobody opened are `unknown_mailbox`), and nobody is reading.
   */
  static async register(url: string, ...boxes: TestMailbox[]): Promise<void> {
    await (await RawClient.reader(url, ...boxes)).close();
  }

  /** The challenge this socket's `hello` carried. */
  challenge = "";

  /** Sends a correct `open` for `box` (optionally signing another relay URL or challenge). */
  async open(
    box: TestMailbox,
    relayUrl = canonical(this.url),
    challenge = this.challenge,
  ): Promise<void> {
    this.send(await openFrame(relayUrl, challenge, box.kind, box.auth));
  }

  /**
   * Opens `box` and waits for its `synced`; returns the envelopes delivered before it (oldest
   * first), having taken `opened`, those `deliver`s and `synced` off the queue.
   */
  async openAndSync(box: TestMailbox, ms = 10_000): Promise<EnvelopeV2[]> {
    await this.open(box);
    const opened = await this.next("opened", ms);
    if (opened.mailbox !== box.id) throw new Error(`opened ${opened.mailbox}, not ${box.id}`);
    const synced = await this.nextWhere((f) => f.type === "synced" && f.mailbox === box.id, ms);
    const got: EnvelopeV2[] = [];
    for (let i = 0; i < this.frames.length && got.length < synced.count;) {
      const f = this.frames[i];
      if (f.type === "deliver" && f.envelope.to === box.id) {
        got.push(f.envelope);
        this.frames.splice(i, 1);
      } else i++;
    }
    if (got.length !== synced.count) {
      throw new Error(`synced says ${synced.count}, ${got.length} were delivered`);
    }
    return got;
  }

  /** Sends an envelope (with `key` for a request inbox). */
  sendEnvelope(e: EnvelopeV2, key?: string): void {
    this.send(
      key === undefined ? { v: 2, type: "send", envelope: e } : {
        v: 2,
        type: "send",
        envelope: e,
        key,
      },
    );
  }

  /** Sends `e` and returns the relay's answer to it (`accepted` or an `error` naming its id). */
  async sendAndWait(e: EnvelopeV2, key?: string, ms = 10_000): Promise<Frame> {
    this.sendEnvelope(e, key);
    return await this.nextWhere((f) => f.id === e.id, ms);
  }

  /** Acks `ids` of `mailbox`. */
  ack(mailbox: string | TestMailbox, ids: string[]): void {
    this.send({
      v: 2,
      type: "ack",
      mailbox: typeof mailbox === "string" ? mailbox : mailbox.id,
      ids,
    });
  }

  /** Sends a frame: objects as JSON, strings and bytes as they are. */
  send(f: Frame | string | Uint8Array): void {
    this.ws.send(typeof f === "string" || f instanceof Uint8Array ? f : JSON.stringify(f));
  }

  /**
   * Removes and returns the first queued frame matching `type` (any type when omitted), waiting up
   * to `ms` for it.
   */
  next(type?: string, ms = 5000): Promise<Frame> {
    return this.nextWhere((f) => type === undefined || f.type === type, ms, type ?? "any");
  }

  /** Removes and returns the first queued frame for which `match` holds, waiting up to `ms`. */
  async nextWhere(match: (f: Frame) => boolean, ms = 5000, what = "matching"): Promise<Frame> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.closeCode !== undefined) {
        throw new Error(
          `socket closed (${this.closeCode}) before a '${what}' frame; had ${
            JSON.stringify(this.frames)
          }`,
        );
      }
      const left = end - Date.now();
      if (left <= 0) {
        throw new Error(`no '${what}' frame within ${ms} ms; had ${JSON.stringify(this.frames)}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Closes the socket and waits until it is closed. */
  async close(): Promise<void> {
    if (this.closeCode === undefined) {
      if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
        this.ws.close();
      }
      await this.closed;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
