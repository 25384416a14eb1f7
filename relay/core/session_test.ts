import assert from "node:assert/strict";
import { authMessage, generateKeyPair, sign, toBase64 } from "@chat-p2p/protocol";
import { MemoryBus } from "../bus/memory.ts";
import { createLogger } from "../infra/log.ts";
import { MemoryMailbox } from "../mailbox/memory.ts";
import { Router } from "./router.ts";
import { KeyedBuckets } from "./rate_limit.ts";
import { Session, type Transport } from "./session.ts";

/** A transport whose send buffer we control, to model a client that stopped reading. */
class StalledTransport implements Transport {
  sent: string[] = [];
  closedWith?: number;
  buffered = 0;
  send(text: string) {
    this.sent.push(text);
  }
  close(code: number) {
    this.closedWith = code;
  }
  bufferedAmount() {
    return this.buffered;
  }
}

Deno.test("session: a slow consumer is closed with 1013 and its envelope stays in the mailbox", async () => {
  const mailbox = new MemoryMailbox();
  const router = new Router(mailbox, new MemoryBus(), createLogger("error", () => {}));
  await router.start();
  const t = new StalledTransport();
  const s = new Session(t, router, {
    maxFrameBytes: 65536,
    authTimeoutMs: 10_000,
    maxBufferedBytes: 65536,
    publicUrls: [],
    requestHost: "127.0.0.1:1",
    frameRate: { ratePerSecond: 0, burst: 1 },
    sendBuckets: new KeyedBuckets({ ratePerSecond: 0, burst: 1 }),
  }, createLogger("error", () => {}));
  s.start();
  const kp = generateKeyPair();
  const key = toBase64(kp.publicKey);
  const challenge = JSON.parse(t.sent[0]).challenge;
  const relay = "ws://127.0.0.1:1/ws";
  await s.onMessage(JSON.stringify({
    v: 1,
    type: "auth",
    key,
    relay,
    signature: toBase64(sign(authMessage(relay, challenge, key), kp.secretKey)),
  }));
  assert.ok(t.sent.some((f) => JSON.parse(f).type === "synced"));
  t.buffered = 10 * 65536;
  await mailbox.put(key, { id: "id-slow-01", raw: '{"v":1,"id":"id-slow-01"}' });
  s.push("id-slow-01", '{"v":1,"id":"id-slow-01"}');
  assert.equal(t.closedWith, 1013);
  assert.equal(s.open, false);
  assert.equal(
    (await mailbox.depth(key)).count,
    1,
    "the envelope is still held for the next connect",
  );
  assert.equal(router.liveMailboxes, 0, "the closed session is no longer routed to");
});
