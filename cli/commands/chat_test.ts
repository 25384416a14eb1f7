/**
 * `chat` in-process with piped stdin, against relays that are not there or that refuse for now.
 * (The reconnecting chat against real relay subprocesses is in tests/reconnect_test.ts.)
 */
import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { closedPort, startFakeRelay } from "../../tests/fake_relay.ts";
import { runInProcess, withHome } from "../testing.ts";

async function historyOf(home: string, contact: string) {
  const h = await runInProcess(["history", contact, "--json"], { home });
  return h.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

Deno.test("chat with the relay down: what is typed is queued in history, and leaving says so", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    await runInProcess(["add-contact", "bob", toBase64(generateKeyPair().publicKey)], { home });
    const url = `ws://127.0.0.1:${closedPort()}/ws`;
    const r = await runInProcess(["chat", url, "bob", "--timeout", "1"], {
      home,
      stdin: "first\nsecond\n",
    });
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /cannot reach relay .*connection refused; what you type is queued/);
    assert.match(r.stderr, /… queued \(not connected\): first/);
    assert.match(r.stderr, /… still queued: first\n.*… still queued: second/);
    assert.match(
      r.stderr,
      /error: cannot reach relay .*: connection refused; 2 messages stay queued and are sent by the next `send` or `chat` to bob\n$/,
    );
    const h = await historyOf(home, "bob");
    assert.deepEqual(h.map((m) => [m.text, m.state]), [["first", "sending"], [
      "second",
      "sending",
    ]]);
  });
});

Deno.test("chat: a message refused as unavailable stays queued, is sent again, and is accepted", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    await runInProcess(["add-contact", "bob", toBase64(generateKeyPair().publicKey)], { home });
    await using fake = startFakeRelay((_, n) => n === 0 ? { code: "unavailable" } : "accepted");
    const r = await runInProcess(["chat", fake.url, "bob"], { home, stdin: "try me\n" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /… not accepted yet: try me: relay refused the message: unavailable: .*; trying again in 1 s/,
    );
    assert.match(r.stderr, /✓ accepted: try me/);
    assert.doesNotMatch(r.stderr, /✗|failed/);
    // Refused, then sent again under its id (to bob's request inbox: he never read there).
    assert.equal(fake.sends.length, 3);
    assert.equal(fake.sends[0].id, fake.sends[1].id, "sent again under its id");
    const h = await historyOf(home, "bob");
    assert.deepEqual(h.map((m) => m.state), ["accepted"]);
  });
});
