import assert from "node:assert/strict";
import { type Envelope, generateKeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { Inbox, type InboxOutcome, ReceiptBatch } from "./inbox.ts";
import { RelayError } from "./errors.ts";
import { v1Sealer } from "./sealing.ts";
import { ProfileStore } from "./store/profile_store.ts";

function setup() {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  const store = new ProfileStore({ home, profile: "default" });
  const me = generateKeyPair();
  const bob = generateKeyPair();
  const mallory = generateKeyPair();
  store.saveIdentity(me);
  store.saveContacts([{ name: "bob", key: toBase64(bob.publicKey) }]);
  const inbox = new Inbox({ store, sealer: v1Sealer(me), now: () => now });
  const handle = (env: Envelope): Promise<InboxOutcome> => inbox.receive(env);
  return { home, store, me, bob, mallory, inbox, handle, myKey: toBase64(me.publicKey) };
}

const now = new Date("2025-01-01T00:00:00Z");

Deno.test("Inbox: a message is stored once, a repeat is a duplicate", async () => {
  const s = setup();
  try {
    const env = sealEnvelope({ v: 1, kind: "message", text: "hi", sent_at: "x" }, s.bob, s.myKey);
    const o1 = await s.handle(env);
    assert.equal(o1.kind, "message");
    assert.ok(o1.kind === "message" && !o1.duplicate && o1.message.contact === "bob");
    const o2 = await s.handle(env);
    assert.ok(o2.kind === "message" && o2.duplicate);
    const lines = Deno.readTextFileSync(s.store.historyPath(toBase64(s.bob.publicKey))).trim()
      .split("\n");
    assert.equal(lines.length, 1);
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});

Deno.test("Inbox: a box that does not open with the claimed sender is rejected, not stored", async () => {
  const s = setup();
  try {
    // Mallory seals with her key but claims to be bob.
    const env = sealEnvelope(
      { v: 1, kind: "message", text: "I am bob", sent_at: "x" },
      s.mallory,
      s.myKey,
    );
    const forged = { ...env, from: toBase64(s.bob.publicKey) };
    const o = await s.handle(forged);
    assert.equal(o.kind, "rejected");
    assert.ok(o.kind === "rejected" && /does not open/.test(o.reason));
    assert.deepEqual(s.store.history(toBase64(s.bob.publicKey)).entries(), []);
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});

Deno.test("Inbox: a receipt marks only my messages to that sender as delivered", async () => {
  const s = setup();
  try {
    const bobKey = toBase64(s.bob.publicKey);
    const malloryKey = toBase64(s.mallory.publicKey);
    s.store.history(bobKey).appendMessage({
      id: "tobob001",
      dir: "out",
      text: "hey",
      sent_at: "a",
      at: "a",
    });
    s.store.history(bobKey).appendState("tobob001", "accepted", "a");
    // Mallory claims to have received it: ignored, it is not in her conversation.
    const fake = sealEnvelope(
      { v: 1, kind: "receipt", status: "delivered", ids: ["tobob001"], sent_at: "b" },
      s.mallory,
      s.myKey,
    );
    const o1 = await s.handle(fake);
    assert.ok(o1.kind === "receipt" && o1.delivered.length === 0);
    assert.equal(s.store.history(bobKey).get("tobob001")?.state, "accepted");
    assert.equal(
      s.store.peersWithHistory().includes(malloryKey),
      false,
      "no file for strangers' receipts",
    );

    const real = sealEnvelope(
      { v: 1, kind: "receipt", status: "delivered", ids: ["tobob001", "unknown1"], sent_at: "b" },
      s.bob,
      s.myKey,
    );
    const o2 = await s.handle(real);
    assert.ok(o2.kind === "receipt");
    assert.deepEqual(o2.delivered, [{ id: "tobob001", text: "hey" }]);
    assert.equal(s.store.history(bobKey).get("tobob001")?.state, "delivered");
    const again = await s.handle(real);
    assert.ok(again.kind === "receipt" && again.delivered.length === 0, "repeat writes nothing");
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});

Deno.test("Inbox: messages from strangers are kept under their key", async () => {
  const s = setup();
  try {
    const env = sealEnvelope(
      { v: 1, kind: "message", text: "hello?", sent_at: "x" },
      s.mallory,
      s.myKey,
    );
    const o = await s.handle(env);
    assert.ok(o.kind === "message" && o.message.contact === null);
    assert.deepEqual(
      s.store.history(toBase64(s.mallory.publicKey)).entries().map((e) => e.text),
      ["hello?"],
    );
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});

Deno.test("Inbox: envelopes arriving together are stored with one append per conversation, in order", async () => {
  const s = setup();
  try {
    const bobKey = toBase64(s.bob.publicKey);
    const fromBob = Array.from(
      { length: 50 },
      (_, i) =>
        sealEnvelope({ v: 1, kind: "message", text: `b${i}`, sent_at: "x" }, s.bob, s.myKey),
    );
    const fromMallory = sealEnvelope(
      { v: 1, kind: "message", text: "m", sent_at: "x" },
      s.mallory,
      s.myKey,
    );
    const forged = { ...fromBob[0], id: "forged-0001", from: toBase64(s.mallory.publicKey) };
    // Count the appends: each batch of a conversation is one write of many lines.
    const sizes: number[] = [];
    const log = s.store.history(bobKey);
    const appendBatch = log.appendBatch.bind(log);
    log.appendBatch = (records) => {
      sizes.push(records.length);
      return appendBatch(records);
    };
    const all = [...fromBob.slice(0, 25), fromMallory, forged, fromBob[3], ...fromBob.slice(25)];
    const outcomes = await Promise.all(all.map((e) => s.inbox.receive(e)));
    assert.deepEqual(
      outcomes.map((o) =>
        o.kind === "message" ? `${o.message.text}${o.duplicate ? "!" : ""}` : o.kind
      ),
      [
        ...fromBob.slice(0, 25).map((_, i) => `b${i}`),
        "m",
        "rejected",
        "b3!",
        ...fromBob.slice(25).map((_, i) => `b${25 + i}`),
      ],
    );
    assert.deepEqual(sizes, [51], "one append for bob's 51 records (one of them a duplicate)");
    assert.deepEqual(
      s.store.history(bobKey).entries().map((e) => e.text),
      fromBob.map((_, i) => `b${i}`),
    );
    const lines = Deno.readTextFileSync(s.store.historyPath(bobKey)).trimEnd().split("\n");
    assert.equal(lines.length, 50);
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});

Deno.test("Inbox: when history cannot be written the batch rejects, so nothing is acked", async () => {
  const s = setup();
  try {
    const bobKey = toBase64(s.bob.publicKey);
    s.store.history(bobKey); // opened (and cached) while the file could still be made
    Deno.mkdirSync(s.store.historyPath(bobKey)); // a directory where the file goes
    const env = sealEnvelope({ v: 1, kind: "message", text: "hi", sent_at: "x" }, s.bob, s.myKey);
    await assert.rejects(() => s.inbox.receive(env), /cannot write/);
    Deno.removeSync(s.store.historyPath(bobKey));
    const again = await s.inbox.receive(env); // the relay delivers it again: now it is stored
    assert.ok(again.kind === "message" && !again.duplicate);
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});

Deno.test("ReceiptBatch: one receipt per sender; refused-for-now receipts wait for the next flush", async () => {
  const s = setup();
  try {
    const receipts = new ReceiptBatch(v1Sealer(s.me), () => now);
    const bobKey = toBase64(s.bob.publicKey);
    const malloryKey = toBase64(s.mallory.publicKey);
    receipts.add(bobKey, "idbob0001");
    receipts.add(bobKey, "idbob0002");
    receipts.add(bobKey, "idbob0001");
    receipts.add(malloryKey, "idmal0001");
    const sent: Envelope[] = [];
    const failures = await receipts.flush((env) => {
      sent.push(env);
      return env.to === malloryKey
        ? Promise.reject(new RelayError("mailbox_full", "full", { fromRelay: true }))
        : Promise.resolve();
    });
    assert.deepEqual(sent.map((e) => e.to), [bobKey, malloryKey]);
    const opened = v1Sealer(s.bob).open(sent[0]);
    assert.ok(opened.ok && opened.value.payload.kind === "receipt");
    assert.deepEqual(opened.value.payload.ids, ["idbob0001", "idbob0002"], "each id once");
    assert.equal(failures.length, 1);
    assert.equal(receipts.isEmpty, false, "mallory's receipt waits for the next flush");
    const again: Envelope[] = [];
    assert.deepEqual(await receipts.flush((env) => (again.push(env), Promise.resolve())), []);
    assert.deepEqual(again.map((e) => e.to), [malloryKey]);
    assert.equal(receipts.isEmpty, true);

    // Refused for good (the rule of outbox.ts): dropped, not retried forever.
    receipts.add(bobKey, "idbob0003");
    await receipts.flush(() =>
      Promise.reject(new RelayError("bad_frame", "no", { fromRelay: true }))
    );
    assert.equal(receipts.isEmpty, true);
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});
