/**
 * A small protocol-v2 relay in the test process, for client tests that need answers a real relay
 * gives only under faults (`unavailable`, `mailbox_full`, `internal`) or a relay that lies
 * (tests/malicious_relay.ts builds on its hooks). It speaks the v2 frames the way
 * docs/PROTOCOL.md says: `hello`, `open` (signature checked against its URL and the socket's
 * challenge; first open registers), `send` (`unknown_mailbox` for a mailbox nobody registered,
 * request inboxes with `key`), `deliver` oldest first then `synced`, live deliveries, `ack`. It
 * keeps everything in memory.
 *
 * @module
 */
import {
  type EnvelopeV2,
  type ErrorCode,
  fromBase64,
  isInboxOf,
  mailboxIdFor,
  parseClientFrameV2,
  toBase64,
  verifyOpenFrame,
} from "@chat-p2p/protocol";

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago): a relay that is down. */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** What the fake relay answers to one send: `accepted`, or an error frame with this code. */
export type FakeAnswer = "accepted" | { code: ErrorCode; retry_after_ms?: number };

/** Ways to make the relay lie; each hook sees every envelope in its place. */
export interface FakeRelayHooks {
  /**
   * What to store for an accepted send (default: the envelope itself): `[]` drops it, two copies
   * duplicate it, a changed envelope is what gets delivered.
   */
  store?: (e: EnvelopeV2) => EnvelopeV2[];
  /**
   * What to deliver to a socket for the envelopes about to go out (the pending ones on `open`,
   * or one live one): reorder, duplicate, drop or add to them.
   */
  deliver?: (envelopes: EnvelopeV2[], live: boolean) => EnvelopeV2[];
  /** Milliseconds to hold each live delivery frame back (a slow or delaying relay). */
  delayMs?: (e: EnvelopeV2) => number;
  /** Most envelopes a request inbox holds (`mailbox_full` beyond), as a real relay caps it. */
  inboxMaxCount?: number;
}

/** A running fake relay; `await using` stops it. */
export interface FakeRelay extends AsyncDisposable {
  /** ws:// URL of its endpoint. */
  url: string;
  /** Every envelope sent to it, in arrival order (repeats included). */
  sends: EnvelopeV2[];
  /** Every send frame's `key` (undefined for pair sends), in the order of `sends`. */
  keys: Array<string | undefined>;
  /** Envelopes held per mailbox id (not acked yet). */
  mailboxes: Map<string, EnvelopeV2[]>;
  /** Mailbox ids registered (opened at least once). */
  registered: Set<string>;
  /** Every successful `open`, in order: the mailbox and which socket (numbered from 1) opened it. */
  opens: Array<{ socket: number; mailbox: string }>;
  /** Puts an envelope straight into a mailbox (what a relay could do), delivering it live. */
  inject(e: EnvelopeV2): void;
}

interface Socket {
  n: number;
  ws: WebSocket;
  challenge: string;
  opened: Set<string>;
}

/**
 * Starts a fake relay on 127.0.0.1; `answer` gets each envelope and how many came before it
 * (default: accept everything it would store).
 */
export function startFakeRelay(
  answer: (e: EnvelopeV2, n: number) => FakeAnswer = () => "accepted",
  hooks: FakeRelayHooks = {},
): FakeRelay {
  const sends: EnvelopeV2[] = [];
  const keys: Array<string | undefined> = [];
  const sockets = new Set<Socket>();
  const mailboxes = new Map<string, EnvelopeV2[]>();
  const registered = new Set<string>();
  const opens: Array<{ socket: number; mailbox: string }> = [];
  let socketCount = 0;
  let url = "";

  const frame = (s: Socket, f: object) => {
    if (s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify({ v: 2, ...f }));
  };
  const deliver = (s: Socket, list: EnvelopeV2[], live: boolean) => {
    for (const e of hooks.deliver ? hooks.deliver(list, live) : list) {
      const ms = live ? hooks.delayMs?.(e) ?? 0 : 0;
      if (ms > 0) setTimeout(() => frame(s, { type: "deliver", envelope: e }), ms);
      else frame(s, { type: "deliver", envelope: e });
    }
  };
  const put = (e: EnvelopeV2) => {
    const box = mailboxes.get(e.to) ?? [];
    mailboxes.set(e.to, box);
    if (box.some((x) => x.id === e.id)) return;
    box.push(e);
    for (const s of sockets) if (s.opened.has(e.to)) deliver(s, [e], true);
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket: ws, response } = Deno.upgradeWebSocket(req);
    const challenge = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
    const s: Socket = { n: ++socketCount, ws, challenge, opened: new Set() };
    sockets.add(s);
    ws.onopen = () => frame(s, { type: "hello", challenge });
    ws.onclose = () => sockets.delete(s);
    ws.onmessage = async (ev) => {
      const p = parseClientFrameV2(String(ev.data));
      if (!p.ok) return frame(s, { type: "error", code: p.code, message: p.message });
      const f = p.value;
      if (f.type === "ping") return frame(s, { type: "pong", nonce: f.nonce });
      if (f.type === "open") {
        const mailbox = await verifyOpenFrame(f, url, s.challenge);
        if (!mailbox) {
          const id = toBase64(mailboxIdFor(f.kind, fromBase64(f.key)!));
          return frame(s, {
            type: "error",
            code: "auth_failed",
            message: "bad open signature",
            mailbox: id,
          });
        }
        registered.add(mailbox);
        s.opened.add(mailbox);
        opens.push({ socket: s.n, mailbox });
        frame(s, { type: "opened", mailbox });
        const pending = [...(mailboxes.get(mailbox) ?? [])];
        deliver(s, pending, false);
        return frame(s, { type: "synced", mailbox, count: pending.length });
      }
      if (f.type === "ack") {
        if (!s.opened.has(f.mailbox)) {
          return frame(s, {
            type: "error",
            code: "not_open",
            message: "not open",
            mailbox: f.mailbox,
          });
        }
        const box = mailboxes.get(f.mailbox) ?? [];
        mailboxes.set(f.mailbox, box.filter((e) => !f.ids.includes(e.id)));
        return;
      }
      if (f.type !== "send") return;
      const e = f.envelope;
      const a = answer(e, sends.length);
      sends.push(e);
      keys.push(f.key);
      if (a !== "accepted") {
        return frame(s, { type: "error", id: e.id, message: `fake relay says ${a.code}`, ...a });
      }
      if (f.key !== undefined ? !isInboxOf(e.to, f.key) : !registered.has(e.to)) {
        const code = f.key !== undefined ? "bad_frame" : "unknown_mailbox";
        return frame(s, { type: "error", id: e.id, code, message: `fake relay: ${code}` });
      }
      const held = mailboxes.get(e.to)?.length ?? 0;
      if (f.key !== undefined && held >= (hooks.inboxMaxCount ?? Infinity)) {
        return frame(s, {
          type: "error",
          id: e.id,
          code: "mailbox_full",
          message: "fake relay: the request inbox is full",
        });
      }
      for (const x of hooks.store ? hooks.store(e) : [e]) put(x);
      frame(s, { type: "accepted", id: e.id });
    };
    return response;
  });
  url = `ws://127.0.0.1:${server.addr.port}/ws`;
  return {
    url,
    sends,
    keys,
    mailboxes,
    registered,
    opens,
    inject: put,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.ws.close(1001);
      await server.shutdown();
    },
  };
}
