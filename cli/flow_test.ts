/**
 * The commands end to end against a protocol-v2 relay (tests/fake_relay.ts in this process: the
 * real one runs in tests/), run in-process with captured output under temporary HOMEs.
 */
import assert from "node:assert/strict";
import { generateKeyPair, requestEnvelope, toBase64 } from "@chat-p2p/protocol";
import { keyFingerprint } from "@chat-p2p/client";
import { startFakeRelay } from "../tests/fake_relay.ts";
import { TestPeer } from "../tests/v2_peer.ts";
import { runInProcess, tempHome } from "./testing.ts";

Deno.test("first contact: a request, accept, receipts, history, piped chat, a forged request, block", async () => {
  await using relay = startFakeRelay();
  const home = tempHome();
  const alice = { home, profile: "alice" };
  const bob = { home, profile: "bob" };
  const run = async (args: string[], who: typeof alice, stdin?: string) => {
    const r = await runInProcess(args, { ...who, stdin });
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  try {
    const aKey = (await run(["init"], alice)).stdout.trim();
    const bKey = (await run(["init"], bob)).stdout.trim();
    await run(["add-contact", "bob", bKey], alice);

    // Alice writes before Bob ever read from this relay: it goes to his request inbox.
    const id1 = (await run(["send", relay.url, "bob", "hello", "bob"], alice)).stdout.trim();
    assert.match(id1, /^[0-9a-f]{32}$/);
    assert.equal(
      JSON.parse((await run(["history", "bob", "--json"], alice)).stdout).state,
      "accepted",
    );

    // Bob does not know Alice: a request, never printed as a message, kept until he decides.
    const fp = keyFingerprint(aKey);
    const sync1 = await run(["sync", relay.url, "--json"], bob);
    assert.equal(sync1.stdout, "");
    assert.match(sync1.stderr, new RegExp(`request from ${fp}: hello bob`));
    const req = JSON.parse((await run(["requests", "--json"], bob)).stdout);
    assert.deepEqual([
      req.public_key,
      req.fingerprint,
      req.messages.map((m: { id: string; text: string }) => [m.id, m.text]),
    ], [
      aKey,
      fp,
      [[id1, "hello bob"]],
    ]);
    assert.equal((await run(["sync", relay.url, "--json"], bob)).stderr.includes("request"), false);
    assert.equal((await runInProcess(["history", "alice"], bob)).code, 1, "no contact yet");
    assert.match((await run(["chats"], bob)).stderr, /1 first-contact request waiting/);

    // Accepted: a contact, the message in history, a receipt on its way.
    const accepted = await run(
      ["accept", fp.replaceAll(" ", ""), "alice", "--relay", relay.url],
      bob,
    );
    assert.match(accepted.stderr, /accepted alice .*1 message moved/);
    assert.match((await run(["history", "alice"], bob)).stdout, /alice → you: hello bob/);
    assert.equal((await run(["requests"], bob)).stdout, "");
    const sync2 = await run(["sync", relay.url], alice);
    assert.match(sync2.stderr, /✓✓ delivered to bob: hello bob/);

    // Piped chat: each line sent, ends at EOF after all are accepted; /quit stops reading.
    const chatA = await run(
      ["chat", relay.url, "bob"],
      alice,
      "line one\n\nline two\n/quit\nnot sent\n",
    );
    assert.equal(chatA.stdout, "");
    const chatB = await run(["chat", relay.url, "alice"], bob, "reply\n");
    const lines = chatB.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 2, chatB.stdout);
    assert.match(lines[0], /^\[[\d:\- ]+\] alice: line one$/);
    assert.match(lines[1], /^\[[\d:\- ]+\] alice: line two$/);
    const aliceSide = (await run(["sync", relay.url, "--json"], alice)).stdout.trim();
    assert.equal(JSON.parse(aliceSide).text, "reply");
    const states = (await run(["history", "bob", "--json"], alice)).stdout.trim().split("\n")
      .map((l) => JSON.parse(l)).map((o) => [o.dir, o.text, o.state]);
    assert.deepEqual(states, [
      ["out", "hello bob", "delivered"],
      ["out", "line one", "delivered"],
      ["out", "line two", "delivered"],
      ["in", "reply", "received"],
    ]);

    // Mallory puts Alice's key in a sealed request: it does not open as Alice's, never shown.
    await using mallory = await TestPeer.create();
    const m = await mallory.message(bKey, "it is me, alice", { via: "request" });
    relay.inject(requestEnvelope(
      Uint8Array.from(atob(bKey), (c) => c.charCodeAt(0)),
      Uint8Array.from(atob(aKey), (c) => c.charCodeAt(0)),
      m.wire,
    ));
    const sync3 = await run(["sync", relay.url, "--json"], bob);
    assert.equal(sync3.stdout, "");
    assert.match(sync3.stderr, /rejected message [\w-]+: a forged request/);
    assert.doesNotMatch(sync3.stderr, new RegExp(fp), "the claimed sender is never named");
    assert.doesNotMatch((await run(["sync", relay.url], bob)).stderr, /rejected/, "acked");

    // Mallory as herself: a request; blocked, and what she sends later is dropped unread.
    relay.inject((await mallory.message(bKey, "buy my stuff", { via: "request" })).envelope);
    assert.match((await run(["sync", relay.url], bob)).stderr, /request from .*buy my stuff/);
    await run(["block", keyFingerprint(mallory.key)], bob);
    assert.equal((await run(["requests", "--json"], bob)).stdout, "");
    relay.inject((await mallory.message(bKey, "again", { via: "request" })).envelope);
    const sync4 = await run(["sync", relay.url, "--json"], bob);
    assert.equal(sync4.stdout, "");
    assert.doesNotMatch(sync4.stderr, /again|request/);
    assert.equal((await run(["requests", "--json"], bob)).stdout, "");
    assert.deepEqual([...relay.mailboxes.values()].flat(), [], "everything was acked");
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});

Deno.test("send: relay unreachable exits 1 with a clear message", async () => {
  const home = tempHome();
  try {
    await runInProcess(["init"], { home });
    await runInProcess(["add-contact", "bob", toBase64(generateKeyPair().publicKey)], { home });
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const r = await runInProcess(["send", `ws://127.0.0.1:${port}/ws`, "bob", "hi"], { home });
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `error: cannot reach relay ws://127.0.0.1:${port}/ws: connection refused\n`,
    );
    assert.equal(r.stdout, "");
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
