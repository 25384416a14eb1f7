import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { startFakeRelay } from "../../tests/fake_relay.ts";
import { runInProcess, withHome } from "../testing.ts";

async function states(home: string): Promise<string[][]> {
  const h = await runInProcess(["history", "bob", "--json"], { home });
  return h.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)).map((
    m,
  ) => [m.text, m.state]);
}

Deno.test("resend: failed messages go back in the queue, then out through the relay", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    await runInProcess(["add-contact", "bob", toBase64(generateKeyPair().publicKey)], { home });
    let refuse = true;
    await using fake = startFakeRelay(() => refuse ? { code: "spoofed_sender" } : "accepted");

    // Refused for good: failed, and the chat says how to try again.
    const chat = await runInProcess(["chat", fake.url, "bob"], { home, stdin: "one\ntwo\n" });
    assert.equal(chat.code, 1);
    assert.match(chat.stderr, /✗ not sent: one: relay refused the message: spoofed_sender/);
    assert.match(chat.stderr, /error: 2 message\(s\) could not be sent \(`chat-p2p resend`/);
    assert.deepEqual(await states(home), [["one", "failed"], ["two", "failed"]]);
    const [idOne, idTwo] = fake.sends.map((e) => e.id);

    // Without a relay: history only (no passphrase needed), the ids on stdout.
    const one = await runInProcess(["resend", "bob", idOne], { home });
    assert.equal(one.code, 0, one.stderr);
    assert.equal(one.stdout, `${idOne}\n`);
    assert.match(one.stderr, /1 message queued again; the next `send` or `chat` to bob sends it/);
    assert.deepEqual(await states(home), [["one", "sending"], ["two", "failed"]]);

    // With a relay: the other failed one and the one queued before both go now.
    refuse = false;
    const now = await runInProcess(["resend", "bob", "--relay", fake.url], { home });
    assert.equal(now.code, 0, now.stderr);
    assert.deepEqual(now.stdout.trim().split("\n").sort(), [idOne, idTwo].sort());
    assert.deepEqual(await states(home), [["one", "accepted"], ["two", "accepted"]]);
    assert.deepEqual(fake.sends.slice(2).map((e) => e.id).sort(), [idOne, idTwo].sort());

    // Nothing left to resend; an id that did not fail, or is unknown, is an error.
    const none = await runInProcess(["resend", "bob"], { home });
    assert.equal(none.code, 0);
    assert.equal(none.stderr, "no failed messages to bob\n");
    const notFailed = await runInProcess(["resend", "bob", idOne], { home });
    assert.equal(notFailed.code, 1);
    assert.equal(
      notFailed.stderr,
      `error: message ${idOne} to bob did not fail (it is accepted)\n`,
    );
    const unknown = await runInProcess(["resend", "bob", "nosuchid1"], { home });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no message nosuchid1 to bob in your history/);
  });
});
