/**
 * The session state machine through its Transport seam: no sockets, no subprocesses. Each test
 * drives one `Session` with frames and reads what it wrote and how it closed.
 */
import assert from "node:assert/strict";
import {
  authMessage,
  generateKeyPair,
  type KeyPair,
  sealEnvelope,
  serializeEnvelope,
  sign,
  toBase64,
} from "@chat-p2p/protocol";
import { MemoryBus } from "../bus/memory.ts";
import { createLogger } from "../infra/log.ts";
import { MemoryMailbox } from "../mailbox/memory.ts";
import type { Mailbox } from "../ports/mailbox.ts";
import { BackendUnavailableError } from "../ports/errors.ts";
import { Router } from "./router.ts";
import { KeyedBuckets } from "./rate_limit.ts";
import { relayUrlsFor, Session, type SessionOptions, type Transport } from "./session.ts";

// deno-lint-ignore no-explicit-any
type Frame = Record<string, any>;

const RELAY = "ws://127.0.0.1:1/ws";
const quiet = createLogger("error", () => {});

/** A transport that records what the session writes; its send buffer is ours to set. */
class FakeTransport implements Transport {
  sent: string[] = [];
  closedWith?: { code: number; reason: string };
  buffered = 0;
  send(text: string) {
    this.sent.push(text);
  }
  close(code: number, reason: string) {
    this.closedWith = { code, reason };
  }
  bufferedAmount() {
    return this.buffered;
  }
  /** Every frame written so far, parsed. */
  get frames(): Frame[] {
    return this.sent.map((s) => JSON.parse(s));
  }
  /** Removes and returns the frames written so far. */
  take(): Frame[] {
    const f = this.frames;
    this.sent = [];
    return f;
  }
}

function options(over: Partial<SessionOptions> = {}): SessionOptions {
  return {
    maxFrameBytes: 65536,
    authTimeoutMs: 10_000,
    maxBufferedBytes: 65536,
    relayUrls: new Set([RELAY]),
    frameRate: { ratePerSecond: 0, burst: 1 },
    sendBuckets: new KeyedBuckets({ ratePerSecond: 0, burst: 1 }),
    ...over,
  };
}

/** A router over `mailbox` and a memory bus, and a way to open sessions on it. */
async function relay(mailbox: Mailbox = new MemoryMailbox(), opt: Partial<SessionOptions> = {}) {
  const router = new Router(mailbox, new MemoryBus(), quiet);
  await router.start();
  const open: Session[] = [];
  const connect = () => {
    const t = new FakeTransport();
    const s = new Session(t, router, options(opt), quiet);
    s.start();
    open.push(s);
    return { s, t, challenge: t.take()[0].challenge as string };
  };
  return {
    router,
    mailbox,
    connect,
    [Symbol.dispose]: () => open.forEach((s) => s.shutdown()),
  };
}

function authFrame(kp: KeyPair, challenge: string, relayUrl = RELAY): string {
  const key = toBase64(kp.publicKey);
  const signature = toBase64(sign(authMessage(relayUrl, challenge, key), kp.secretKey));
  return JSON.stringify({ v: 1, type: "auth", key, relay: relayUrl, signature });
}

/** Connects and authenticates `kp`; returns the session with its frames up to `synced` taken. */
async function login(r: Awaited<ReturnType<typeof relay>>, kp: KeyPair) {
  const c = r.connect();
  await c.s.onMessage(authFrame(kp, c.challenge));
  const frames = c.t.take();
  assert.equal(frames[0].type, "ready", JSON.stringify(frames));
  assert.equal(frames.at(-1)!.type, "synced");
  return { ...c, frames };
}

function send(from: KeyPair, to: KeyPair, text = "hi") {
  const envelope = sealEnvelope(
    { v: 1, kind: "message", text, sent_at: "" },
    from,
    toBase64(to.publicKey),
  );
  return { envelope, frame: JSON.stringify({ v: 1, type: "send", envelope }) };
}

