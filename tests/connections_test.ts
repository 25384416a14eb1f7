/**
 * Connections the relay must not let pile up (issue 12, items 1 and 2): TCP connections that never
 * send a request are closed after the request-header timeout and count toward the per-IP limit;
 * near its file-descriptor limit the relay sheds idle connections and listens again if its accept
 * loop died; and it exits non-zero when it truly cannot serve. Real relay subprocesses, real
 * sockets, `ulimit -n` and `prlimit` for the limits.
 */
import assert from "node:assert/strict";
import { deadline } from "@chat-p2p/protocol/async";
import { pairBox, RawClient } from "./raw_client.ts";
import { RelayProcess } from "./relay_process.ts";

/** Opens `n` TCP connections to `port` that never send anything; stops at the first refusal. */
async function rawConnections(port: number, n: number): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) {
    try {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      break;
    }
  }
  return conns;
}

/** Resolves true once the server has closed `c` (EOF or reset), false if still open after `ms`. */
async function closedByServer(c: Deno.Conn, ms: number): Promise<boolean> {
  const timer = setTimeout(() => c.close(), ms);
  try {
    const n = await c.read(new Uint8Array(64));
    return n === null;
  } catch (e) {
    return !(e instanceof Deno.errors.BadResource); // reset by the server; BadResource: we closed
  } finally {
    clearTimeout(timer);
  }
}

async function get(port: number, path: string): Promise<number | string> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    await r.body?.cancel();
    return r.status;
  } catch (e) {
    return (e as Error).message;
  }
}

async function metric(port: number, line: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${line.replace(/[{}"]/g, "\\$&")} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

Deno.test("connections: 500 silent connections from one address are not held", async () => {
  await using relay = await RelayProcess.start({
    env: { RELAY_REQUEST_HEADER_TIMEOUT_MS: "1500", RELAY_MAX_CONNECTIONS_PER_IP: "64" },
  });
  const conns = await rawConnections(relay.port, 500);
  assert.equal(conns.length, 500, "the kernel accepted them all");
  // Once the relay has looked (every second here), a new WebSocket from the same address counts
  // the silent ones still held, and is refused.
  await new Promise((r) => setTimeout(r, 1200));
  await assert.rejects(RawClient.connect(relay.url), /429|Unexpected|Invalid|cannot connect/);
  const t0 = Date.now();
  const closed = await Promise.all(conns.map((c) => closedByServer(c, 8000)));
  const open = closed.filter((x) => !x).length;
  assert.equal(open, 0, `${open} of 500 silent connections still open after 8 s`);
  assert.ok(Date.now() - t0 < 8000);
  const over = await metric(relay.port, 'chat_relay_connections_shed_total{reason="per_ip"}');
  const timedOut = await metric(
    relay.port,
    'chat_relay_connections_shed_total{reason="header_timeout"}',
  );
  assert.ok(over >= 436 - 50, `only ${over} closed as over the per-IP limit`);
  assert.ok(timedOut > 0, "the rest were closed by the header timeout");
  await using ok = await RawClient.reader(relay.url, pairBox());
  assert.ok(ok.challenge, "a real client from the same address gets in afterwards");
});

Deno.test("connections: out of descriptors, the relay sheds idle sockets and listens again", async () => {
  await using relay = await RelayProcess.start({
    fileLimit: 256,
    env: { RELAY_MAX_CONNECTIONS_PER_IP: "0", RELAY_REQUEST_HEADER_TIMEOUT_MS: "60000" },
  });
  await using live = await RawClient.reader(relay.url, pairBox()); // opened and synced
  const conns = await rawConnections(relay.port, 300);
  try {
    // Still holding every client socket: the relay must answer again on its own.
    let status: number | string = "";
    for (const end = Date.now() + 20_000; status !== 200 && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 250));
      status = await get(relay.port, "/healthz");
    }
    assert.equal(status, 200, `no /healthz within 20 s:\n${relay.logs.slice(-5).join("\n")}`);
    assert.ok(
      (await metric(relay.port, 'chat_relay_connections_shed_total{reason="capacity"}')) > 0,
      "idle connections were shed near the descriptor limit",
    );
    live.send({ v: 2, type: "ping", nonce: "still here" });
    assert.equal((await live.next("pong")).nonce, "still here", "open sessions were kept");
    // New sessions are refused (503) while the relay is at capacity, then served again once the
    // idle connections are shed; the flood's client ends are still open all along.
    let fresh: RawClient | undefined;
    for (const end = Date.now() + 20_000; !fresh;) {
      fresh = await RawClient.reader(relay.url, pairBox()).catch((e) => {
        if (Date.now() > end) throw e;
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 250));
      });
    }
    await fresh.close();
  } finally {
    for (const c of conns) c.close();
  }
  assert.equal(await Promise.race([relay.exited, null]), null, "the relay is still running");
});

Deno.test("connections: a relay that truly cannot listen again exits non-zero", async () => {
  await using relay = await RelayProcess.start({ env: { RELAY_LISTEN_RETRY_MS: "1500" } });
  // Below what the relay already holds: no accept, no new listener can succeed any more.
  const prlimit = await new Deno.Command("prlimit", {
    args: ["--pid", String(relay.pid), "--nofile=8:8"],
  }).output();
  assert.ok(prlimit.success, new TextDecoder().decode(prlimit.stderr));
  const conns = await rawConnections(relay.port, 5);
  try {
    const status = await deadline(relay.exited, 15_000).catch(() => undefined);
    assert.ok(status, "the relay was still running 15 s after it lost its listener");
    assert.equal(status.code, 1);
    assert.ok(relay.logs.some((l) => l.includes('"msg":"cannot serve"')), relay.logs.join("\n"));
  } finally {
    for (const c of conns) c.close();
  }
});

Deno.test("connections: on a dual-stack listener, sessions are never taken for idle connections", async () => {
  await using relay = await RelayProcess.start({
    args: ["--host", "::"],
    env: { RELAY_REQUEST_HEADER_TIMEOUT_MS: "1000" },
  });
  await using ws = await RawClient.reader(relay.url, pairBox());
  const [silent] = await rawConnections(relay.port, 1);
  assert.ok(await closedByServer(silent, 5000), "the silent connection is closed");
  ws.send({ v: 2, type: "ping", nonce: "v4 over v6" });
  assert.equal((await ws.next("pong")).nonce, "v4 over v6", "the session is still open");
});
