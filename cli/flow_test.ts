/**
 * The commands end to end against the real relay (relay/main.ts in a subprocess), run
 * in-process with captured output under temporary HOMEs.
 */
import assert from "node:assert/strict";
import { fingerprint, generateKeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { RelayProcess } from "../tests/relay_process.ts";
import { connectRelay } from "@chat-p2p/client";
import { runInProcess, tempHome } from "./testing.ts";

Deno.test("send while offline, sync, receipts, history, piped chat, forged box", async () => {
  const relay = await RelayProcess.start();
  const home = tempHome();
  const alice = { home, profile: "alice" };
  const bob = { home, profile: "bob" };
  try {
    const aKey = (await runInProcess(["init"], alice)).stdout.trim();
    const bKey = (await runInProcess(["init"], bob)).stdout.trim();
    assert.equal((await runInProcess(["add-contact", "bob", bKey], alice)).code, 0);

    // Alice writes while Bob is offline.
    const s1 = await runInProcess(["send", relay.url, "bob", "hello", "bob"], alice);
    assert.equal(s1.code, 0, s1.stderr);
    const id1 = s1.stdout.trim();
    assert.match(id1, /^[A-Za-z0-9_-]{8,64}$/);
    const h1 = JSON.parse((await runInProcess(["history", "bob", "--json"], alice)).stdout);
    assert.equal(h1.state, "accepted");

    // Bob syncs before adding Alice: kept under her key, shown with her fingerprint.
    const sync1 = await runInProcess(["sync", relay.url, "--json"], bob);
    assert.equal(sync1.code, 0, sync1.stderr);
    const m = JSON.parse(sync1.stdout.trim());
    assert.deepEqual(
      { id: m.id, from: m.from, contact: m.contact, text: m.text },
      { id: id1, from: aKey, contact: null, text: "hello bob" },
    );
    assert.equal(m.fingerprint, fingerprint(Uint8Array.from(atob(aKey), (c) => c.charCodeAt(0))));
    // Acked: a second sync has nothing.
    assert.equal((await runInProcess(["sync", relay.url, "--json"], bob)).stdout, "");
    // Adding her later shows the same history under her name.
    await runInProcess(["add-contact", "alice", aKey], bob);
    const bh = await runInProcess(["history", "alice"], bob);
    assert.match(bh.stdout, /alice → you: hello bob/);

    // Alice gets the receipt: delivered.
    const sync2 = await runInProcess(["sync", relay.url], alice);
    assert.equal(sync2.code, 0, sync2.stderr);
    assert.equal(sync2.stdout, "");
    assert.match(sync2.stderr, /✓✓ delivered to bob: hello bob/);
    assert.equal(
      JSON.parse((await runInProcess(["history", "bob", "--json"], alice)).stdout).state,
      "delivered",
    );

    // Piped chat: each line sent, ends at EOF after all are accepted; /quit stops reading.
    const chatA = await runInProcess(["chat", relay.url, "bob"], {
      ...alice,
      stdin: "line one\n\nline two\n/quit\nnot sent\n",
    });
    assert.equal(chatA.code, 0, chatA.stderr);
    assert.equal(chatA.stdout, "");
    const chatB = await runInProcess(["chat", relay.url, "alice"], { ...bob, stdin: "reply\n" });
    assert.equal(chatB.code, 0, chatB.stderr);
    const lines = chatB.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0], /^\[[\d:\- ]+\] alice: line one$/);
    assert.match(lines[1], /^\[[\d:\- ]+\] alice: line two$/);
    const aliceSide = (await runInProcess(["sync", relay.url, "--json"], alice)).stdout.trim();
    assert.equal(JSON.parse(aliceSide).text, "reply");
    const states = (await runInProcess(["history", "bob", "--json"], alice)).stdout.trim().split(
      "\n",
    )
      .map((l) => JSON.parse(l)).map((o) => [o.dir, o.text, o.state]);
    assert.deepEqual(states, [
      ["out", "hello bob", "delivered"],
      ["out", "line one", "delivered"],
      ["out", "line two", "delivered"],
      ["in", "reply", "received"],
    ]);

    // Mallory sends a box that does not open with her key: reported, acked, never stored.
    const mallory = generateKeyPair();
    const session = await connectRelay(relay.url, mallory, { timeoutMs: 5000 });
    try {
      const real = sealEnvelope(
        { v: 1, kind: "message", text: "trust me", sent_at: "t" },
        generateKeyPair(),
        bKey,
      );
      await session.send({ ...real, from: toBase64(mallory.publicKey) });
    } finally {
      await session.close();
    }
    const sync3 = await runInProcess(["sync", relay.url, "--json"], bob);
    assert.equal(sync3.code, 0, sync3.stderr);
    assert.equal(sync3.stdout, "");
    assert.match(
      sync3.stderr,
      new RegExp(
        `rejected message [\\w-]+ claiming to be from ${fingerprint(mallory.publicKey)}: `,
      ),
    );
    const sync4 = await runInProcess(["sync", relay.url, "--json"], bob);
    assert.doesNotMatch(sync4.stderr, /rejected/, "acked, so it does not come back");
  } finally {
    await relay.stop();
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
