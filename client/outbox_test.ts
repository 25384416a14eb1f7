import assert from "node:assert/strict";
import { delay } from "@chat-p2p/protocol/async";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { ClientError, RelayError, type RelayErrorCode } from "./errors.ts";
import {
  isPermanentRefusal,
  Outbox,
  type OutboxEvent,
  type OutboxTransport,
  PERMANENT_REFUSALS,
} from "./outbox.ts";
import { profileSealer } from "./sealing.ts";
import { ReceiptQueue } from "./receipts.ts";
import { ProfileStore } from "./store/profile_store.ts";

/** A transport answering each send from a script (default: accepted). */
class FakeTransport implements OutboxTransport {
  connected = true;
  readonly sent: Array<{ peer: string; wire: string; env: string; at: number }> = [];
  readonly script: Array<() => Promise<void>> = [];
  isConnected(): boolean {
    return this.connected;
  }
  send(peer: string, wire: Uint8Array, env: string): Promise<void> {
    this.sent.push({ peer, wire: toBase64(wire), env, at: performance.now() });
    return (this.script.shift() ?? (() => Promise.resolve()))();
  }
}

const refuse = (code: RelayErrorCode, opts: { retryAfterMs?: number } = {}) => () =>
  Promise.reject(new RelayError(code, `refused: ${code}`, { fromRelay: true, ...opts }));

function setup() {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-outbox-" });
  const store = new ProfileStore({ home, profile: "default" });
  const me = generateKeyPair();
  store.saveIdentity(me);
  const sealer = profileSealer(store, me);
  const peer = toBase64(generateKeyPair().publicKey);
  const transport = new FakeTransport();
  const events: OutboxEvent[] = [];
  const make = () =>
    new Outbox({
      store,
      sealer,
      transport,
      onEvent: (e) => events.push(e),
      backoff: { minTimeout: 5, maxTimeout: 20, jitter: 0 },
    });
  const outbox = make();
  const state = (id: string) => store.history(peer).get(id)?.state;
  /** The envelope id and ratchet message history holds for message `id`. */
  const wire = (id: string) => {
    const e = store.history(peer).get(id)!;
    return { env: e.env!, wire: e.wire! };
  };
  return {
    home,
    store,
    peer,
    sealer,
    transport,
    events,
    outbox,
    make,
    state,
    wire,
    [Symbol.dispose]() {
      outbox.close();
      Deno.removeSync(home, { recursive: true });
    },
  };
}

const MAX = 65536;

Deno.test("Outbox rule: refusals retrying cannot fix make a message failed, once", async () => {
  assert.deepEqual([...PERMANENT_REFUSALS].sort(), [
    "bad_frame",
    "bad_json",
    "binary_frame",
    "frame_too_large",
    "unknown_type",
    "unsupported_version",
  ]);
  for (const code of PERMANENT_REFUSALS) {
    using s = setup();
    s.transport.script.push(refuse(code));
    const { id } = s.outbox.enqueue(s.peer, `refused with ${code}`, MAX);
    const outcome = await s.outbox.outcome(id);
    assert.equal(outcome.state, "failed", code);
    assert.ok(outcome.state === "failed" && outcome.error.code === code);
    assert.equal(s.state(id), "failed", `${code}: history says failed`);
    assert.deepEqual(s.outbox.queued(), []);
    assert.equal(s.transport.sent.length, 1, `${code}: not sent again`);
    assert.deepEqual(s.events.map((e) => e.type), ["failed"]);
  }
});

