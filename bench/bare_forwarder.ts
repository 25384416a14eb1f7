/**
 * The reference the relay is measured against: the same shape of work in the same runtime, minus
 * parsing, validation, signature checks, storage and the bus. Deno.serve + WebSocket, protocol
 * v2 frames: sends a `hello`, takes an `open` as proof (no verify) and registers the socket under
 * the pair mailbox id of the `key` found by substring, then forwards every other text frame that
 * names a `"to":"..."` as-is to the socket registered for it and answers a tiny accepted frame.
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
const PAIR = new TextEncoder().encode("chat-p2p/2 pair\0");

/** The pair mailbox id of a base64 auth key: SHA-256 of the label and the key. */
async function mailboxOf(key: string): Promise<string> {
  const raw = Uint8Array.from(atob(key), (c) => c.charCodeAt(0));
  const data = new Uint8Array(PAIR.length + raw.length);
  data.set(PAIR);
  data.set(raw, PAIR.length);
  return b64(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
}

const server = Deno.serve({
  port: Number(values.port),
  hostname: values.host,
  onListen: ({ port }) => console.log(JSON.stringify({ msg: "listening", port })),
}, (req) => {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return new Response("websocket only", { status: 426 });
  }
  const { socket, response } = Deno.upgradeWebSocket(req);
  let mailbox: string | undefined;
  socket.onopen = () => {
    const challenge = b64(crypto.getRandomValues(new Uint8Array(32)));
    socket.send(`{"v":2,"type":"hello","challenge":"${challenge}"}`);
  };
  socket.onmessage = async (e) => {
    const s = e.data;
    if (typeof s !== "string") return;
    if (s.includes('"type":"open"')) {
      mailbox = await mailboxOf(field(s, '"key":"') ?? "");
      sockets.set(mailbox, socket);
      socket.send(`{"v":2,"type":"opened","mailbox":"${mailbox}"}`);
      socket.send(`{"v":2,"type":"synced","mailbox":"${mailbox}","count":0}`);
      return;
    }
    const to = field(s, '"to":"');
    if (to === undefined) return; // acks, pings: nothing to forward
    sockets.get(to)?.send(s);
    socket.send(`{"v":2,"type":"accepted","id":"${field(s, '"id":"')}"}`);
  };
  socket.onclose = () => {
    if (mailbox !== undefined && sockets.get(mailbox) === socket) sockets.delete(mailbox);
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
