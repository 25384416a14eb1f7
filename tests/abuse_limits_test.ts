/**
 * Abuse limits on a live relay: the frame rate per connection, the send rate per pair mailbox,
 * request inboxes (a rate per address and caps of their own, so flooding one never touches a
 * pair mailbox), connections per IP, and idle sockets that stop answering pings.
 */
import assert from "node:assert/strict";
import { toBase64 } from "@chat-p2p/protocol";
import { envelope, type Frame, inboxBox, pairBox, RawClient } from "./raw_client.ts";
import { startTestRelay } from "./relay_harness.ts";

/** Sends `envelopes` on `c` as fast as it takes them; returns the answers by code. */
async function flood(
  c: RawClient,
  envelopes: ReturnType<typeof envelope>[],
  key?: string,
): Promise<Record<string, number>> {
  for (const e of envelopes) c.sendEnvelope(e, key);
  const counts: Record<string, number> = {};
  for (let i = 0; i < envelopes.length; i++) {
    const f = await c.nextWhere((f) => f.type === "accepted" || f.type === "error", 30_000);
    const k = f.type === "accepted" ? "accepted" : f.code;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

Deno.test("limits: frames over the per-connection rate get rate_limited with retry_after_ms", async () => {
  await using relay = await startTestRelay({ RELAY_FRAME_RATE: "5", RELAY_FRAME_BURST: "5" });
  await using c = await RawClient.connect(relay.url);
  for (let i = 0; i < 10; i++) c.send({ v: 2, type: "ping", nonce: `p${i}` });
  const pongs: Frame[] = [], limited: Frame[] = [];
  for (let i = 0; i < 10; i++) {
    const f = await c.next();
    if (f.type === "pong") pongs.push(f);
    else if (f.type === "error") limited.push(f);
  }
  assert.equal(pongs.length, 5);
  assert.equal(limited.length, 5);
  assert.ok(limited.every((f) => f.code === "rate_limited" && f.retry_after_ms > 0));
  await new Promise((r) => setTimeout(r, limited[0].retry_after_ms + 50));
  c.send({ v: 2, type: "ping", nonce: "later" });
  assert.equal((await c.next("pong")).nonce, "later", "served again after the hinted wait");
  assert.ok(relay.metrics.get("rate_limited_total", { scope: "connection" }) >= 5);
});

Deno.test("limits: sends over a pair mailbox's rate are refused across sockets; other mailboxes unaffected", async () => {
  await using relay = await startTestRelay({ RELAY_SEND_RATE: "1", RELAY_SEND_BURST: "3" });
  const box = pairBox(), other = pairBox();
  await RawClient.register(relay.url, box, other);
  await using a1 = await RawClient.connect(relay.url);
  await using a2 = await RawClient.connect(relay.url);
  const results = [
    ...Object.entries(await flood(a1, [envelope(box), envelope(box)])),
    ...Object.entries(await flood(a2, [envelope(box), envelope(box)])),
  ];
  const count = (k: string) => results.filter(([c]) => c === k).reduce((n, [, v]) => n + v, 0);
  assert.equal(count("accepted"), 3);
  assert.equal(count("rate_limited"), 1);
  assert.deepEqual(await flood(a1, [envelope(other)]), { accepted: 1 });
  assert.equal(relay.metrics.get("rate_limited_total", { scope: "mailbox" }), 1);
});

/**
 * `strangers` sockets each send `each` requests to a request inbox while a contact sends `mine`
 * envelopes to a pair mailbox (opened, so registered), all at once; returns the answers.
 */
async function floodBeside(url: string, strangers: number, each: number, mine: number) {
  const bob = inboxBox(), pair = pairBox();
  await RawClient.register(url, pair);
  const key = toBase64(bob.auth.publicKey);
  await using alice = await RawClient.connect(url);
  const [contact, ...floods] = await Promise.all([
    flood(alice, Array.from({ length: mine }, () => envelope(pair))),
    ...Array.from({ length: strangers }, async () => {
      await using m = await RawClient.connect(url);
      return await flood(m, Array.from({ length: each }, () => envelope(bob)), key);
    }),
  ]);
  const total = (code: string) => floods.reduce((n, f) => n + (f[code] ?? 0), 0);
  return { bob, pair, contact, total };
}

const FLOODABLE = { RELAY_FRAME_RATE: "0", RELAY_SEND_RATE: "0" };

Deno.test("attack: flooding a request inbox (thousands of sends) never makes a pair mailbox refuse a send; the inbox's rate limit holds", async () => {
  await using relay = await startTestRelay({
    ...FLOODABLE,
    RELAY_INBOX_SEND_RATE: "60",
    RELAY_INBOX_SEND_BURST: "60",
  });
  const { bob, pair, contact, total } = await floodBeside(relay.url, 3, 1000, 200);
  assert.deepEqual(contact, { accepted: 200 });
  const accepted = total("accepted"), limited = total("rate_limited");
  assert.ok(accepted >= 60 && accepted <= 65, `${accepted} request sends taken from one address`);
  assert.equal(accepted + limited, 3000);
  assert.equal(relay.metrics.get("rate_limited_total", { scope: "inbox" }), limited);
  assert.equal((await relay.router.mailbox.depth(pair.id)).count, 200);
  assert.equal((await relay.router.mailbox.depth(bob.id)).count, accepted);
});

Deno.test("attack: flooding a request inbox without a rate limit fills only the inbox, to its own cap", async () => {
  await using relay = await startTestRelay({
    ...FLOODABLE,
    RELAY_INBOX_SEND_RATE: "0",
    RELAY_INBOX_MAX_COUNT: "1000",
  });
  const { bob, pair, contact, total } = await floodBeside(relay.url, 2, 1500, 1500);
  assert.equal(total("accepted"), 1000, "the inbox cap");
  assert.equal(total("mailbox_full"), 2000);
  assert.deepEqual(contact, { accepted: 1500 }, "the pair mailbox holds more than an inbox can");
  assert.equal((await relay.router.mailbox.depth(bob.id)).count, 1000);
  assert.equal((await relay.router.mailbox.depth(pair.id)).count, 1500);
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

Deno.test("limits: a socket that opens nothing and answers pings stays open (a sender)", async () => {
  await using relay = await startTestRelay({ RELAY_IDLE_TIMEOUT_MS: "1000" });
  await using c = await RawClient.connect(relay.url);
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(c.closeCode, undefined);
  c.send({ v: 2, type: "ping", nonce: "still" });
  assert.equal((await c.next("pong")).nonce, "still");
});

Deno.test("limits: a send refused by the connection's frame budget names its envelope id", async () => {
  await using relay = await startTestRelay({ RELAY_FRAME_RATE: "1", RELAY_FRAME_BURST: "1" });
  const box = pairBox();
  await RawClient.register(relay.url, box);
  await using c = await RawClient.connect(relay.url);
  const es = [envelope(box), envelope(box)];
  for (const e of es) c.sendEnvelope(e);
  assert.equal((await c.next("accepted")).id, es[0].id);
  const refused = await c.next("error");
  assert.equal(refused.code, "rate_limited");
  assert.equal(refused.id, es[1].id);
});
