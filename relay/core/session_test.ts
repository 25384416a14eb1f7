/**
 * The session state machine through its Transport seam: no sockets, no subprocesses. Each test
 * drives one `Session` with frames and reads what it wrote and how it closed.
 */
import assert from "node:assert/strict";
import { generateKeyPair, openFrame, serializeEnvelopeV2, toBase64 } from "@chat-p2p/protocol";
import { MemoryBus, MemoryBusHub } from "../bus/memory.ts";
import { createLogger } from "../infra/log.ts";
import { MemoryMailbox } from "../mailbox/memory.ts";
import { DEFAULT_MAILBOX_LIMITS, type Mailbox } from "../ports/mailbox.ts";
import { BackendUnavailableError } from "../ports/errors.ts";
import { Router } from "./router.ts";
import { KeyedBuckets } from "./rate_limit.ts";
import { relayUrlsFor, Session, type SessionOptions, type Transport } from "./session.ts";
import { envelope, inboxBox, pairBox, type TestMailbox } from "../../tests/raw_client.ts";
import { delay } from "@chat-p2p/protocol/async";

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

const unlimited = { ratePerSecond: 0, burst: 1 };

function options(over: Partial<SessionOptions> = {}): SessionOptions {
  return {
    maxFrameBytes: 131072,
    maxBufferedBytes: 1 << 20,
    relayUrls: new Set([RELAY]),
    maxMailboxes: 4096,
    frameRate: unlimited,
    mailboxSends: new KeyedBuckets(unlimited),
    inboxSends: new KeyedBuckets(unlimited),
    ...over,
  };
}

/**
 * A router over `mailbox` and a memory bus, a way to open sessions on it, and the bus of another
 * relay on the same medium (`elsewhere`), to announce as that relay would.
 */
async function relay(mailbox: Mailbox = new MemoryMailbox(), opt: Partial<SessionOptions> = {}) {
  const hub = new MemoryBusHub();
  const router = new Router(mailbox, new MemoryBus(hub), quiet);
  await router.start();
  const sessions: Session[] = [];
  const shared = options(opt);
  const connect = (ip = "192.0.2.1") => {
    const t = new FakeTransport();
    const s = new Session(t, router, shared, quiet, undefined, ip);
    s.start();
    sessions.push(s);
    const [hello] = t.take();
    assert.equal(hello.type, "hello");
    return { s, t, challenge: hello.challenge as string };
  };
  return {
    router,
    mailbox,
    connect,
    elsewhere: new MemoryBus(hub),
    [Symbol.dispose]: () => sessions.forEach((s) => s.shutdown()),
  };
}

type Relay = Awaited<ReturnType<typeof relay>>;
type Conn = ReturnType<Relay["connect"]>;

async function openText(c: Conn, box: TestMailbox, url = RELAY, challenge = c.challenge) {
  return JSON.stringify(await openFrame(url, challenge, box.kind, box.auth));
}

/** Opens `box` on `c`; returns the frames it wrote, up to `synced`. */
async function open(c: Conn, box: TestMailbox): Promise<Frame[]> {
  await c.s.onMessage(await openText(c, box));
  const frames = c.t.take();
  assert.deepEqual(frames[0], { v: 2, type: "opened", mailbox: box.id }, JSON.stringify(frames));
  assert.deepEqual(frames.at(-1)!.type, "synced");
  return frames;
}

const sendText = (e: ReturnType<typeof envelope>, key?: string) =>
  JSON.stringify(
    key === undefined ? { v: 2, type: "send", envelope: e } : {
      v: 2,
      type: "send",
      envelope: e,
      key,
    },
  );

Deno.test("session: hello comes first with a fresh 32-byte challenge; a socket that opens nothing can send", async () => {
  using r = await relay();
  const box = pairBox();
  await r.mailbox.register(box.id, "pair");
  const a = r.connect(), b = r.connect();
  assert.equal(atob(a.challenge).length, 32);
  assert.notEqual(a.challenge, b.challenge);
  const e = envelope(box);
  await a.s.onMessage(sendText(e));
  assert.deepEqual(a.t.take(), [{ v: 2, type: "accepted", id: e.id }]);
  assert.equal(a.s.reading, false);
  assert.equal(a.t.closedWith, undefined, "no authentication is ever required to send");
});

