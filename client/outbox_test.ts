import assert from "node:assert/strict";
import { type Envelope, generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { RelayError, type RelayErrorCode } from "./errors.ts";
import {
  isPermanentRefusal,
  Outbox,
  type OutboxEvent,
  type OutboxTransport,
  PERMANENT_REFUSALS,
} from "./outbox.ts";
import { v1Sealer } from "./sealing.ts";
import { ProfileStore } from "./store/profile_store.ts";

/** A transport answering each send from a script (default: accepted). */
class FakeTransport implements OutboxTransport {
  connected = true;
  readonly sent: Array<{ envelope: Envelope; at: number }> = [];
  readonly script: Array<(e: Envelope) => Promise<void>> = [];
  isConnected(): boolean {
    return this.connected;
  }
  send(envelope: Envelope): Promise<void> {
    this.sent.push({ envelope, at: performance.now() });
    return (this.script.shift() ?? (() => Promise.resolve()))(envelope);
  }
}

const refuse = (code: RelayErrorCode, opts: { retryAfterMs?: number } = {}) => () =>
  Promise.reject(new RelayError(code, `refused: ${code}`, { fromRelay: true, ...opts }));

function setup() {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-outbox-" });
  const store = new ProfileStore({ home, profile: "default" });
  const me = generateKeyPair();
  store.saveIdentity(me);
  const peer = toBase64(generateKeyPair().publicKey);
  const transport = new FakeTransport();
  const events: OutboxEvent[] = [];
  const make = () =>
    new Outbox({
      store,
      sealer: v1Sealer(me),
      transport,
      onEvent: (e) => events.push(e),
      backoff: { minTimeout: 5, maxTimeout: 20, jitter: 0 },
    });
  const outbox = make();
  const state = (id: string) => store.history(peer).get(id)?.state;
  return {
    home,
    store,
    peer,
    transport,
    events,
    outbox,
    make,
    state,
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
    "spoofed_sender",
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

Deno.test("Outbox rule: everything else keeps the message queued and sends it again, same id", async () => {
  const transient: RelayErrorCode[] = [
    "timeout",
    "unreachable",
    "unavailable",
    "mailbox_full",
    "internal",
    "rate_limited",
    "auth_failed",
    "not_authenticated",
    "protocol",
  ];
  for (const code of [...transient, "a_code_from_a_newer_relay" as RelayErrorCode]) {
    assert.equal(isPermanentRefusal(new RelayError(code, "x", { fromRelay: true })), false, code);
    using s = setup();
    s.transport.script.push(refuse(code), refuse(code));
    const { id } = s.outbox.enqueue(s.peer, `refused with ${code}`, MAX);
    assert.deepEqual(await s.outbox.outcome(id), { state: "accepted" }, code);
    assert.deepEqual(s.transport.sent.map((x) => x.envelope.id), [id, id, id], code);
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
  await new Promise((r) => setTimeout(r, 10));
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
  assert.deepEqual(s.transport.sent.map((x) => x.envelope.id), [a.id, b.id, a.id]);
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
  assert.deepEqual(s.transport.sent.map((x) => x.envelope.id), left.map((m) => m.id));
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
  assert.deepEqual(s.store.history(s.peer).entries(), []);
  assert.equal(s.transport.sent.length, 0);
});
