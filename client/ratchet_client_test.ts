/**
 * The Double Ratchet as the client uses it: messages out of order or lost within the skip bound,
 * a gap beyond it, and what a thief of a profile (identity key and the sessions file written
 * after some messages) can open of envelopes captured earlier.
 */
import assert from "node:assert/strict";
import {
  acceptSession,
  decodeHeader,
  type EnvelopeV2,
  generateKeyPair,
  MAX_SKIP,
  openPairEnvelope,
  peerDecrypt,
  type PeerSessions,
  toBase64,
} from "@chat-p2p/protocol";
import { deadline, delay } from "@chat-p2p/protocol/async";
import { startFakeRelay } from "../tests/fake_relay.ts";
import { contactProfiles, type Made, TestPeer } from "../tests/v2_peer.ts";
import { ChatClient } from "./client.ts";
import { Inbox } from "./inbox.ts";
import { Mailboxes } from "./mailboxes.ts";
import { profileSealer } from "./sealing.ts";
import { ProfileStore } from "./store/profile_store.ts";
import { RequestStore } from "./store/requests.ts";
import { SessionStore } from "./store/sessions.ts";

async function me(home: string, peer: TestPeer) {
  const store = new ProfileStore({ home, profile: "me" });
  const kp = generateKeyPair();
  store.saveIdentity(kp);
  store.saveContacts([{ name: "peer", key: peer.key }]);
  const sealer = profileSealer(store, kp);
  await sealer.mailboxes.readMailbox(peer.key);
  const inbox = new Inbox({ store, sealer, requests: new RequestStore(store) });
  return { store, kp, key: toBase64(kp.publicKey), inbox };
}

Deno.test("client ratchet: out of order and lost messages within the skip bound open, once each; a gap beyond it is reported", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-p2p-ratchet-" });
  await using peer = await TestPeer.create();
  try {
    const m = await me(home, peer);
    const sent: Made[] = [];
    for (let i = 0; i < 40; i++) sent.push(await peer.message(m.key, `m${i}`));
    const text = async (e: EnvelopeV2) => {
      const o = await m.inbox.receive(e);
      return o.kind === "message" ? (o.duplicate ? "dup" : o.message.text) : o.kind;
    };
    // 0-9 in reverse order, then 20-39 (10-19 lost so far), then the lost ones, late.
    const order = [...sent.slice(0, 10).reverse(), ...sent.slice(20), ...sent.slice(10, 20)];
    const got = [];
    for (const s of order) got.push(await text(s.envelope));
    assert.deepEqual(got, order.map((s) => `m${sent.indexOf(s)}`));
    assert.deepEqual(
      m.store.history(peer.key).entries().map((e) => e.text).sort(),
      sent.map((_, i) => `m${i}`).sort(),
    );
    // Every one again: each key is used up, nothing is shown twice.
    for (const s of sent) assert.equal(await text(s.envelope), "dup");

    // More than MAX_SKIP messages lost in one chain: the one after the gap cannot open (the
    // keys in between would have to be derived and kept); it is reported, never shown.
    for (let i = 0; i < MAX_SKIP + 1; i++) await peer.message(m.key, `lost ${i}`);
    const after = await peer.message(m.key, "after a too long gap");
    const o = await m.inbox.receive(after.envelope);
    assert.ok(o.kind === "rejected" && /missing/.test(o.reason), JSON.stringify(o));
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("client ratchet: a stolen identity key and sessions file open no envelope captured after the first reply", async () => {
  await using relay = startFakeRelay();
  const home = await Deno.makeTempDir({ prefix: "chat-p2p-steal-" });
  const { alice, bob } = contactProfiles(home);
  const opts = { timeoutMs: 5000, receiptDelayMs: [5, 10] as const };
  const a = new ChatClient(alice.store, alice.kp, opts);
  const b = new ChatClient(bob.store, bob.kp, opts);
  const got: string[] = [];
  const ready = Promise.withResolvers<void>();
  b.on("message", (e) => {
    got.push(e.message.text);
    if (got.length === 6) ready.resolve();
  });
  const aGot = Promise.withResolvers<void>();
  a.on("message", () => aGot.resolve());
  const synced = (c: ChatClient) => new Promise<void>((r) => c.on("synced", () => r()));
  try {
    const bs = synced(b), as = synced(a);
    await Promise.all([a.connect(relay.url), b.connect(relay.url)]);
    await Promise.all([bs, as]);
    // The first flight, a reply (the ratchet steps), then more: the envelopes are captured.
    for (const t of ["first 1", "first 2"]) await deadline(a.outcome(a.send("bob", t)), 5000);
    await delay(200);
    await deadline(b.outcome(b.send("alice", "reply")), 5000);
    await deadline(aGot.promise, 5000);
    for (const t of ["later 1", "later 2", "later 3", "later 4"]) {
      await deadline(a.outcome(a.send("bob", t)), 5000);
    }
    await deadline(ready.promise, 5000);
    const captured = relay.sends;

    // The thief copies bob's identity.json and sessions file now, after all of that.
    const stolen: PeerSessions = JSON.parse(
      Deno.readTextFileSync(new SessionStore(bob.store, bob.key).path(alice.key)),
    );
    const thief = await new ProfileStore({ home, profile: "bob" }).loadIdentity();
    const pair = await new Mailboxes(bob.store, thief).readMailbox(alice.key);
    const opened: string[] = [];
    for (const e of captured) {
      const inner = openPairEnvelope(pair, e); // the outer layer: the identity key suffices
      if (!inner) continue;
      const h = decodeHeader(inner)!;
      const withState = peerDecrypt(stolen, inner, thief);
      // A session started afresh from an init message, as the responder would.
      const fresh = h.type === "init" ? acceptSession(thief, fromB64(alice.key), inner) : undefined;
      for (const r of [withState, fresh]) {
        if (r?.ok) opened.push(new TextDecoder().decode(r.plaintext).match(/"text":"([^"]*)"/)![1]);
      }
    }
    // As docs/PROTOCOL.md says: the first flight (before the reply) is not forward-secret
    // against a stolen identity key; nothing after the reply opens.
    assert.deepEqual([...new Set(opened)].sort(), ["first 1", "first 2"]);
    assert.ok(got.includes("later 4"), "bob did read them");
  } finally {
    await a.close({ timeoutMs: 1000 });
    await b.close({ timeoutMs: 1000 });
    await Deno.remove(home, { recursive: true });
  }
});

function fromB64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}