Deno.test("Outbox rule: everything else keeps the message queued and sends the same bytes again, same id", async () => {
  const transient: RelayErrorCode[] = [
    "timeout",
    "unreachable",
    "unavailable",
    "mailbox_full",
    "internal",
    "rate_limited",
    "auth_failed",
    "unknown_mailbox",
    "not_open",
    "protocol",
  ];
  for (const code of [...transient, "a_code_from_a_newer_relay" as RelayErrorCode]) {
    assert.equal(isPermanentRefusal(new RelayError(code, "x", { fromRelay: true })), false, code);
    using s = setup();
    s.transport.script.push(refuse(code), refuse(code));
    const { id } = s.outbox.enqueue(s.peer, `refused with ${code}`, MAX);
    assert.deepEqual(await s.outbox.outcome(id), { state: "accepted" }, code);
    const { env, wire } = s.wire(id);
    assert.deepEqual(s.transport.sent.map((x) => [x.env, x.wire]), [
      [env, wire],
      [env, wire],
      [env, wire],
    ], `${code}: the ratchet message of history, never encrypted again`);
    assert.equal(s.state(id), "accepted");
    assert.deepEqual(s.events.map((e) => e.type), ["retry", "retry", "accepted"], code);
    const retry = s.events[0];
    assert.ok(retry.type === "retry" && retry.error.code === code);
    assert.equal(retry.message.lastError?.code, code);
  }
});

Deno.test("Outbox: rate_limited waits the relay's retry_after_ms, even across a new connection", async () => {
  using s = setup();
  s.transport.script.push(refuse("rate_limited", { retryAfterMs: 120 }));
  const { id } = s.outbox.enqueue(s.peer, "slow down", MAX);
  await delay(10);
  s.outbox.flush(); // a reconnect does not cut a wait the relay asked for
  assert.deepEqual(await s.outbox.outcome(id), { state: "accepted" });
  const [first, second] = s.transport.sent;
  assert.equal(s.transport.sent.length, 2);
  assert.ok(second.at - first.at >= 110, `${second.at - first.at} ms`);
  const retry = s.events[0];
  assert.ok(retry.type === "retry" && retry.delayMs === 120);
});

Deno.test("Outbox: a lost connection keeps messages queued; flush sends them oldest first", async () => {
  using s = setup();
  s.transport.connected = false;
  const a = s.outbox.enqueue(s.peer, "one", MAX);
  const b = s.outbox.enqueue(s.peer, "two", MAX);
  assert.equal(s.transport.sent.length, 0);
  assert.equal(s.state(a.id), "sending", "in history before anything is sent");
  s.transport.connected = true;
  s.transport.script.push(refuse("connection_closed"));
  s.outbox.flush();
  assert.equal((await s.outbox.outcome(b.id)).state, "accepted");
  assert.deepEqual(s.outbox.queued().map((m) => m.text), ["one"], "waits for the next connection");
  assert.deepEqual(s.events.map((e) => e.type), ["accepted"], "a dropped connection is no event");
  s.outbox.flush();
  assert.equal((await s.outbox.outcome(a.id)).state, "accepted");
  assert.deepEqual(s.transport.sent.map((x) => x.env), [a, b, a].map((m) => s.wire(m.id).env));
});

Deno.test("Outbox.resume: what an earlier run left as sending is sent under its own ids, once", async () => {
  using s = setup();
  s.transport.connected = false;
  const left = [s.outbox.enqueue(s.peer, "left 1", MAX), s.outbox.enqueue(s.peer, "left 2", MAX)];
  s.outbox.close(); // the run ends before the relay answered

  s.transport.connected = true;
  const next = s.make();
  const resumed = next.resume(s.peer);
  assert.deepEqual(resumed.map((m) => [m.id, m.text]), left.map((m) => [m.id, m.text]));
  assert.deepEqual(next.resume(s.peer), [], "already queued");
  await Promise.all(left.map((m) => next.outcome(m.id)));
  assert.deepEqual(left.map((m) => s.state(m.id)), ["accepted", "accepted"]);
  assert.deepEqual(
    s.transport.sent.map((x) => [x.env, x.wire]),
    left.map((m) => [s.wire(m.id).env, s.wire(m.id).wire]),
  );
  assert.deepEqual(next.resume(s.peer), [], "nothing left");
  next.close();
});

