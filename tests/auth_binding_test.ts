/**
 * Attack tests for the relay-URL binding of `auth` (issue 10, defect 1): a signature a client made
 * for one relay must never log it in at another, whatever headers the connection sends. Each
 * passes only when the relay refuses.
 */
import assert from "node:assert/strict";
import { authMessage, generateKeyPair, type KeyPair, sign, toBase64 } from "@chat-p2p/protocol";
import { RawClient } from "./raw_client.ts";
import { RawWebSocket } from "./raw_socket.ts";
import { startTestRelay } from "./relay_harness.ts";

/**
 * What a malicious relay does with a login it received: opens a socket to the real relay with
 * `headers`, and answers the real relay's challenge with the victim's signature over
 * `signedUrl` (the victim signs whatever challenge it is shown, for the URL it connected to).
 */
async function replayLogin(
  port: number,
  victim: KeyPair,
  signedUrl: string,
  headers: Record<string, string>,
) {
  await using ws = await RawWebSocket.open(port, headers);
  assert.match(ws.status, /^HTTP\/1\.1 101/);
  const challenge = (await ws.next())!.challenge;
  const key = toBase64(victim.publicKey);
  await ws.send({
    v: 1,
    type: "auth",
    key,
    relay: signedUrl,
    signature: toBase64(sign(authMessage(signedUrl, challenge, key), victim.secretKey)),
  });
  const answer = await ws.next();
  await ws.next(); // the close
  return { answer, closeCode: ws.closeCode };
}

Deno.test("attack: a login signed for another relay is refused even when Host names that relay", async () => {
  await using relay = await startTestRelay();
  const { answer, closeCode } = await replayLogin(
    relay.port,
    generateKeyPair(),
    "ws://evil.example/ws",
    { host: "evil.example" },
  );
  assert.equal(answer?.code, "auth_failed", JSON.stringify(answer));
  assert.match(answer.message, /RELAY_PUBLIC_URL/, "the message says what the operator sets");
  assert.equal(closeCode, 1008);
});

Deno.test("attack: the scheme is bound: a wss:// signature does not log in over ws://", async () => {
  await using relay = await startTestRelay();
  const { answer } = await replayLogin(
    relay.port,
    generateKeyPair(),
    `wss://127.0.0.1:${relay.port}/ws`,
    {},
  );
  assert.equal(answer?.code, "auth_failed", JSON.stringify(answer));
});

Deno.test("attack: with RELAY_PUBLIC_URL set, only those URLs log in, not the Host's", async () => {
  await using relay = await startTestRelay({ RELAY_PUBLIC_URL: "wss://chat.example/ws" });
  for (const url of ["ws://chat.example/ws", `ws://127.0.0.1:${relay.port}/ws`]) {
    const host = new URL(url).host;
    const { answer } = await replayLogin(relay.port, generateKeyPair(), url, { host });
    assert.equal(answer?.code, "auth_failed", `${url}: ${JSON.stringify(answer)}`);
  }
  const { answer } = await replayLogin(
    relay.port,
    generateKeyPair(),
    "wss://chat.example/ws",
    { host: "chat.example" },
  );
  assert.equal(answer?.type, "ready", "the configured public URL still works");
});

Deno.test("auth: without RELAY_PUBLIC_URL the relay's own loopback URLs log in", async () => {
  await using relay = await startTestRelay();
  for (const host of ["127.0.0.1", "localhost"]) {
    await using c = await RawClient.authed(`ws://${host}:${relay.port}/ws`, generateKeyPair());
    assert.ok(c.challenge);
  }
});
