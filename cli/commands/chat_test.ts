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
    assert.equal(r.code, 3, `exit 3: queued; ${r.stderr}`);
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
    assert.equal(fake.sends.length, 2);
    assert.equal(fake.sends[0].id, fake.sends[1].id, "sent again under its id");
    const h = await historyOf(home, "bob");
    assert.deepEqual(h.map((m) => [m.id, m.state]), [[fake.sends[0].id, "accepted"]]);
  });
});

Deno.test("chat piped (defect 8): a line over the limits is refused before the wire, and the chat exits 1", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    await runInProcess(["add-contact", "bob", toBase64(generateKeyPair().publicKey)], { home });
    await using fake = startFakeRelay(() => "accepted");
    const emoji = "😀".repeat(8_193);
    const cjk = "中".repeat(16_384);
    const r = await runInProcess(["chat", fake.url, "bob"], {
      home,
      stdin: `before\n${emoji}\n${cjk}\nafter\n`,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      /not sent: the message is 8,193 characters, but protocol v1 counts 16,386/,
    );
    assert.match(
      r.stderr,
      /not sent: the message is 16,384 characters but 49,152 bytes encoded; at most 48,000 bytes/,
    );
    assert.doesNotMatch(r.stderr, /16,386 characters/);
    assert.match(r.stderr, /error: 2 line\(s\) not sent: over the limits\n$/);
    const sent = (await historyOf(home, "bob")).map((m) => m.text);
    assert.deepEqual(sent, ["before", "after"], "the others went, nothing else was written");
    assert.equal(fake.sends.length, 2, "nothing over the limits reached the wire");
  });
});
