import assert from "node:assert/strict";
import { generateKeyPair, inboxId, toBase64 } from "@chat-p2p/protocol";
import { closedPort, startFakeRelay } from "../tests/fake_relay.ts";
import { TestPeer } from "../tests/v2_peer.ts";
import { connectRelay, type RelayEvent, type RelaySession } from "./connection.ts";
import { RelayError } from "./errors.ts";

async function nextOfType(s: RelaySession, type: RelayEvent["type"]): Promise<RelayEvent> {
  while (true) {
    const e = await s.nextEvent(5000);
    if (e === undefined || e === "timeout") throw new Error(`no ${type} event (${e})`);
    if (e.type === type) return e;
  }
}

Deno.test("connectRelay: unreachable relay says connection refused", async () => {
  const port = closedPort();
  await assert.rejects(
    () => connectRelay(`ws://127.0.0.1:${port}`, { timeoutMs: 3000 }),
    (e: unknown) => {
      assert.ok(e instanceof RelayError);
      assert.equal(e.code, "unreachable");
      assert.equal(e.message, `cannot reach relay ws://127.0.0.1:${port}/ws: connection refused`);
      return true;
    },
  );
});

Deno.test("connectRelay: rejects URLs that are not relay URLs", async () => {
  await assert.rejects(
    () => connectRelay("ftp://example.com"),
    (e: unknown) => e instanceof RelayError && e.code === "bad_url",
  );
});

Deno.test("RelaySession: hello, open, send/accepted, live deliver, merged acks per mailbox, errors", async () => {
  await using relay = startFakeRelay();
  const bob = generateKeyPair();
  const bobKey = toBase64(bob.publicKey);
  const lines: string[] = [];
  let a: RelaySession | undefined;
  let b: RelaySession | undefined;
  try {
    // http:// is mapped to ws://; the canonical URL is what an open signs.
    a = await connectRelay(relay.url.replace("ws://", "http://"), { timeoutMs: 5000 });
    assert.equal(a.relayUrl, relay.url);
    assert.equal(a.opened.size, 0, "a sender opens nothing");

    // A pair mailbox nobody registered: unknown_mailbox, as data with the envelope id.
    const peer = await TestPeer.create(bob);
    try {
      const alice = await TestPeer.create();
      const first = await alice.message(bobKey, "one");
      await assert.rejects(() => a!.send(first.envelope), (e: unknown) => {
        assert.ok(e instanceof RelayError);
        assert.deepEqual([e.code, e.id, e.fromRelay], ["unknown_mailbox", first.envelope.id, true]);
        return true;
      });
      // To the request inbox, with the recipient's key: accepted even though never opened.
      const req = await alice.wrap(bobKey, first.wire, "request");
      await a.send(req, { key: bobKey });

      // Bob opens his inbox and the pair mailbox alice writes to; the backlog, then synced.
      b = await connectRelay(relay.url, {
        timeoutMs: 5000,
        framesPerSecond: 1,
        frameBurst: 2,
        log: (l) => lines.push(l),
      });
      assert.equal(await b.open("inbox", bob), toBase64(inboxId(bob.publicKey)));
      const d1 = await nextOfType(b, "deliver");
      assert.ok(d1.type === "deliver" && d1.envelope.id === req.id);
      const s1 = await nextOfType(b, "synced");
      assert.deepEqual(s1, { type: "synced", mailbox: req.to, count: 1 });
      const pair = await peer.sealer.mailboxes.readMailbox(alice.key);
      assert.equal(await b.open("pair", pair.authKeyPair), pair.idText);
      assert.ok(b.opened.has(pair.idText) && b.opened.has(req.to));

      // Live deliveries; acks waiting for their turn are merged (one frame per mailbox).
      const live = [];
      for (let i = 0; i < 20; i++) live.push((await alice.message(bobKey, `m${i}`)).envelope);
      // The same envelope twice: one frame on the wire, both callers get the answer.
      await Promise.all([
        a.send(live[0]),
        a.send(live[0]),
        ...live.slice(1).map((e) => a!.send(e)),
      ]);
      for (let i = 0; i < live.length; i++) {
        const e = await nextOfType(b, "deliver");
        assert.ok(e.type === "deliver");
        b.ack(e.envelope.to, [e.envelope.id]);
      }
      b.ack(req.to, [req.id]);
      await b.close();
      const acks = lines.filter((l) => l.startsWith('> {"v":2,"type":"ack"'));
      assert.ok(acks.length <= 4, acks.join("\n"));
      assert.deepEqual(relay.mailboxes.get(pair.idText), [], "all acked");
      assert.deepEqual(relay.mailboxes.get(req.to), []);
      await alice[Symbol.asyncDispose]();
    } finally {
      await peer[Symbol.asyncDispose]();
    }

    // Sends in flight when the socket closes are rejected, not left hanging.
    await a.close();
    await assert.rejects(
      () => a!.send({ v: 2, id: "late-late", to: toBase64(inboxId(bob.publicKey)), body: "" }),
      (e: unknown) => e instanceof RelayError && e.code === "connection_closed",
    );
  } finally {
    await a?.close();
    await b?.close();
  }
});

Deno.test("RelaySession: an open signed for another URL of the relay fails with auth_failed", async () => {
  await using relay = startFakeRelay();
  const s = await connectRelay(relay.url.replace("127.0.0.1", "localhost"), { timeoutMs: 5000 });
  try {
    await assert.rejects(() => s.open("inbox", generateKeyPair()), (e: unknown) => {
      assert.ok(e instanceof RelayError);
      assert.equal(e.code, "auth_failed");
      return true;
    });
    assert.equal(s.opened.size, 0);
    assert.ok(s.isOpen, "the socket stays usable");
  } finally {
    await s.close();
  }
});

Deno.test("RelaySession: a send refused as rate_limited rejects once, with retry_after_ms", async () => {
  await using relay = startFakeRelay((_, n) =>
    n % 2 === 1 ? { code: "rate_limited", retry_after_ms: 250 } : "accepted"
  );
  const s = await connectRelay(relay.url, { timeoutMs: 5000, framesPerSecond: 0 });
  const peer = await TestPeer.create();
  try {
    const b = await peer.sealer.mailboxes.readMailbox(toBase64(generateKeyPair().publicKey));
    relay.registered.add(b.idText);
    const envs = Array.from({ length: 6 }, (_, i) => ({
      v: 2 as const,
      id: `envelope-${i}`,
      to: b.idText,
      body: btoa("x".repeat(609)),
    }));
    const results = await Promise.allSettled(envs.map((e) => s.send(e)));
    const refused = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
    assert.equal(refused.length, 3);
    for (const e of refused) {
      assert.ok(e instanceof RelayError);
      assert.deepEqual([e.code, e.fromRelay, e.retryAfterMs], ["rate_limited", true, 250]);
    }
  } finally {
    await s.close();
    await peer[Symbol.asyncDispose]();
  }
});

Deno.test("RelaySession: two opens of one mailbox at once share one answer", async () => {
  await using relay = startFakeRelay();
  const bob = generateKeyPair();
  const s = await connectRelay(relay.url, { timeoutMs: 2000 });
  try {
    const [x, y] = await Promise.all([s.open("inbox", bob), s.open("inbox", bob)]);
    const id = toBase64(inboxId(bob.publicKey));
    assert.deepEqual([x, y], [id, id]);
    assert.deepEqual([...s.opened], [id]);
  } finally {
    await s.close();
  }
});
