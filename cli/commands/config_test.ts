/** config set/get/unset, and the relay every command falls back to (CHAT_RELAY, then config). */
import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { startFakeRelay } from "../../tests/fake_relay.ts";
import { runInProcess, withHome } from "../testing.ts";

Deno.test("config: set, get (plain and --json), unset", async () => {
  await withHome(async (home) => {
    const unset = await runInProcess(["config", "get", "relay"], { home });
    assert.equal(unset.code, 1);
    assert.equal(unset.stderr, "error: relay is not set\n");
    assert.equal(
      (await runInProcess(["config", "get", "--json"], { home })).stdout,
      '{"relay":null}\n',
    );
    const set = await runInProcess(["config", "set", "relay", "http://127.0.0.1:9/"], { home });
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, "relay = ws://127.0.0.1:9/ws\n");
    assert.equal(
      (await runInProcess(["config", "get", "relay"], { home })).stdout,
      "ws://127.0.0.1:9/ws\n",
    );
    assert.equal(
      (await runInProcess(["config", "get"], { home })).stdout,
      "relay = ws://127.0.0.1:9/ws\n",
    );
    assert.equal(
      (await runInProcess(["config", "get", "relay", "--json"], { home })).stdout,
      '{"relay":"ws://127.0.0.1:9/ws"}\n',
    );
    const bad = await runInProcess(["config", "set", "relay", "ftp://x"], { home });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not a relay URL: "ftp:\/\/x"/);
    assert.equal((await runInProcess(["config", "unset", "relay"], { home })).code, 0);
    assert.equal((await runInProcess(["config", "get", "relay"], { home })).code, 1);
  });
});

Deno.test("the relay: an argument, else CHAT_RELAY, else config; none says how to set one", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    await runInProcess(["add-contact", "bob", toBase64(generateKeyPair().publicKey)], { home });
    await using viaConfig = startFakeRelay(() => "accepted");
    await using viaEnv = startFakeRelay(() => "accepted");
    await using viaArg = startFakeRelay(() => "accepted");

    const none = await runInProcess(["send", "bob", "hi"], { home });
    assert.equal(none.code, 2);
    assert.match(
      none.stderr,
      /^error: no relay given: name one \(ws:\/\/host:port\/ws\), set CHAT_RELAY, or save one with `chat-p2p config set relay <url>`/,
    );

    await runInProcess(["config", "set", "relay", viaConfig.url], { home });
    const env = { CHAT_RELAY: viaEnv.url };
    for (const argv of [["send", "bob", "one"], ["sync"], ["chat", "bob"]]) {
      const r = await runInProcess(argv, { home, stdin: "via config\n" });
      assert.equal(r.code, 0, `${argv}: ${r.stderr}`);
    }
    assert.equal(viaConfig.sends.length, 2, "send and chat went to the configured relay");
    assert.equal((await runInProcess(["send", "bob", "two"], { home, env })).code, 0);
    assert.equal(viaEnv.sends.length, 1, "CHAT_RELAY wins over config");
    assert.equal((await runInProcess(["send", viaArg.url, "bob", "three"], { home, env })).code, 0);
    assert.equal(
      (await runInProcess(["send", "--relay", viaArg.url, "bob", "four"], { home, env })).code,
      0,
    );
    assert.equal(viaArg.sends.length, 2, "an argument wins over both");
    const badEnv = await runInProcess(["sync"], { home, env: { CHAT_RELAY: "nope" } });
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /CHAT_RELAY is not a relay URL: "nope"/);
  });
});
