/**
 * Attack tests for the relay-URL binding of `open` (issue 10, defect 1): a signature a client made
 * for one relay must never open its mailbox at another, whatever headers the connection sends.
 * Each passes only when the relay refuses.
 */
import assert from "node:assert/strict";
import { openFrame } from "@chat-p2p/protocol";
import { pairBox, RawClient, type TestMailbox } from "./raw_client.ts";
import { RawWebSocket } from "./raw_socket.ts";
import { startTestRelay } from "./relay_harness.ts";

/**
 * What a malicious relay does with an open it received: connects to the real relay with
 * `headers`, and answers the real relay's challenge with the victim's signature over
 * `signedUrl` (the victim signs whatever challenge it is shown, for the URL it connected to).
 */
async function replayOpen(
  port: number,
  box: TestMailbox,
  signedUrl: string,
  headers: Record<string, string>,
) {
  await using ws = await RawWebSocket.open(port, headers);
  assert.match(ws.status, /^HTTP\/1\.1 101/);
  const hello = (await ws.next())!;
  assert.equal(hello.type, "hello");
  await ws.send(await openFrame(signedUrl, hello.challenge, box.kind, box.auth));
  return await ws.next();
}

Deno.test("attack: an open signed for another relay is refused even when Host names that relay", async () => {
  await using relay = await startTestRelay();
  const box = pairBox();
  const answer = await replayOpen(relay.port, box, "ws://evil.example/ws", {
    host: "evil.example",
  });
  assert.equal(answer?.code, "auth_failed", JSON.stringify(answer));
  assert.equal(answer.mailbox, box.id);
  assert.match(answer.message, /RELAY_PUBLIC_URL/, "the message says what the operator sets");
});

Deno.test("attack: the scheme is bound: a wss:// signature does not open over ws://", async () => {
  await using relay = await startTestRelay();
  const answer = await replayOpen(relay.port, pairBox(), `wss://127.0.0.1:${relay.port}/ws`, {});
  assert.equal(answer?.code, "auth_failed", JSON.stringify(answer));
});

Deno.test("attack: with RELAY_PUBLIC_URL set, only those URLs open, not the Host's", async () => {
  await using relay = await startTestRelay({ RELAY_PUBLIC_URL: "wss://chat.example/ws" });
  for (const url of ["ws://chat.example/ws", `ws://127.0.0.1:${relay.port}/ws`]) {
    const host = new URL(url).host;
    const answer = await replayOpen(relay.port, pairBox(), url, { host });
    assert.equal(answer?.code, "auth_failed", `${url}: ${JSON.stringify(answer)}`);
  }
  const box = pairBox();
  const answer = await replayOpen(relay.port, box, "wss://chat.example/ws", {
    host: "chat.example",
  });
  assert.deepEqual(answer, { v: 2, type: "opened", mailbox: box.id }, "the public URL works");
});

Deno.test("attack: an open captured on one socket does not open on another (fresh challenge)", async () => {
  await using relay = await startTestRelay();
  const box = pairBox();
  await using first = await RawClient.connect(relay.url);
  await using second = await RawClient.connect(relay.url);
  // The open first's client made, replayed on second: its challenge is first's.
  await second.open(box, undefined, first.challenge);
  const refused = await second.next("error");
  assert.deepEqual([refused.code, refused.mailbox], ["auth_failed", box.id]);
  assert.equal(second.closeCode, undefined, "the socket stays for its other mailboxes");
  await second.openAndSync(box); // its own challenge works
});

Deno.test("open: without RELAY_PUBLIC_URL the relay's own loopback URLs work", async () => {
  await using relay = await startTestRelay();
  for (const host of ["127.0.0.1", "localhost"]) {
    await using c = await RawClient.reader(`ws://${host}:${relay.port}/ws`, pairBox());
    assert.ok(c.challenge);
  }
});