Deno.test("session: the challenge comes first; no auth in time is auth_timeout and close 1008", async () => {
  using r = await relay(new MemoryMailbox(), { authTimeoutMs: 30 });
  const t = new FakeTransport();
  const s = new Session(t, r.router, options({ authTimeoutMs: 30 }), quiet);
  s.start();
  const [challenge] = t.take();
  assert.equal(challenge.type, "challenge");
  assert.equal(challenge.expires_in_ms, 30);
  assert.equal(atob(challenge.challenge).length, 32);
  await new Promise((res) => setTimeout(res, 60));
  assert.equal(t.take()[0].code, "auth_timeout");
  assert.equal(t.closedWith?.code, 1008);
  assert.equal(s.open, false);
});

Deno.test("session: send and ack before auth are not_authenticated and leave the socket open", async () => {
  using r = await relay();
  const { s, t } = r.connect();
  const { envelope, frame } = send(generateKeyPair(), generateKeyPair());
  await s.onMessage(frame);
  await s.onMessage(JSON.stringify({ v: 1, type: "ack", ids: [envelope.id] }));
  const [a, b] = t.take();
  assert.deepEqual([a.code, a.id], ["not_authenticated", envelope.id]);
  assert.equal(b.code, "not_authenticated");
  assert.equal(t.closedWith, undefined);
  assert.equal(r.router.liveMailboxes, 0);
});

Deno.test("session: auth drains the backlog oldest first, then synced with the count", async () => {
  using r = await relay();
  const alice = generateKeyPair(), bob = generateKeyPair();
  const sent = [send(alice, bob, "1"), send(alice, bob, "2"), send(alice, bob, "3")];
  for (const { envelope } of sent) await r.router.accept(envelope);
  const { frames, s } = await login(r, bob);
  assert.deepEqual(frames.map((f) => f.type), ["ready", "deliver", "deliver", "deliver", "synced"]);
  assert.deepEqual(frames.slice(1, 4).map((f) => f.envelope.id), sent.map((x) => x.envelope.id));
  assert.equal(frames[4].count, 3);
  assert.equal(s.key, toBase64(bob.publicKey));
});

