/**
 * `deno run -A bench/nagle_check.ts`: does a client hold back a frame written while the previous
 * one is unacknowledged (Nagle's algorithm)? A `Deno.serve` WebSocket server answers only frame
 * "B"; the client writes "A" then "B" back to back and times the answer. With Nagle on, "B" waits
 * for the delayed ACK of "A" (~40 ms on Linux). Compares Deno's built-in `WebSocket` with the
 * generators' client (bench/lib/ws.ts, TCP_NODELAY), and the server's own direction.
 *
 * @module
 */
import { type BenchSocket, connectWs } from "./lib/ws.ts";
import { delay } from "@chat-p2p/protocol/async";

const ROUNDS = 20;
const srv = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
  const { socket, response } = Deno.upgradeWebSocket(req);
  socket.onmessage = (e) => {
    if (e.data === "B") socket.send("r");
    if (e.data === "S") {
      socket.send("A");
      socket.send("B");
    }
  };
  return response;
});
const url = `ws://127.0.0.1:${srv.addr.port}/`;

async function native(): Promise<BenchSocket> {
  const ws = new WebSocket(url);
  await new Promise((r) => ws.onopen = r);
  const s: BenchSocket = {
    send: (t) => ws.send(t),
    close: () => ws.close(),
    onmessage: null,
    onclose: null,
  };
  ws.onmessage = (e) => s.onmessage?.(e.data);
  return s;
}

async function measure(s: BenchSocket): Promise<{ up: number[]; down: number[] }> {
  const up: number[] = [], down: number[] = [];
  const next = (want: string) => new Promise<void>((r) => s.onmessage = (t) => t === want && r());
  for (let i = 0; i < ROUNDS; i++) {
    let t0 = performance.now();
    s.send("A");
    s.send("B");
    await next("r");
    up.push(performance.now() - t0);
    await delay(5);
    t0 = performance.now();
    s.send("S");
    await next("B");
    down.push(performance.now() - t0);
    await delay(5);
  }
  s.close();
  return { up, down };
}

const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1].toFixed(2);
for (const [name, open] of [["Deno WebSocket", native], ["bench/lib/ws.ts", connectWs]] as const) {
  const { up, down } = await measure(await open(url));
  console.log(
    `${name}: client→server A,B answered after B: median ${med(up)} ms, max ${
      Math.max(...up).toFixed(2)
    }; server→client A,B: median ${med(down)} ms`,
  );
}
await srv.shutdown();
