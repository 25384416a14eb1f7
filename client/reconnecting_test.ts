import assert from "node:assert/strict";
import { delay } from "@chat-p2p/protocol/async";
import { generateKeyPair, inboxId, pairMailboxId, toBase64 } from "@chat-p2p/protocol";
import { startFakeRelay } from "../tests/fake_relay.ts";
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
  const connect = (url: string, opts: object): Promise<RelaySession> => {
    calls.push(performance.now());
    const code = codes.shift();
    return code
      ? Promise.reject(new RelayError(code, `cannot reach relay ${url}: ${code}`))
      : connectRelay(url, opts);
  };
  return { connect, calls };
}

Deno.test("ReconnectingRelay: failed attempts back off with jitter, then it connects", async () => {
  await using relay = startFakeRelay();
  const { connect, calls } = flaky(["unreachable", "timeout", "unreachable"]);
  const events: ReconnectingEvent[] = [];
  // random 0: every wait is its full step (jitter takes up to half of it off). Sender only: one
  // connect per attempt.
  const r = new ReconnectingRelay(relay.url, {
    connect,
    backoff: FAST,
    random: () => 0,
    reader: false,
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

Deno.test("ReconnectingRelay: unsupported_version is final; giveUpAfterMs 0 gives up after one attempt", async () => {
  const url = "ws://127.0.0.1:9/ws";
  for (
    const [code, opts] of [
      ["unsupported_version", {}],
      ["unreachable", { giveUpAfterMs: 0 }],
    ] as const
  ) {
    const { connect, calls } = flaky([code, "unreachable"]);
    const events: ReconnectingEvent[] = [];
    const r = new ReconnectingRelay(url, { connect, backoff: FAST, reader: false, ...opts });
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

Deno.test("ReconnectingRelay: without a connection, send and open are refused and ack says so", async () => {
  const r = new ReconnectingRelay("ws://127.0.0.1:9/ws");
  const me = generateKeyPair();
  const to = toBase64(inboxId(me.publicKey));
  const env = { v: 2 as const, id: "envelope-1", to, body: "" };
  await assert.rejects(
    () => r.send(env),
    (e: unknown) => e instanceof RelayError && e.code === "connection_closed" && e.id === env.id,
  );
  await assert.rejects(
    () => r.open("inbox", me),
    (e: unknown) => e instanceof RelayError && e.code === "connection_closed",
  );
  assert.equal(r.ack(to, ["whatever1"]), false);
  await r.close();
});

Deno.test("ReconnectingRelay: sender, inbox and reader sockets; when one drops all reconnect, mailboxes open again", async () => {
  await using relay = startFakeRelay();
  const bob = generateKeyPair();
  const pairAuth = generateKeyPair();
  const inbox = toBase64(inboxId(bob.publicKey));
  const pair = toBase64(pairMailboxId(pairAuth.publicKey));
  const events: ReconnectingEvent[] = [];
  const r = new ReconnectingRelay(relay.url, { backoff: FAST, timeoutMs: 2000 });
  r.on((e) => {
    events.push(e);
    if (e.type === "connection" && e.state === "connected") {
      r.open("inbox", bob).catch(() => {});
      r.open("pair", pairAuth).catch(() => {});
    }
  });
  try {
    r.start();
    await r.connected();
    await waitFor(events, () => events.filter((e) => e.type === "synced").length === 2);
    const sockets = new Set([r.session, r.inboxReader, r.reader]);
    assert.ok(!sockets.has(undefined) && sockets.size === 3, "three sockets");
    assert.deepEqual([...r.inboxReader!.opened], [inbox], "the inbox on a socket of its own");
    assert.deepEqual([...r.reader!.opened], [pair], "pair mailboxes on the reader");
    assert.equal(r.session!.opened.size, 0, "the sender opens nothing");
    assert.equal(r.openedOn(inbox), r.inboxReader);
    assert.equal(r.openedOn(pair), r.reader);

    // The sender socket drops: the others are closed too, and all come back.
    await r.session!.close();
    await waitFor(events, (e) => e.type === "connection" && e.state === "disconnected");
    await waitFor(events, () => states(events).filter((s) => s === "connected").length === 2);

    // Mailboxes opened again on the new reader: a message left meanwhile is delivered.
    const env = { v: 2 as const, id: "while-away", to: inbox, body: btoa("x".repeat(650)) };
    relay.inject(env);
    const delivered = await waitFor(events, (e) => e.type === "deliver");
    assert.ok(delivered.type === "deliver" && delivered.envelope.id === env.id);
    assert.equal(r.ack(inbox, [env.id]), true);
    assert.equal(r.ack(pair, ["none-such"]), true, "acked on the reader, which opened it");
    assert.equal(r.ack("b3RoZXI=", [env.id]), false, "not a mailbox opened on this link");
  } finally {
    await r.close();
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
    await delay(10);
  }
  throw new Error(`no such event within ${ms} ms: ${states(events).join(" ")}`);
}