Deno.test("Outbox.requeue: failed messages go back to sending and are sent again", async () => {
  using s = setup();
  s.transport.script.push(refuse("bad_frame"), refuse("bad_frame"));
  const a = s.outbox.enqueue(s.peer, "a", MAX);
  const b = s.outbox.enqueue(s.peer, "b", MAX);
  await Promise.all([s.outbox.outcome(a.id), s.outbox.outcome(b.id)]);
  assert.deepEqual([s.state(a.id), s.state(b.id)], ["failed", "failed"]);

  assert.deepEqual(s.outbox.requeue(s.peer, b.id).map((m) => m.id), [b.id]);
  assert.equal((await s.outbox.outcome(b.id)).state, "accepted");
  assert.deepEqual([s.state(a.id), s.state(b.id)], ["failed", "accepted"]);
  assert.deepEqual(s.outbox.requeue(s.peer).map((m) => m.id), [a.id]);
  assert.equal((await s.outbox.outcome(a.id)).state, "accepted");
  assert.deepEqual(s.outbox.requeue(s.peer), [], "nothing failed any more");
});

Deno.test("Outbox.enqueue: a message too large for the wire is refused before history", () => {
  using s = setup();
  assert.throws(
    () => s.outbox.enqueue(s.peer, "x".repeat(2000), 1000),
    (e: unknown) => e instanceof RelayError && e.code === "frame_too_large",
  );
  assert.throws(
    () => s.outbox.enqueue(s.peer, "x".repeat(70_000), 1 << 20),
    (e: unknown) => e instanceof ClientError && e.code === "message_too_large",
  );
  assert.deepEqual(s.store.history(s.peer).entries(), []);
  assert.equal(s.transport.sent.length, 0);
});

Deno.test("Outbox.resume: a message chat-p2p 1 left queued is encrypted once, then re-sent as is", async () => {
  using s = setup();
  // As the v1 store wrote it: no ratchet message, the envelope id as the message id.
  const v1Id = "0123456789abcdef0123456789abcdef";
  const at = new Date().toISOString();
  s.store.history(s.peer).appendMessage({ id: v1Id, dir: "out", text: "from v1", sent_at: at, at });
  s.transport.connected = false;
  const first = s.make();
  assert.deepEqual(first.resume(s.peer).map((m) => [m.id, m.text]), [[v1Id, "from v1"]]);
  const recorded = s.wire(v1Id);
  assert.notEqual(recorded.env, v1Id, "a new, random envelope id");
  first.close();

  s.transport.connected = true;
  const next = s.make();
  next.resume(s.peer);
  assert.deepEqual(await next.outcome(v1Id), { state: "accepted" });
  assert.deepEqual(s.transport.sent.map((x) => [x.env, x.wire]), [[recorded.env, recorded.wire]]);
  next.close();
});

Deno.test("Outbox.enqueue: queued receipts ride on a message, unless they would make it too large", () => {
  using s = setup();
  s.transport.connected = false;
  const queue = new ReceiptQueue();
  const outbox = new Outbox({
    store: s.store,
    sealer: s.sealer,
    transport: s.transport,
    receipts: queue,
  });
  try {
    const ids = Array.from({ length: 1000 }, (_, i) => i.toString(16).padStart(32, "0"));
    queue.add(s.peer, ids);
    // 64,000 bytes of text and 35,000 of receipt ids do not fit one message: the text goes alone.
    const big = outbox.enqueue(s.peer, "x".repeat(64_000), 1 << 20);
    assert.equal(s.state(big.id), "sending");
    assert.deepEqual(queue.peers(), [s.peer], "the receipts are still queued");
    const small = outbox.enqueue(s.peer, "hi", 1 << 20);
    assert.equal(s.state(small.id), "sending");
    assert.deepEqual(queue.peers(), [], "they went with the short one");
  } finally {
    outbox.close();
  }
});
