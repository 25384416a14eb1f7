import assert from "node:assert/strict";
import { generateKeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { contactNames, handleEnvelope } from "./inbox.ts";
import { ProfileStore } from "./store/profile_store.ts";

function setup() {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-test-" });
  const store = new ProfileStore({ home, profile: "default" });
  const me = generateKeyPair();
  const bob = generateKeyPair();
  const mallory = generateKeyPair();
  store.saveIdentity(me);
  store.saveContacts([{ name: "bob", key: toBase64(bob.publicKey) }]);
  const names = contactNames(store.loadContacts());
  return { home, store, me, bob, mallory, names, myKey: toBase64(me.publicKey) };
}

const now = new Date("2025-01-01T00:00:00Z");

Deno.test("handleEnvelope: a message is stored once, a repeat is a duplicate", () => {
  const s = setup();
  try {
    const env = sealEnvelope({ v: 1, kind: "message", text: "hi", sent_at: "x" }, s.bob, s.myKey);
    const o1 = handleEnvelope(s.store, s.me, s.names, env, now);
    assert.equal(o1.kind, "message");
    assert.ok(o1.kind === "message" && !o1.duplicate && o1.message.contact === "bob");
    const o2 = handleEnvelope(s.store, s.me, s.names, env, now);
    assert.ok(o2.kind === "message" && o2.duplicate);
    const lines = Deno.readTextFileSync(s.store.historyPath(toBase64(s.bob.publicKey))).trim()
      .split("\n");
    assert.equal(lines.length, 1);
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});

Deno.test("handleEnvelope: a box that does not open with the claimed sender is rejected, not stored", () => {
  const s = setup();
  try {
    // Mallory seals with her key but claims to be bob.
    const env = sealEnvelope(
      { v: 1, kind: "message", text: "I am bob", sent_at: "x" },
      s.mallory,
      s.myKey,
    );
    const forged = { ...env, from: toBase64(s.bob.publicKey) };
    const o = handleEnvelope(s.store, s.me, s.names, forged, now);
    assert.equal(o.kind, "rejected");
    assert.ok(o.kind === "rejected" && /does not open/.test(o.reason));
    assert.deepEqual(s.store.history(toBase64(s.bob.publicKey)).entries(), []);
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});

Deno.test("handleEnvelope: a receipt marks only my messages to that sender as delivered", () => {
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
    const o1 = handleEnvelope(s.store, s.me, s.names, fake, now);
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
    const o2 = handleEnvelope(s.store, s.me, s.names, real, now);
    assert.ok(o2.kind === "receipt");
    assert.deepEqual(o2.delivered, [{ id: "tobob001", text: "hey" }]);
    assert.equal(s.store.history(bobKey).get("tobob001")?.state, "delivered");
    const again = handleEnvelope(s.store, s.me, s.names, real, now);
    assert.ok(again.kind === "receipt" && again.delivered.length === 0, "repeat writes nothing");
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});

Deno.test("handleEnvelope: messages from strangers are kept under their key", () => {
  const s = setup();
  try {
    const env = sealEnvelope(
      { v: 1, kind: "message", text: "hello?", sent_at: "x" },
      s.mallory,
      s.myKey,
    );
    const o = handleEnvelope(s.store, s.me, s.names, env, now);
    assert.ok(o.kind === "message" && o.message.contact === null);
    assert.deepEqual(
      s.store.history(toBase64(s.mallory.publicKey)).entries().map((e) => e.text),
      ["hello?"],
    );
  } finally {
    Deno.removeSync(s.home, { recursive: true });
  }
});
