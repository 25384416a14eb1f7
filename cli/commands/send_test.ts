import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { startFakeRelay } from "../../tests/fake_relay.ts";
import { runInProcess, withHome } from "../testing.ts";

Deno.test("send: a message the relay refuses for now stays queued; the next send sends it first", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    await runInProcess(["add-contact", "bob", toBase64(generateKeyPair().publicKey)], { home });
    let full = true;
    await using fake = startFakeRelay(() => full ? { code: "mailbox_full" } : "accepted");

    const first = await runInProcess(
      ["send", fake.url, "bob", "are you there?", "--timeout", "1"],
      {
        home,
      },
    );
    assert.equal(first.code, 1);
    assert.equal(first.stdout, "", "no id: not accepted");
    const attempts = fake.sends.map((e) => e.id);
    assert.ok(attempts.length >= 1);
    assert.equal(
      first.stderr,
      "error: relay refused the message: mailbox_full: fake relay says mailbox_full; it stays " +
        "queued and is sent by the next `send` or `chat` to bob\n",
    );
    const history = async () =>
      (await runInProcess(["history", "bob", "--json"], { home })).stdout.trim().split("\n")
        .map((l) => JSON.parse(l)).map((m) => [m.text, m.state]);
    assert.deepEqual(await history(), [["are you there?", "sending"]], "never failed");

    full = false;
    const next = await runInProcess(["send", fake.url, "bob", "hello?"], { home });
    assert.equal(next.code, 0, next.stderr);
    assert.match(next.stderr, /sending 1 queued message to bob first/);
    assert.deepEqual(await history(), [["are you there?", "accepted"], ["hello?", "accepted"]]);
    const h = (await runInProcess(["history", "bob", "--json"], { home })).stdout.trim().split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(next.stdout, `${h[1].id}\n`, "the message id");
    assert.equal(new Set(attempts).size, 1, "every attempt of the first under one envelope id");
    assert.equal(fake.sends[attempts.length].id, attempts[0], "the same one in the next send");
    assert.ok(!attempts.includes(h[0].id), "the envelope id is not the message id");
  });
});