Deno.test("session: open drains oldest first, then synced with the mailbox and count; one socket opens many", async () => {
  using r = await relay();
  const one = pairBox(), two = inboxBox();
  await r.router.open(one.id, "pair");
  const sent = [envelope(one), envelope(one), envelope(one)];
  for (const e of sent) await r.router.accept(e);
  const c = r.connect();
  const frames = await open(c, one);
  assert.deepEqual(frames.map((f) => f.type), [
    "opened",
    "deliver",
    "deliver",
    "deliver",
    "synced",
  ]);
  assert.deepEqual(frames.slice(1, 4).map((f) => f.envelope), sent);
  assert.deepEqual(frames[4], { v: 2, type: "synced", mailbox: one.id, count: 3 });
  assert.deepEqual(await open(c, two), [
    { v: 2, type: "opened", mailbox: two.id },
    { v: 2, type: "synced", mailbox: two.id, count: 0 },
  ]);
  assert.equal(c.s.reading, true);
  assert.equal(r.router.liveMailboxes, 2);
  // Live deliveries for either mailbox reach the socket.
  const live = [envelope(one), envelope(two)];
  await r.router.accept(live[0]);
  await r.router.accept(live[1], true);
  await Promise.resolve();
  assert.deepEqual(c.t.take().map((f) => f.envelope), live);
});

Deno.test("session: opening a mailbox twice drains it again; nothing else changes", async () => {
  using r = await relay();
  const box = pairBox();
  const c = r.connect();
  await open(c, box);
  const e = envelope(box);
  await r.router.accept(e);
  await Promise.resolve();
  assert.deepEqual(c.t.take().map((f) => f.type), ["deliver"]);
  const again = await open(c, box);
  assert.deepEqual(again.map((f) => f.type), ["opened", "deliver", "synced"]);
  assert.equal(r.router.liveMailboxes, 1);
});

Deno.test("attack: squatting: an open proves the key its id hashes, so nobody opens another's id", async () => {
  using r = await relay();
  const victim = pairBox(), mallory = pairBox();
  await r.router.open(victim.id, "pair");
  await r.router.accept(envelope(victim));
  const c = r.connect();
  // The victim's key with mallory's signature.
  const forged = JSON.parse(await openText(c, mallory));
  forged.key = toBase64(victim.auth.publicKey);
  await c.s.onMessage(JSON.stringify(forged));
  const [refused] = c.t.take();
  assert.deepEqual([refused.code, refused.mailbox], ["auth_failed", victim.id]);
  // Mallory's own key opens mallory's own mailbox, whatever id mallory would like.
  const frames = await open(c, mallory);
  assert.notEqual(frames[0].mailbox, victim.id);
  assert.ok(frames.every((f) => f.type !== "deliver"));
  // An inbox key presented as a pair key (or back) names another mailbox, not the inbox.
  const inbox = inboxBox();
  const asPair = await open(c, { ...inbox, kind: "pair", id: pairBox(inbox.auth).id });
  assert.notEqual(asPair[0].mailbox, inbox.id);
  assert.equal((await r.mailbox.depth(victim.id)).count, 1, "the victim's envelope is untouched");
});

