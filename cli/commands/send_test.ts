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
    assert.equal(first.code, 3, "exit 3: not accepted in time, queued");
    assert.equal(first.stdout, `${fake.sends[0].id}\n`, "the id of the queued message");
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
    const ids = fake.sends.map((e) => e.id);
    assert.equal(next.stdout, `${ids.at(-1)}\n`);
    assert.equal(new Set(ids.slice(0, -1)).size, 1, "every attempt of the first under one id");
  });
});

Deno.test("send - reads a multi-line message from stdin as one message; limits are checked first", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    await runInProcess(["add-contact", "bob", toBase64(generateKeyPair().publicKey)], { home });
    await using fake = startFakeRelay(() => "accepted");
    const text = "line one\n\n  line three\r\nlast";
    const r = await runInProcess(["send", fake.url, "bob", "-", "--json"], {
      home,
      stdin: text + "\n",
    });
    assert.equal(r.code, 0, r.stderr);
    const o = JSON.parse(r.stdout);
    assert.deepEqual(Object.keys(o).sort(), ["contact", "id", "state", "to"]);
    assert.equal(o.state, "accepted");
    assert.equal(fake.sends.length, 1);
    const h = (await runInProcess(["history", "bob", "--json"], { home })).stdout.trim().split(
      "\n",
    );
    assert.deepEqual(h.map((l) => JSON.parse(l).text), [text]);

    const big = await runInProcess(["send", fake.url, "bob", "-"], {
      home,
      stdin: "中".repeat(16_384),
    });
    assert.equal(big.code, 1);
    assert.equal(
      big.stderr,
      "error: not sent: the message is 16,384 characters but 49,152 bytes encoded; at most 48,000 " +
        "bytes fit in one message\n",
    );
    assert.equal(fake.sends.length, 1, "nothing more went on the wire");
  });
});
