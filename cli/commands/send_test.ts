import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { startFakeRelay } from "../../tests/fake_relay.ts";
import { RelayProcess } from "../../tests/relay_process.ts";
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
    const attempts = fake.sends.map((e) => e.id);
    const h0 = (await runInProcess(["history", "bob", "--json"], { home })).stdout.trim();
    const queuedId = JSON.parse(h0).id;
    assert.equal(first.stdout, `${queuedId}\n`, "the id of the queued message");
    assert.ok(!attempts.includes(queuedId), "the envelope id is not the message id");
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
    assert.equal(fake.sends.length, 2, "to bob's pair mailbox (unknown there), then his inbox");
    const h = (await runInProcess(["history", "bob", "--json"], { home })).stdout.trim().split(
      "\n",
    );
    assert.deepEqual(h.map((l) => JSON.parse(l).text), [text]);

    const big = await runInProcess(["send", fake.url, "bob", "-"], {
      home,
      stdin: "😀".repeat(16_384),
    });
    assert.equal(big.code, 1);
    assert.equal(
      big.stderr,
      "error: not sent: the message is 16,384 characters but 65,536 bytes encoded; at most 65,000 " +
        "bytes fit in one message\n",
    );
    assert.equal(fake.sends.length, 2, "nothing more went on the wire");
  });
});

Deno.test("send: a message over the relay's announced frame limit fails at once, not queued forever", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    await runInProcess(["add-contact", "bob", toBase64(generateKeyPair().publicKey)], { home });
    await using relay = await RelayProcess.start({ args: ["--max-frame-bytes", "8192"] });
    const r = await runInProcess(["send", relay.url, "bob", "x".repeat(5_000), "--timeout", "5"], {
      home,
    });
    assert.equal(r.code, 1, `exit 1: failed, not 3 (queued): ${r.stderr}`);
    assert.match(r.stderr, /frame_too_large|too large/);
    const states = (await runInProcess(["history", "bob", "--json"], { home })).stdout.trim()
      .split("\n").map((l) => JSON.parse(l).state);
    assert.deepEqual(states, ["failed"]);
  });
});