Deno.test("attack: an open signed for another relay URL, another challenge or another kind is auth_failed; the socket stays", async (t) => {
  using r = await relay();
  const box = pairBox();
  for (
    const [why, url, challenge] of [
      ["another host", "ws://evil.example/ws", undefined],
      ["the same host over wss (the scheme is bound)", "wss://127.0.0.1:1/ws", undefined],
      ["another port", "ws://127.0.0.1:2/ws", undefined],
      ["another path", "ws://127.0.0.1:1/chat", undefined],
      ["not canonical", "WS://127.0.0.1:1/ws", undefined],
      ["an old challenge", RELAY, toBase64(new Uint8Array(32))],
    ] as const
  ) {
    await t.step(why, async () => {
      const c = r.connect();
      await c.s.onMessage(await openText(c, box, url, challenge ?? c.challenge));
      const [f] = c.t.take();
      assert.deepEqual([f.code, f.mailbox], ["auth_failed", box.id]);
      assert.match(f.message, /this relay's URLs \(ws:\/\/127\.0\.0\.1:1\/ws\)/);
      assert.match(f.message, /RELAY_PUBLIC_URL/);
      assert.equal(c.t.closedWith, undefined);
      assert.equal(c.s.reading, false);
      assert.deepEqual((await open(c, box))[0].type, "opened", "a correct open still works");
    });
  }
  await t.step("another kind", async () => {
    const c = r.connect();
    const f = JSON.parse(await openText(c, inboxBox(box.auth)));
    f.kind = "pair";
    await c.s.onMessage(JSON.stringify(f));
    assert.equal(c.t.take()[0].code, "auth_failed");
  });
  assert.equal(r.router.liveMailboxes, 1);
});

Deno.test("attack: a send to a pair mailbox nobody registered is unknown_mailbox and stores nothing", async () => {
  using r = await relay();
  const c = r.connect();
  const box = pairBox();
  const e = envelope(box);
  await c.s.onMessage(sendText(e));
  const [f] = c.t.take();
  assert.deepEqual([f.code, f.id], ["unknown_mailbox", e.id]);
  assert.match(f.message, /request inbox/);
  assert.deepEqual(await r.mailbox.depth(box.id), { count: 0, bytes: 0 });
  await open(r.connect(), box);
  await c.s.onMessage(sendText(e));
  assert.deepEqual(c.t.take(), [{ v: 2, type: "accepted", id: e.id }], "registered by an open");
});

Deno.test("session: a request-inbox send with key needs no registration; its key must hash to the inbox", async () => {
  using r = await relay();
  const bob = inboxBox();
  const c = r.connect();
  const e = envelope(bob);
  await c.s.onMessage(sendText(e, toBase64(bob.auth.publicKey)));
  assert.deepEqual(c.t.take(), [{ v: 2, type: "accepted", id: e.id }]);
  const other = envelope(bob);
  await c.s.onMessage(sendText(other, toBase64(generateKeyPair().publicKey)));
  const [f] = c.t.take();
  assert.deepEqual([f.code, f.id], ["bad_frame", other.id]);
  assert.match(f.message, /not the request inbox of field 'key'/);
  const toPair = envelope(pairBox());
  await c.s.onMessage(sendText(toPair, toBase64(bob.auth.publicKey)));
  assert.equal(c.t.take()[0].code, "bad_frame", "a key does not open a way into a pair mailbox");
  assert.equal((await r.mailbox.depth(bob.id)).count, 1);
});

Deno.test("attack: an ack for a mailbox not opened on this socket is not_open and deletes nothing", async () => {
  using r = await relay();
  const box = pairBox();
  const reader = r.connect();
  await open(reader, box);
  const e = envelope(box);
  await r.router.accept(e);
  const mallory = r.connect();
  await mallory.s.onMessage(JSON.stringify({ v: 2, type: "ack", mailbox: box.id, ids: [e.id] }));
  const [f] = mallory.t.take();
  assert.deepEqual([f.code, f.mailbox], ["not_open", box.id]);
  assert.equal((await r.mailbox.depth(box.id)).count, 1);
  reader.t.take();
  await reader.s.onMessage(JSON.stringify({ v: 2, type: "ack", mailbox: box.id, ids: [e.id] }));
  assert.deepEqual(reader.t.take(), [], "an ack is not answered");
  assert.equal((await r.mailbox.depth(box.id)).count, 0);
});

Deno.test("session: every v1 frame is unsupported_version with a message to upgrade chat-p2p", async () => {
  using r = await relay();
  const c = r.connect();
  for (
    const f of [
      { v: 1, type: "auth", key: "x", relay: RELAY, signature: "x" },
      { v: 1, type: "send", envelope: { v: 1, id: "abcdefgh" } },
      { v: 1, type: "ack", ids: ["abcdefgh"] },
      { v: 1, type: "ping" },
    ]
  ) {
    await c.s.onMessage(JSON.stringify(f));
    const [e] = c.t.take();
    assert.equal(e.code, "unsupported_version", JSON.stringify(f));
    assert.match(e.message, /upgrade chat-p2p/);
  }
  assert.equal(c.t.closedWith, undefined);
});

Deno.test("session: backend refusals map to mailbox_full and unavailable, with the id or mailbox", async () => {
  const mailbox = new MemoryMailbox({ ...DEFAULT_MAILBOX_LIMITS, maxCount: 1 });
  using r = await relay(mailbox);
  const box = pairBox();
  const c = r.connect();
  await open(c, box);
  const sender = r.connect();
  const first = envelope(box);
  await sender.s.onMessage(sendText(first));
  const second = envelope(box);
  await sender.s.onMessage(sendText(second));
  const [accepted, full] = sender.t.take();
  assert.equal(accepted.type, "accepted");
  assert.deepEqual([full.code, full.id], ["mailbox_full", second.id]);
  // The mailbox was known (opened here), so both were announced while stored, the refused one too.
  assert.deepEqual(c.t.take().map((f) => f.envelope?.id), [first.id, second.id]);

  mailbox.put = () => Promise.reject(new BackendUnavailableError("disk on fire"));
  const third = envelope(box);
  await sender.s.onMessage(sendText(third));
  const [down] = sender.t.take();
  assert.deepEqual([down.code, down.id], ["unavailable", third.id]);
  assert.doesNotMatch(down.message, /disk on fire/, "backend details stay in the relay's log");
  // After the mailbox_full refusal the router stores this mailbox's envelopes first again
  // (Router.accept), so the send after it that the store failed was pushed to nobody.
  assert.deepEqual(c.t.take(), []);

  mailbox.ack = () => Promise.reject(new BackendUnavailableError("still on fire"));
  await c.s.onMessage(JSON.stringify({ v: 2, type: "ack", mailbox: box.id, ids: ["whatever"] }));
  const [ack] = c.t.take();
  assert.deepEqual([ack.code, ack.mailbox], ["unavailable", box.id]);
  assert.equal(c.t.closedWith, undefined, "refusals never close the socket");
  assert.equal(sender.t.closedWith, undefined);
});

Deno.test("session: live pushes during the drain wait for it and skip what it already sent", async () => {
  const mailbox = new MemoryMailbox();
  using r = await relay(mailbox);
  const box = pairBox();
  await r.router.open(box.id, "pair");
  const old = envelope(box), fresh = envelope(box);
  await r.router.accept(old);
  // Hold the drain's read until two announcements (one repeating the backlog) have arrived.
  const pending = mailbox.pending.bind(mailbox);
  let release!: () => void;
  const gate = new Promise<void>((res) => release = res);
  mailbox.pending = async (...args) => {
    await gate;
    return await pending(...args);
  };
  const c = r.connect();
  const opening = c.s.onMessage(await openText(c, box));
  while (c.t.sent.length === 0) await delay(1); // "opened"
  // Announced only (as from another relay whose write the drain's read will not see), then the
  // backlog's envelope announced again.
  await r.elsewhere.publish(box.id, serializeEnvelopeV2(fresh));
  await r.router.accept(old);
  await Promise.resolve();
  assert.deepEqual(c.t.frames.map((f) => f.type), ["opened"], "nothing is pushed mid-drain");
  release();
  await opening;
  const frames = c.t.take();
  assert.deepEqual(frames.map((f) => f.type), ["opened", "deliver", "deliver", "synced"]);
  assert.deepEqual(frames.slice(1, 3).map((f) => f.envelope.id), [old.id, fresh.id]);
  assert.equal(frames[3].count, 2);
});

Deno.test("session: a mailbox that cannot be read ends with unavailable naming it, and close 1013", async () => {
  const mailbox = new MemoryMailbox();
  mailbox.pending = () => Promise.reject(new BackendUnavailableError("gone"));
  using r = await relay(mailbox);
  const box = pairBox();
  const c = r.connect();
  await c.s.onMessage(await openText(c, box));
  const frames = c.t.take();
  assert.deepEqual(frames.map((f) => f.type), ["opened", "error"]);
  assert.deepEqual([frames[1].code, frames[1].mailbox], ["unavailable", box.id]);
  assert.equal(c.t.closedWith?.code, 1013);
  assert.equal(r.router.liveMailboxes, 0, "a closed session is unregistered");

  mailbox.register = () => Promise.reject(new BackendUnavailableError("gone"));
  const d = r.connect();
  await d.s.onMessage(await openText(d, box));
  assert.deepEqual(d.t.take().map((f) => f.code ?? f.type), ["unavailable"]);
  assert.equal(d.t.closedWith?.code, 1013);
});

Deno.test("session: frame limits: too large closes 1009, binary and bad JSON are answered", async () => {
  using r = await relay(new MemoryMailbox(), { maxFrameBytes: 1024 });
  const c = r.connect();
  await c.s.onMessage(new Uint8Array(10));
  await c.s.onMessage("{nope");
  await c.s.onMessage(JSON.stringify({ v: 2, type: "ping", nonce: "n1" }));
  assert.deepEqual(c.t.take().map((f) => f.code ?? f.type), ["binary_frame", "bad_json", "pong"]);
  // The limit is in UTF-8 bytes: 500 two-byte characters fit in 1,024 bytes, 513 do not.
  await c.s.onMessage("é".repeat(500));
  assert.deepEqual(c.t.take().map((f) => f.code ?? f.type), ["bad_json"]);
  assert.equal(c.t.closedWith?.code, undefined, "still open");
  const over = r.connect();
  await over.s.onMessage("é".repeat(513));
  assert.equal(over.t.take()[0].code, "frame_too_large");
  assert.equal(over.t.closedWith?.code, 1009);
  await c.s.onMessage("x".repeat(1025));
  assert.equal(c.t.take()[0].code, "frame_too_large");
  assert.equal(c.t.closedWith?.code, 1009);
  await c.s.onMessage(JSON.stringify({ v: 2, type: "ping" }));
  assert.deepEqual(c.t.take(), [], "nothing is written after the close");
});

Deno.test("session: over the frame budget a send is rate_limited with its id and a retry hint", async () => {
  using r = await relay(new MemoryMailbox(), { frameRate: { ratePerSecond: 1, burst: 1 } });
  const box = inboxBox();
  const c = r.connect();
  const key = toBase64(box.auth.publicKey);
  const one = envelope(box), two = envelope(box);
  await c.s.onMessage(sendText(one, key));
  await c.s.onMessage(sendText(two, key));
  const [accepted, limited] = c.t.take();
  assert.equal(accepted.id, one.id);
  assert.deepEqual([limited.code, limited.id], ["rate_limited", two.id]);
  assert.ok(limited.retry_after_ms > 0);
});

Deno.test("session: sends per pair mailbox and request-inbox sends per address have their own budgets", async () => {
  using r = await relay(new MemoryMailbox(), {
    mailboxSends: new KeyedBuckets({ ratePerSecond: 1, burst: 2 }),
    inboxSends: new KeyedBuckets({ ratePerSecond: 1 / 60, burst: 2 }),
  });
  const box = pairBox(), other = pairBox(), inbox = inboxBox();
  await r.router.open(box.id, "pair");
  await r.router.open(other.id, "pair");
  const key = toBase64(inbox.auth.publicKey);
  const a = r.connect("192.0.2.1"), b = r.connect("192.0.2.1"), elsewhere = r.connect("192.0.2.9");
  const answer = async (c: Conn, text: string) => {
    await c.s.onMessage(text);
    const [f] = c.t.take();
    return f.type === "accepted" ? "accepted" : f.code;
  };
  // A pair mailbox's budget holds over every socket; other mailboxes are not touched by it.
  assert.equal(await answer(a, sendText(envelope(box))), "accepted");
  assert.equal(await answer(b, sendText(envelope(box))), "accepted");
  assert.equal(await answer(a, sendText(envelope(box))), "rate_limited");
  assert.equal(await answer(b, sendText(envelope(other))), "accepted");
  // Request-inbox sends: budgeted per address, and apart from pair mailboxes.
  assert.equal(await answer(a, sendText(envelope(inbox), key)), "accepted");
  assert.equal(await answer(b, sendText(envelope(inbox), key)), "accepted");
  const limited = envelope(inbox);
  await a.s.onMessage(sendText(limited, key));
  const [f] = a.t.take();
  assert.deepEqual([f.code, f.id], ["rate_limited", limited.id]);
  assert.ok(f.retry_after_ms > 50_000, "a per-minute budget");
  assert.equal(await answer(elsewhere, sendText(envelope(inbox), key)), "accepted");
  assert.equal(await answer(a, sendText(envelope(other))), "accepted", "pair sends still go");
});

Deno.test("session: a slow consumer is closed with 1013 and its envelope stays in the mailbox", async () => {
  using r = await relay();
  const box = pairBox();
  const c = r.connect();
  await open(c, box);
  c.t.buffered = 10 << 20;
  const e = envelope(box);
  await r.router.accept(e);
  await Promise.resolve();
  assert.equal(c.t.closedWith?.code, 1013);
  assert.equal(c.s.open, false);
  assert.equal((await r.mailbox.depth(box.id)).count, 1, "the envelope is held for the next open");
  assert.equal(r.router.liveMailboxes, 0, "the closed session is no longer routed to");
});

Deno.test("session: told announcements may have been skipped (lost), it closes with 1013 so its client reopens", async () => {
  using r = await relay();
  const c = r.connect();
  await open(c, pairBox());
  c.s.lost();
  assert.equal(c.t.closedWith?.code, 1013);
  assert.equal(c.s.open, false);
  assert.equal(r.router.liveMailboxes, 0, "the closed session is no longer routed to");
});

Deno.test("session: shutdown closes with 1001 and unregisters every mailbox", async () => {
  using r = await relay();
  const c = r.connect();
  await open(c, pairBox());
  await open(c, inboxBox());
  assert.equal(r.router.liveMailboxes, 2);
  c.s.shutdown();
  assert.equal(c.t.closedWith?.code, 1001);
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

Deno.test("session: a socket opens at most maxMailboxes; one more is refused, reopening is not", async () => {
  using r = await relay(new MemoryMailbox(), { maxMailboxes: 2 });
  const c = r.connect();
  const [a, b, third] = [pairBox(), pairBox(), pairBox()];
  await open(c, a);
  await open(c, b);
  await c.s.onMessage(await openText(c, third));
  assert.deepEqual(c.t.take().map((f) => [f.code, f.mailbox]), [["too_many_mailboxes", third.id]]);
  await open(c, a); // an open mailbox may be opened again (to drain again)
  assert.equal(c.t.closedWith, undefined, "the socket stays open");
  await open(r.connect(), third); // the cap is per socket
});

Deno.test("session: opens sent back to back count toward maxMailboxes before any is done", async () => {
  using r = await relay(new MemoryMailbox(), { maxMailboxes: 2 });
  const c = r.connect();
  const boxes = [pairBox(), pairBox(), pairBox(), pairBox()];
  const texts = await Promise.all(boxes.map((b) => openText(c, b)));
  await Promise.all(texts.map((t) => c.s.onMessage(t)));
  const frames = c.t.take();
  const opened = frames.filter((f) => f.type === "opened").map((f) => f.mailbox);
  const refused = frames.filter((f) => f.code === "too_many_mailboxes").map((f) => f.mailbox);
  // Checks finish in any order; the first two frames took the two places.
  assert.deepEqual(opened.sort(), [boxes[0].id, boxes[1].id].sort());
  assert.deepEqual(refused.sort(), [boxes[2].id, boxes[3].id].sort());
});
