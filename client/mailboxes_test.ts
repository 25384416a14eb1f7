import assert from "node:assert/strict";
import { generateKeyPair, pairMailboxAsync, toBase64 } from "@chat-p2p/protocol";
import { ClientError } from "./errors.ts";
import { Mailboxes } from "./mailboxes.ts";
import { openStore } from "./store/profile_store.ts";

function tempStore(home: string) {
  return openStore((n) => (n === "HOME" ? home : undefined), "default", () => {});
}

Deno.test("mailboxes: the pair derived once serves sends, reads and lookups, and survives a restart", async () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-mailboxes-" });
  try {
    const me = generateKeyPair();
    const peer = generateKeyPair();
    const peerKey = toBase64(peer.publicKey);
    const store = tempStore(home);
    store.saveIdentity(me);
    const boxes = new Mailboxes(store, me);
    const send = await boxes.sendMailbox(peerKey);
    const expected = await pairMailboxAsync(me, peer.publicKey, "send", 0);
    assert.equal(send.idText, expected.idText);
    assert.deepEqual(send.boxKey, expected.boxKey);
    assert.equal(await boxes.sendMailbox(peerKey), send, "decoded once per peer");
    const read = await boxes.readMailbox(peerKey);
    assert.deepEqual(boxes.lookup(read.idText), {
      kind: "pair",
      idText: read.idText,
      peer: peerKey,
    });
    assert.equal(boxes.readIdOf(peerKey), read.idText);
    assert.deepEqual(boxes.lookup(boxes.inbox), { kind: "inbox", idText: boxes.inbox });
    assert.equal(boxes.lookup(expected.idText), undefined, "the mailbox I send to is not read");
    const again = new Mailboxes(tempStore(home), me);
    assert.equal((await again.sendMailbox(peerKey)).idText, send.idText);
    assert.equal(again.lookup(read.idText)?.kind, "pair");
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("mailboxes: a key that cannot be a peer is unknown_contact", async () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-mailboxes-" });
  try {
    const me = generateKeyPair();
    const store = tempStore(home);
    store.saveIdentity(me);
    const boxes = new Mailboxes(store, me);
    const bad = toBase64(new Uint8Array(32)); // the identity point: no shared secret
    for (const p of [boxes.sendMailbox(bad), boxes.sendMailboxWithAuth(bad)]) {
      await assert.rejects(p, (e) => e instanceof ClientError && e.code === "unknown_contact");
    }
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
