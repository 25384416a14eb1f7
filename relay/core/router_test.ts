/** The router without sockets: store then announce, refusals, and who gets each announcement. */
import assert from "node:assert/strict";
import { generateKeyPair, sealEnvelope, serializeEnvelope, toBase64 } from "@chat-p2p/protocol";
import { MemoryBus } from "../bus/memory.ts";
import { createLogger } from "../infra/log.ts";
import { MemoryMailbox } from "../mailbox/memory.ts";
import { BackendUnavailableError, MailboxFullError } from "../ports/errors.ts";
import { idOfRaw, type Recipient, Router } from "./router.ts";

const alice = generateKeyPair(), bob = generateKeyPair();
const BOB = toBase64(bob.publicKey);

function envelope(text = "hi") {
  return sealEnvelope({ v: 1, kind: "message", text, sent_at: "" }, alice, BOB);
}

/** A recipient that records every push. */
class Inbox implements Recipient {
  got: Array<[string, string]> = [];
  push(id: string, raw: string) {
    this.got.push([id, raw]);
  }
}

async function router(mailbox = new MemoryMailbox()) {
  const logs: string[] = [];
  const r = new Router(mailbox, new MemoryBus(), createLogger("debug", (l) => logs.push(l)));
  await r.start();
  return { r, mailbox, logs };
}

const announced = () => new Promise((res) => setTimeout(res, 0));

Deno.test("router: accept stores the canonical envelope, then announces it to live recipients", async () => {
  const { r, mailbox } = await router();
  const inbox = new Inbox(), other = new Inbox();
  r.register(BOB, inbox);
  r.register(toBase64(alice.publicKey), other);
  const e = envelope();
  assert.equal(await r.accept(e), "stored");
  await announced();
  assert.deepEqual(inbox.got, [[e.id, serializeEnvelope(e)]]);
  assert.deepEqual(other.got, [], "only the envelope's mailbox is pushed to");
  const [held] = await mailbox.pending(BOB);
  assert.equal(held.raw, serializeEnvelope(e));
});

Deno.test("router: a duplicate counts as accepted and is announced again", async () => {
  const { r } = await router();
  const inbox = new Inbox();
  r.register(BOB, inbox);
  const e = envelope();
  await r.accept(e);
  assert.equal(await r.accept(e), "duplicate");
  await announced();
  assert.deepEqual(inbox.got.map(([id]) => id), [e.id, e.id]);
});

Deno.test("router: a full mailbox refuses and announces nothing", async () => {
  const { r } = await router(new MemoryMailbox({ maxCount: 1, maxBytes: 1 << 20, maxAgeMs: 1e9 }));
  const inbox = new Inbox();
  r.register(BOB, inbox);
  await r.accept(envelope("1"));
  await assert.rejects(r.accept(envelope("2")), MailboxFullError);
  await announced();
  assert.equal(inbox.got.length, 1);
});

Deno.test("router: a failed publish is unavailable, and the envelope stays stored for the next connect", async () => {
  const { r, mailbox } = await router();
  r.bus.publish = () => Promise.reject(new Error("broker gone"));
  const e = envelope();
  await assert.rejects(r.accept(e), (err: unknown) => {
    assert.ok(err instanceof BackendUnavailableError);
    assert.match(err.message, /bus publish failed: broker gone/);
    return true;
  });
  assert.deepEqual((await mailbox.pending(BOB)).map((x) => x.id), [e.id]);
});

Deno.test("router: unregister stops pushes; liveMailboxes counts mailboxes, not sockets", async () => {
  const { r } = await router();
  const a = new Inbox(), b = new Inbox();
  r.register(BOB, a);
  r.register(BOB, b);
  assert.equal(r.liveMailboxes, 1);
  r.unregister(BOB, a);
  await r.accept(envelope());
  await announced();
  assert.deepEqual([a.got.length, b.got.length], [0, 1]);
  r.unregister(BOB, b);
  r.unregister(BOB, b); // twice is harmless
  assert.equal(r.liveMailboxes, 0);
});

Deno.test("router: an announcement without an id is dropped with a warning, not pushed", async () => {
  const { r, logs } = await router();
  const inbox = new Inbox();
  r.register(BOB, inbox);
  await r.bus.publish(BOB, '{"v":1,"nonce":"x"}');
  await announced();
  assert.deepEqual(inbox.got, []);
  assert.ok(logs.some((l) => l.includes("announcement without an id")));
});

Deno.test("idOfRaw reads the id of canonical envelope JSON", () => {
  const e = envelope();
  assert.equal(idOfRaw(serializeEnvelope(e)), e.id);
  assert.equal(idOfRaw("{}"), undefined);
  assert.equal(idOfRaw('{"id":"unterminated'), undefined);
});
