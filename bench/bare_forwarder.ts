/**
 * The reference the relay is measured against: the same shape of work in the same runtime, minus
 * parsing, validation, signature checks, storage and the bus. Deno.serve + WebSocket; sends a fake
 * challenge, takes the first frame as auth (no verify) and registers the socket under the `key`
 * found by substring, then forwards every text frame as-is to the socket registered for its
 * `"to":"..."` and answers a tiny accepted frame.
 *
 * Usage: deno run -A bench/bare_forwarder.ts [--port 0] [--host 127.0.0.1]
 * Logs `{"msg":"listening","port":N}` on stdout; exits on SIGTERM/SIGINT.
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    port: { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
  },
});

function field(s: string, tag: string): string | undefined {
  const i = s.indexOf(tag);
  if (i < 0) return undefined;
  const j = s.indexOf('"', i + tag.length);
  return j < 0 ? undefined : s.slice(i + tag.length, j);
}

const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const sockets = new Map<string, WebSocket>();

const server = Deno.serve({
  port: Number(values.port),
  hostname: values.host,
  onListen: ({ port }) => console.log(JSON.stringify({ msg: "listening", port })),
}, (req) => {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("websocket only", { status: 426 });
  }
  const { socket, response } = Deno.upgradeWebSocket(req);
  let key: string | undefined;
  socket.onopen = () => {
    const challenge = b64(crypto.getRandomValues(new Uint8Array(32)));
    socket.send(`{"v":1,"type":"challenge","challenge":"${challenge}","expires_in_ms":10000}`);
  };
  socket.onmessage = (e) => {
    const s = e.data;
    if (typeof s !== "string") return;
    if (key === undefined) {
      key = field(s, '"key":"') ?? "";
      sockets.set(key, socket);
      socket.send(`{"v":1,"type":"ready","key":"${key}"}`);
      socket.send(`{"v":1,"type":"synced","count":0}`);
      return;
    }
    const to = field(s, '"to":"');
    if (to === undefined) return; // acks, pings: nothing to forward
    sockets.get(to)?.send(s);
    socket.send(`{"v":1,"type":"accepted","id":"${field(s, '"id":"')}"}`);
  };
  socket.onclose = () => {
    if (key !== undefined && sockets.get(key) === socket) sockets.delete(key);
  };
  socket.onerror = () => {};
  return response;
});

const stop = () => {
  server.shutdown().finally(() => Deno.exit(0));
  setTimeout(() => Deno.exit(0), 2000);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
await server.finished;
