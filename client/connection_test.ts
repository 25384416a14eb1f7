import assert from "node:assert/strict";
import { generateKeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { closedPort } from "../tests/fake_relay.ts";
import { RelayProcess } from "../tests/relay_process.ts";
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
    () => connectRelay(`ws://127.0.0.1:${port}`, generateKeyPair(), { timeoutMs: 3000 }),
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
    () => connectRelay("ftp://example.com", generateKeyPair()),
    (e: unknown) => e instanceof RelayError && e.code === "bad_url",
  );
});

Deno.test({
  name: "RelaySession against the real relay: auth, send/accepted, live deliver, ack, errors",
  async fn() {
    const relay = await RelayProcess.start();
    const alice = generateKeyPair();
    const bob = generateKeyPair();
    const bobKey = toBase64(bob.publicKey);
    let a: RelaySession | undefined;
    let b: RelaySession | undefined;
    try {
      // http:// is mapped to ws://, and the signed URL is the normalised one.
      a = await connectRelay(relay.url.replace("ws://", "http://"), alice, { timeoutMs: 5000 });
      assert.equal(a.key, toBase64(alice.publicKey));
      assert.deepEqual(await nextOfType(a, "synced"), { type: "synced", count: 0 });

      // Offline delivery: stored, then drained on connect.
      const first = sealEnvelope(
        { v: 1, kind: "message", text: "one", sent_at: "t" },
        alice,
        bobKey,
      );
      await a.send(first);
      b = await connectRelay(relay.url, bob, { timeoutMs: 5000 });
      const d1 = await nextOfType(b, "deliver");
      assert.ok(d1.type === "deliver" && d1.envelope.id === first.id);
      assert.deepEqual(await nextOfType(b, "synced"), { type: "synced", count: 1 });
      b.ack([first.id]);

      // Live delivery.
      const second = sealEnvelope(
        { v: 1, kind: "message", text: "two", sent_at: "t" },
        alice,
        bobKey,
      );
      await a.send(second);
      const d2 = await nextOfType(b, "deliver");
      assert.ok(d2.type === "deliver" && d2.envelope.id === second.id);
      b.ack([second.id]);

      // A relay error about an envelope rejects that send with the relay's code.
      const spoofed = {
        ...sealEnvelope({ v: 1, kind: "message", text: "x", sent_at: "t" }, bob, bobKey),
      };
      await assert.rejects(() => a!.send(spoofed), (e: unknown) => {
        assert.ok(e instanceof RelayError);
        assert.equal(e.code, "spoofed_sender");
        assert.equal(e.fromRelay, true);
        return true;
      });

      // After the acks, a new session has nothing pending.
      await b.close();
      b = await connectRelay(relay.url, bob, { timeoutMs: 5000 });
      assert.deepEqual(await nextOfType(b, "synced"), { type: "synced", count: 0 });

      // Sends in flight when the socket closes are rejected, not left hanging.
      await b.close();
      await assert.rejects(
        () =>
          b!.send(sealEnvelope({ v: 1, kind: "message", text: "late", sent_at: "t" }, bob, bobKey)),
        (e: unknown) => e instanceof RelayError && e.code === "connection_closed",
      );
    } finally {
      await a?.close();
      await b?.close();
      await relay.stop();
    }
  },
});

Deno.test({
  name: "RelaySession: a send refused as rate_limited rejects once, with retry_after_ms",
  async fn() {
    // A relay with a tiny frame budget, and a client that does not pace itself.
    const relay = await RelayProcess.start({ args: ["--frame-rate", "20", "--frame-burst", "5"] });
    const alice = generateKeyPair();
    const bobKey = toBase64(generateKeyPair().publicKey);
    let a: RelaySession | undefined;
    try {
      a = await connectRelay(relay.url, alice, { timeoutMs: 10_000, framesPerSecond: 0 });
      const envs = Array.from(
        { length: 20 },
        (_, i) =>
          sealEnvelope({ v: 1, kind: "message", text: `m${i}`, sent_at: "t" }, alice, bobKey),
      );
      const results = await Promise.allSettled(envs.map((e) => a!.send(e)));
      const refused = results.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
      assert.ok(refused.length > 0, "some sends are over the budget");
      for (const e of refused) {
        assert.ok(e instanceof RelayError);
        assert.equal(e.code, "rate_limited");
        assert.equal(e.fromRelay, true);
        assert.ok((e.retryAfterMs ?? 0) > 0, "the relay says when to retry");
      }
      assert.ok(results.some((r) => r.status === "fulfilled"), "the burst got through");
    } finally {
      await a?.close();
      await relay.stop();
    }
  },
});

Deno.test({
  name: "RelaySession: acks waiting for their turn go out merged; a repeated send gets one answer",
  async fn() {
    const relay = await RelayProcess.start();
    const alice = generateKeyPair();
    const bob = generateKeyPair();
    const bobKey = toBase64(bob.publicKey);
    const lines: string[] = [];
    let a: RelaySession | undefined;
    let b: RelaySession | undefined;
    try {
      a = await connectRelay(relay.url, alice, { timeoutMs: 5000 });
      const envs = Array.from(
        { length: 30 },
        (_, i) =>
          sealEnvelope({ v: 1, kind: "message", text: `m${i}`, sent_at: "t" }, alice, bobKey),
      );
      // The same envelope twice: one frame on the wire, both callers get the answer.
      await Promise.all([
        a.send(envs[0]),
        a.send(envs[0]),
        ...envs.slice(1).map((e) => a!.send(e)),
      ]);

      // One frame a second: the first ack is written at once, the other 29 wait and merge.
      b = await connectRelay(relay.url, bob, {
        timeoutMs: 5000,
        framesPerSecond: 1,
        frameBurst: 1,
        log: (l) => lines.push(l),
      });
      for (let i = 0; i < envs.length; i++) {
        const e = await nextOfType(b, "deliver");
        assert.ok(e.type === "deliver");
        b.ack([e.envelope.id]);
      }
      await b.close();
      const acks = lines.filter((l) => l.startsWith('> {"v":1,"type":"ack"'));
      assert.ok(acks.length <= 3, acks.join("\n"));
      b = await connectRelay(relay.url, bob, { timeoutMs: 5000 });
      assert.deepEqual(await nextOfType(b, "synced"), { type: "synced", count: 0 }, "all acked");
    } finally {
      await a?.close();
      await b?.close();
      await relay.stop();
    }
  },
});
