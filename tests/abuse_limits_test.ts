/**
 * Abuse limits on a live relay: frame and send rates (token buckets) with retry hints,
 * connections per IP, and idle sockets that stop answering pings.
 */
import assert from "node:assert/strict";
import { generateKeyPair, type KeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { type Frame, RawClient } from "./raw_client.ts";
import { startTestRelay } from "./relay_harness.ts";

function message(from: KeyPair, to: KeyPair) {
  return sealEnvelope(
    { v: 1, kind: "message", text: "x", sent_at: new Date().toISOString() },
    from,
    toBase64(to.publicKey),
  );
}

Deno.test("limits: frames over the per-connection rate get rate_limited with retry_after_ms", async () => {
  await using relay = await startTestRelay({ RELAY_FRAME_RATE: "5", RELAY_FRAME_BURST: "5" });
  await using c = await RawClient.authed(relay.url, generateKeyPair()); // auth used 1 token
  for (let i = 0; i < 10; i++) c.send({ v: 1, type: "ping", nonce: `p${i}` });
  const pongs: Frame[] = [], limited: Frame[] = [];
  for (let i = 0; i < 10; i++) {
    const f = await c.next();
    if (f.type === "pong") pongs.push(f);
    else if (f.type === "error") limited.push(f);
    else i--; // synced and the like
  }
  assert.equal(pongs.length, 4);
  assert.equal(limited.length, 6);
  assert.ok(limited.every((f) => f.code === "rate_limited" && f.retry_after_ms > 0));
  await new Promise((r) => setTimeout(r, limited[0].retry_after_ms + 50));
  c.send({ v: 1, type: "ping", nonce: "later" });
  assert.equal((await c.next("pong")).nonce, "later", "served again after the hinted wait");
  assert.ok(relay.metrics.get("rate_limited_total", { scope: "connection" }) >= 6);
});

Deno.test("limits: sends over the per-key rate are refused across that key's sockets, others unaffected", async () => {
  await using relay = await startTestRelay({ RELAY_SEND_RATE: "1", RELAY_SEND_BURST: "3" });
  const alice = generateKeyPair(), bob = generateKeyPair(), carol = generateKeyPair();
  await using a1 = await RawClient.authed(relay.url, alice);
  await using a2 = await RawClient.authed(relay.url, alice);
  for (let i = 0; i < 2; i++) a1.send({ v: 1, type: "send", envelope: message(alice, bob) });
  for (let i = 0; i < 2; i++) a2.send({ v: 1, type: "send", envelope: message(alice, bob) });
  const results: Frame[] = [];
  for (const c of [a1, a1, a2, a2]) {
    let f = await c.next();
    while (f.type === "synced") f = await c.next();
    results.push(f);
  }
  const accepted = results.filter((f) => f.type === "accepted").length;
  const limited = results.filter((f) => f.type === "error" && f.code === "rate_limited");
  assert.equal(accepted, 3);
  assert.equal(limited.length, 1);
  assert.ok(limited[0].id && limited[0].retry_after_ms > 0);
  await using c = await RawClient.authed(relay.url, carol);
  const e = message(carol, bob);
  c.send({ v: 1, type: "send", envelope: e });
  assert.equal((await c.next("accepted")).id, e.id);
});

Deno.test("limits: connections per IP beyond the cap get HTTP 429; a closed one frees its place", async () => {
  await using relay = await startTestRelay({ RELAY_MAX_CONNECTIONS_PER_IP: "2" });
  const c1 = await RawClient.connect(relay.url);
  await using _c2 = await RawClient.connect(relay.url);
  await assert.rejects(RawClient.connect(relay.url), /cannot connect|429|Unexpected|Invalid/i);
  await c1.close();
  await new Promise((r) => setTimeout(r, 50));
  await using c3 = await RawClient.connect(relay.url);
  assert.ok(c3.challenge);
  assert.equal(relay.metrics.get("rate_limited_total", { scope: "ip" }), 1);
});

Deno.test("limits: an idle socket that never answers pings is closed", async () => {
  await using relay = await startTestRelay({ RELAY_IDLE_TIMEOUT_MS: "1000" });
  // A raw TCP WebSocket handshake: unlike Deno's client, this never answers a ping.
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: relay.port });
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  await conn.write(new TextEncoder().encode(
    `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${relay.port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const started = Date.now();
  const buf = new Uint8Array(4096);
  let text = "";
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += new TextDecoder().decode(buf.subarray(0, n));
    if (Date.now() - started > 10_000) throw new Error("socket still open after 10 s");
  }
  assert.match(text, /^HTTP\/1\.1 101/);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 900, `closed after ${elapsed} ms, before the idle timeout`);
});

Deno.test("limits: a send refused by the connection's frame budget names its envelope id", async () => {
  await using relay = await startTestRelay({ RELAY_FRAME_RATE: "1", RELAY_FRAME_BURST: "2" });
  const alice = generateKeyPair(), bob = generateKeyPair();
  await using c = await RawClient.authed(relay.url, alice); // auth took 1 of 2 tokens
  const es = [message(alice, bob), message(alice, bob)];
  for (const e of es) c.send({ v: 1, type: "send", envelope: e });
  assert.equal((await c.next("accepted")).id, es[0].id);
  const refused = await c.next("error");
  assert.equal(refused.code, "rate_limited");
  assert.equal(refused.id, es[1].id);
});
