import assert from "node:assert/strict";
import {
  inboxId,
  keyPairFromSeed,
  openFrame,
  openMessage,
  pairMailbox,
  parseClientFrameV2,
  toBase64,
  verifyOpenFrame,
} from "./mod.ts";

const alice = keyPairFromSeed(new Uint8Array(32).fill(1));
const bob = keyPairFromSeed(new Uint8Array(32).fill(2));
const URL = "wss://relay.example/ws";
const CHALLENGE = toBase64(new Uint8Array(32).fill(4));

Deno.test("open: the signed bytes are the documented text", () => {
  assert.equal(
    new TextDecoder().decode(openMessage(URL, CHALLENGE, "pair", "KEY")),
    `chat-p2p-open/2\n${URL}\n${CHALLENGE}\npair\nKEY`,
  );
});

Deno.test("open: a signed frame parses and verifies to the mailbox id its key certifies", async () => {
  const inbox = await openFrame(URL, CHALLENGE, "inbox", alice);
  assert.deepEqual(parseClientFrameV2(JSON.stringify(inbox)), { ok: true, value: inbox });
  assert.equal(await verifyOpenFrame(inbox, URL, CHALLENGE), toBase64(inboxId(alice.publicKey)));
  const mailbox = pairMailbox(alice, bob.publicKey, "receive", 0);
  const pair = await openFrame(URL, CHALLENGE, "pair", mailbox.authKeyPair);
  assert.equal(await verifyOpenFrame(pair, URL, CHALLENGE), mailbox.idText);
});

Deno.test("open: another relay URL or scheme, challenge, kind or key does not verify", async () => {
  const f = await openFrame(URL, CHALLENGE, "inbox", alice);
  assert.equal(await verifyOpenFrame(f, "ws://relay.example/ws", CHALLENGE), undefined);
  assert.equal(await verifyOpenFrame(f, "wss://evil.example/ws", CHALLENGE), undefined);
  assert.equal(await verifyOpenFrame(f, URL, toBase64(new Uint8Array(32).fill(5))), undefined);
  assert.equal(await verifyOpenFrame({ ...f, kind: "pair" }, URL, CHALLENGE), undefined);
  assert.equal(
    await verifyOpenFrame({ ...f, key: toBase64(bob.publicKey) }, URL, CHALLENGE),
    undefined,
  );
});
