import assert from "node:assert/strict";
import { generateKeyPair, type KeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { startTestRelay } from "../tests/relay_harness.ts";
import { connectRelay, type RelaySession } from "./connection.ts";
import { RelayError } from "./errors.ts";
import { type ConnectionEvent, type ReconnectingEvent, ReconnectingRelay } from "./reconnecting.ts";

const FAST = { minTimeout: 10, multiplier: 2, maxTimeout: 40, jitter: 0.5 };

function states(events: ReconnectingEvent[]): string[] {
  return events.filter((e): e is ConnectionEvent => e.type === "connection").map((e) =>
    `${e.state}${e.error ? `:${e.error.code}` : ""}${e.close ? `:${e.close.code}` : ""}`
  );
}

/** A connect that fails with `codes` in turn, then connects for real. */
function flaky(codes: RelayError["code"][]) {
  const calls: number[] = [];
  const connect = (url: string, id: KeyPair, opts: object): Promise<RelaySession> => {
    calls.push(performance.now());
    const code = codes.shift();
    return code
      ? Promise.reject(new RelayError(code, `cannot reach relay ${url}: ${code}`))
      : connectRelay(url, id, opts);
  };
  return { connect, calls };
}

Deno.test("ReconnectingRelay: failed attempts back off with jitter, then it connects", async () => {
  await using relay = await startTestRelay();
  const { connect, calls } = flaky(["unreachable", "timeout", "unreachable"]);
  const events: ReconnectingEvent[] = [];
  // random 0: every wait is its full step (jitter takes up to half of it off).
  const r = new ReconnectingRelay(relay.url, generateKeyPair(), {
    connect,
    backoff: FAST,
    random: () => 0,
  });
  r.on((e) => events.push(e));
  r.start();
  await r.connected();
  const waits = events.flatMap((e) => e.type === "connection" && e.retryInMs ? [e.retryInMs] : []);
  assert.deepEqual(waits, [10, 20, 40]);
  assert.deepEqual(states(events), [
    "connecting",
    "disconnected:unreachable",
    "connecting",
    "disconnected:timeout",
    "connecting",
    "disconnected:unreachable",
    "connecting",
    "connected",
  ]);
  assert.equal(calls.length, 4);
  for (let i = 1; i < calls.length; i++) {
    assert.ok(calls[i] - calls[i - 1] >= waits[i - 1] - 2, "waited before each attempt");
  }
  assert.equal(r.state, "connected");
  await r.close();
  assert.equal(r.state, "closed");
});

Deno.test("ReconnectingRelay: auth_failed is final; giveUpAfterMs 0 gives up after one attempt", async () => {
  const url = "ws://127.0.0.1:9/ws";
  for (
    const [code, opts] of [["auth_failed", {}], ["unreachable", { giveUpAfterMs: 0 }]] as const
  ) {
    const { connect, calls } = flaky([code, "unreachable"]);
    const events: ReconnectingEvent[] = [];
    const r = new ReconnectingRelay(url, generateKeyPair(), { connect, backoff: FAST, ...opts });
    r.on((e) => events.push(e));
    r.start();
    await assert.rejects(
      () => r.connected(),
      (e: unknown) => e instanceof RelayError && e.code === code,
    );
    assert.deepEqual(states(events), ["connecting", `closed:${code}`]);
    assert.equal(calls.length, 1);
    await assert.rejects(
      () => r.connected(),
      (e: unknown) => e instanceof RelayError && e.code === code,
    );
    await r.close();
  }
});

Deno.test("ReconnectingRelay: without a connection, send is refused and ack says so", async () => {
  const r = new ReconnectingRelay("ws://127.0.0.1:9/ws", generateKeyPair());
  const me = generateKeyPair();
  const env = sealEnvelope(
    { v: 1, kind: "message", text: "x", sent_at: "t" },
    me,
    toBase64(me.publicKey),
  );
  await assert.rejects(
    () => r.send(env),
    (e: unknown) => e instanceof RelayError && e.code === "connection_closed" && e.id === env.id,
  );
  assert.equal(r.ack(["whatever1"]), false);
  await r.close();
});

Deno.test("ReconnectingRelay against a real relay that restarts: drop, reconnect, pending delivered", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-reconnect-" });
  const alice = generateKeyPair();
  const bob = generateKeyPair();
  let relay = await startTestRelay({ RELAY_DATA_DIR: dataDir });
  const port = relay.port;
  const events: ReconnectingEvent[] = [];
  const r = new ReconnectingRelay(relay.url, bob, { backoff: FAST, timeoutMs: 2000 });
  try {
    r.on((e) => events.push(e));
    r.start();
    await r.connected();
    await relay.shutdown(); // closes every socket with 1001
    await relay.finished;
    const dropped = await waitFor(
      events,
      (e) => e.type === "connection" && e.state === "disconnected",
    );
    assert.ok(dropped.type === "connection" && dropped.close?.code === 1001);

    // While it is down, alice leaves a message at the relay that comes back on the same port.
    relay = await startTestRelay({ RELAY_DATA_DIR: dataDir, RELAY_PORT: String(port) });
    const a = await connectRelay(relay.url, alice);
    const env = sealEnvelope(
      { v: 1, kind: "message", text: "while you were away", sent_at: "t" },
      alice,
      toBase64(bob.publicKey),
    );
    await a.send(env);
    await a.close();

    const delivered = await waitFor(events, (e) => e.type === "deliver");
    assert.ok(delivered.type === "deliver" && delivered.envelope.id === env.id);
    assert.equal(r.state, "connected");
    assert.equal(r.ack([env.id]), true);
    const kinds = states(events);
    assert.equal(kinds.filter((s) => s === "connected").length, 2, kinds.join(" "));
    assert.equal(kinds.at(-1), "connected");
  } finally {
    await r.close();
    await relay.shutdown();
    await relay.finished;
    await Deno.remove(dataDir, { recursive: true });
  }
});

/** Resolves with the first event (already seen or to come) matching `match`. */
async function waitFor(
  events: ReconnectingEvent[],
  match: (e: ReconnectingEvent) => boolean,
  ms = 10_000,
): Promise<ReconnectingEvent> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const e = events.find(match);
    if (e) return e;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no such event within ${ms} ms: ${states(events).join(" ")}`);
}
