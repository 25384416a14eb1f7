/**
 * A stand-in relay for client tests that need answers a real relay gives only under faults
 * (`unavailable`, `mailbox_full`, `internal`): it speaks the handshake (any signature passes),
 * then answers every `send` as the test's `answer` function says. It stores and delivers nothing.
 *
 * @module
 */
import type { Envelope, ErrorCode } from "@chat-p2p/protocol";

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago): a relay that is down. */
export function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** What the fake relay answers to one send: `accepted`, or an error frame with this code. */
export type FakeAnswer = "accepted" | { code: ErrorCode; retry_after_ms?: number };

/** A running fake relay; `await using` stops it. */
export interface FakeRelay extends AsyncDisposable {
  /** ws:// URL of its endpoint. */
  url: string;
  /** Every envelope sent to it, in arrival order (repeats included). */
  sends: Envelope[];
}

/** Starts a fake relay on 127.0.0.1; `answer` gets each envelope and how many came before it. */
export function startFakeRelay(answer: (e: Envelope, n: number) => FakeAnswer): FakeRelay {
  const sends: Envelope[] = [];
  const sockets = new Set<WebSocket>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    sockets.add(socket);
    const send = (frame: object) => socket.send(JSON.stringify({ v: 1, ...frame }));
    socket.onopen = () =>
      send({ type: "challenge", challenge: btoa("x".repeat(32)), expires_in_ms: 10_000 });
    socket.onclose = () => sockets.delete(socket);
    socket.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      if (f.type === "auth") {
        send({ type: "ready", key: f.key });
        send({ type: "synced", count: 0 });
      } else if (f.type === "send") {
        const a = answer(f.envelope, sends.length);
        sends.push(f.envelope);
        const id = f.envelope.id;
        send(
          a === "accepted"
            ? { type: "accepted", id }
            : { type: "error", id, message: `fake relay says ${a.code}`, ...a },
        );
      } else if (f.type === "ping") send({ type: "pong", nonce: f.nonce });
    };
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}/ws`,
    sends,
    async [Symbol.asyncDispose]() {
      for (const s of sockets) s.close(1001);
      await server.shutdown();
    },
  };
}