Deno.test("session: a signature made for another relay is refused, whatever URL it names", async (t) => {
  using r = await relay();
  const alice = generateKeyPair();
  for (
    const [why, url] of [
      ["another host", "ws://evil.example/ws"],
      ["the same host over wss (scheme is bound)", "wss://127.0.0.1:1/ws"],
      ["another port", "ws://127.0.0.1:2/ws"],
      ["another path", "ws://127.0.0.1:1/chat"],
      ["not normalised", "WS://127.0.0.1:1/ws"],
    ]
  ) {
    await t.step(why, async () => {
      const c = r.connect();
      await c.s.onMessage(authFrame(alice, c.challenge, url));
      const [f] = c.t.take();
      assert.equal(f.code, "auth_failed");
      assert.match(f.message, /not this relay's: it accepts ws:\/\/127\.0\.0\.1:1\/ws/);
      assert.match(f.message, /RELAY_PUBLIC_URL/);
      assert.equal(c.t.closedWith?.code, 1008);
      assert.equal(c.s.key, undefined);
    });
  }
});

Deno.test("session: a bad signature is auth_failed; a second auth is already_authenticated", async () => {
  using r = await relay();
  const alice = generateKeyPair();
  const c = r.connect();
  await c.s.onMessage(authFrame(alice, toBase64(new Uint8Array(32))));
  const [f] = c.t.take();
  assert.equal(f.code, "auth_failed");
  assert.match(f.message, /signature does not verify/);
  assert.equal(c.t.closedWith?.code, 1008);

  const { s, t, challenge } = await login(r, alice);
  await s.onMessage(authFrame(alice, challenge));
  assert.equal(t.take()[0].code, "already_authenticated");
  assert.equal(t.closedWith, undefined);
});

Deno.test("session: sends are accepted, pushed live to the recipient, and acks delete", async () => {
  using r = await relay();
  const alice = generateKeyPair(), bob = generateKeyPair();
  const a = await login(r, alice);
  const b = await login(r, bob);
  const { envelope, frame } = send(alice, bob);
  await a.s.onMessage(frame);
  assert.deepEqual(a.t.take(), [{ v: 1, type: "accepted", id: envelope.id }]);
  await Promise.resolve(); // the memory bus announces in a microtask
  const [deliver] = b.t.take();
  assert.equal(deliver.type, "deliver");
  assert.deepEqual(deliver.envelope, envelope);
  await b.s.onMessage(JSON.stringify({ v: 1, type: "ack", ids: [envelope.id] }));
  assert.equal((await r.mailbox.depth(toBase64(bob.publicKey))).count, 0);
  assert.deepEqual(b.t.take(), [], "an ack is not answered");
});

Deno.test("session: an envelope from another key is spoofed_sender and is not stored", async () => {
  using r = await relay();
  const alice = generateKeyPair(), mallory = generateKeyPair(), bob = generateKeyPair();
  const m = await login(r, mallory);
  const { envelope, frame } = send(alice, bob);
  await m.s.onMessage(frame);
  const [f] = m.t.take();
  assert.deepEqual([f.code, f.id], ["spoofed_sender", envelope.id]);
  assert.equal((await r.mailbox.depth(toBase64(bob.publicKey))).count, 0);
});

Deno.test("session: backend refusals map to mailbox_full and unavailable, with the id", async () => {
  const mailbox = new MemoryMailbox({ maxCount: 1, maxBytes: 1 << 20, maxAgeMs: 60_000 });
  using r = await relay(mailbox);
  const alice = generateKeyPair(), bob = generateKeyPair();
  const a = await login(r, alice);
  await a.s.onMessage(send(alice, bob).frame);
  const second = send(alice, bob);
  await a.s.onMessage(second.frame);
  const [accepted, full] = a.t.take();
  assert.equal(accepted.type, "accepted");
  assert.deepEqual([full.code, full.id], ["mailbox_full", second.envelope.id]);

  mailbox.put = () => Promise.reject(new BackendUnavailableError("disk on fire"));
  const third = send(alice, generateKeyPair());
  await a.s.onMessage(third.frame);
  const [down] = a.t.take();
  assert.deepEqual([down.code, down.id], ["unavailable", third.envelope.id]);
  assert.doesNotMatch(down.message, /disk on fire/, "backend details stay in the relay's log");

  mailbox.ack = () => Promise.reject(new BackendUnavailableError("still on fire"));
  await a.s.onMessage(JSON.stringify({ v: 1, type: "ack", ids: ["whatever-01"] }));
  assert.equal(a.t.take()[0].code, "unavailable");
  assert.equal(a.t.closedWith, undefined, "refusals never close the socket");
});

Deno.test("session: live pushes during the drain wait for it and skip what it already sent", async () => {
  const mailbox = new MemoryMailbox();
  using r = await relay(mailbox);
  const alice = generateKeyPair(), bob = generateKeyPair();
  const old = send(alice, bob, "old"), fresh = send(alice, bob, "fresh");
  await r.router.accept(old.envelope);
  // Hold the drain's read until two announcements (one repeating the backlog) have arrived.
  const pending = mailbox.pending.bind(mailbox);
  let release!: () => void;
  const gate = new Promise<void>((res) => release = res);
  mailbox.pending = async (...args) => {
    await gate;
    return await pending(...args);
  };
  const c = r.connect();
  const auth = c.s.onMessage(authFrame(bob, c.challenge));
  while (c.t.sent.length === 0) await new Promise((res) => setTimeout(res, 1)); // "ready": draining
  // Announced only (as from another relay whose write the drain's read will not see), then the
  // backlog's envelope announced again.
  await r.router.bus.publish(toBase64(bob.publicKey), serializeEnvelope(fresh.envelope));
  await r.router.accept(old.envelope);
  await Promise.resolve();
  assert.deepEqual(c.t.frames.map((f) => f.type), ["ready"], "nothing is pushed mid-drain");
  release();
  await auth;
  const frames = c.t.take();
  assert.deepEqual(frames.map((f) => f.type), ["ready", "deliver", "deliver", "synced"]);
  assert.deepEqual(frames.slice(1, 3).map((f) => f.envelope.id), [
    old.envelope.id,
    fresh.envelope.id,
  ]);
  assert.equal(frames[3].count, 2);
});

Deno.test("session: a mailbox that cannot be read ends the drain with unavailable and close 1013", async () => {
  const mailbox = new MemoryMailbox();
  mailbox.pending = () => Promise.reject(new BackendUnavailableError("gone"));
  using r = await relay(mailbox);
  const c = r.connect();
  await c.s.onMessage(authFrame(generateKeyPair(), c.challenge));
  const frames = c.t.take();
  assert.deepEqual(frames.map((f) => f.type), ["ready", "error"]);
  assert.equal(frames[1].code, "unavailable");
  assert.equal(c.t.closedWith?.code, 1013);
  assert.equal(r.router.liveMailboxes, 0, "a closed session is unregistered");
});

Deno.test("session: frame limits: too large closes 1009, binary and bad JSON are answered", async () => {
  using r = await relay(new MemoryMailbox(), { maxFrameBytes: 1024 });
  const c = r.connect();
  await c.s.onMessage(new Uint8Array(10));
  await c.s.onMessage("{nope");
  await c.s.onMessage(JSON.stringify({ v: 1, type: "ping", nonce: "n1" }));
  assert.deepEqual(c.t.take().map((f) => f.code ?? f.type), ["binary_frame", "bad_json", "pong"]);
  await c.s.onMessage("x".repeat(1025));
  assert.equal(c.t.take()[0].code, "frame_too_large");
  assert.equal(c.t.closedWith?.code, 1009);
  await c.s.onMessage(JSON.stringify({ v: 1, type: "ping" }));
  assert.deepEqual(c.t.take(), [], "nothing is written after the close");
});

Deno.test("session: over the frame budget a send is rate_limited with its id and a retry hint", async () => {
  using r = await relay(new MemoryMailbox(), { frameRate: { ratePerSecond: 1, burst: 2 } });
  const alice = generateKeyPair();
  const a = await login(r, alice); // the auth took one token
  const one = send(alice, generateKeyPair()), two = send(alice, generateKeyPair());
  await a.s.onMessage(one.frame);
  await a.s.onMessage(two.frame);
  const [accepted, limited] = a.t.take();
  assert.equal(accepted.id, one.envelope.id);
  assert.deepEqual([limited.code, limited.id], ["rate_limited", two.envelope.id]);
  assert.ok(limited.retry_after_ms > 0);
});

Deno.test("session: a slow consumer is closed with 1013 and its envelope stays in the mailbox", async () => {
  using r = await relay();
  const bob = generateKeyPair();
  const b = await login(r, bob);
  const key = toBase64(bob.publicKey);
  b.t.buffered = 10 * 65536;
  await r.mailbox.put(key, { id: "id-slow-01", raw: '{"v":1,"id":"id-slow-01"}' });
  b.s.push("id-slow-01", '{"v":1,"id":"id-slow-01"}');
  assert.equal(b.t.closedWith?.code, 1013);
  assert.equal(b.s.open, false);
  assert.equal((await r.mailbox.depth(key)).count, 1, "the envelope is held for the next connect");
  assert.equal(r.router.liveMailboxes, 0, "the closed session is no longer routed to");
});

Deno.test("session: shutdown closes with 1001 and unregisters", async () => {
  using r = await relay();
  const b = await login(r, generateKeyPair());
  assert.equal(r.router.liveMailboxes, 1);
  b.s.shutdown();
  assert.equal(b.t.closedWith?.code, 1001);
  assert.equal(r.router.liveMailboxes, 0);
});

Deno.test("relayUrlsFor: the operator's URLs, else only the names this relay knows are its own", () => {
  assert.deepEqual(
    [...relayUrlsFor({ publicUrls: ["wss://chat.example/ws"], hostname: "0.0.0.0", port: 8080 })],
    ["wss://chat.example/ws"],
  );
  assert.deepEqual([...relayUrlsFor({ publicUrls: [], hostname: "0.0.0.0", port: 8080 })], [
    "ws://127.0.0.1:8080/ws",
    "ws://localhost:8080/ws",
    "ws://[::1]:8080/ws",
  ]);
  assert.deepEqual([...relayUrlsFor({ publicUrls: [], hostname: "::", port: 80 })], [
    "ws://127.0.0.1/ws",
    "ws://localhost/ws",
    "ws://[::1]/ws",
  ]);
  assert.ok(
    relayUrlsFor({ publicUrls: [], hostname: "10.1.2.3", port: 9 }).has("ws://10.1.2.3:9/ws"),
  );
  assert.ok(
    relayUrlsFor({ publicUrls: [], hostname: "fd00::7", port: 9 }).has("ws://[fd00::7]:9/ws"),
  );
  assert.equal(relayUrlsFor({ publicUrls: [], hostname: "127.0.0.1", port: 9 }).size, 3);
});
