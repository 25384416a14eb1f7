/**
 * What operators see: /metrics in Prometheus text with the documented families and no per-user
 * labels, JSON logs at the configured level with no key material or ciphertext, /healthz and
 * /readyz.
 */
import assert from "node:assert/strict";
import { generateKeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { RawClient } from "./raw_client.ts";
import { RelayProcess } from "./relay_process.ts";

Deno.test("observability: metrics families, JSON logs without keys or ciphertext", async () => {
  await using relay = await RelayProcess.start({
    env: { RELAY_LOG_LEVEL: "debug", RELAY_FRAME_RATE: "3", RELAY_FRAME_BURST: "3" },
  });
  const alice = generateKeyPair(), bob = generateKeyPair();
  const aliceKey = toBase64(alice.publicKey), bobKey = toBase64(bob.publicKey);
  const env = sealEnvelope({ v: 1, kind: "message", text: "hi", sent_at: "" }, alice, bobKey);
  {
    await using a = await RawClient.authed(relay.url, alice);
    a.send({ v: 1, type: "send", envelope: env });
    await a.next("accepted");
    a.send("not json");
    await a.next("error");
    a.send({ v: 1, type: "ping" }); // the 4th frame: over the budget of 3
    assert.equal((await a.next("error")).code, "rate_limited");
    await using b = await RawClient.authed(relay.url, bob);
    await b.next("deliver");
    b.send({ v: 1, type: "ack", ids: [env.id] });
    await b.next("synced");
    await using bad = await RawClient.connect(relay.url);
    bad.auth(generateKeyPair(), "ws://elsewhere.example/ws");
    await bad.closed;
    const text = await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text();
    for (
      const family of [
        'chat_relay_connections{state="authenticated"} 2',
        'chat_relay_connections{state="unauthenticated"}',
        'chat_relay_frames_in_total{type="send"} 1',
        'chat_relay_frames_out_total{type="deliver"} 1',
        "chat_relay_envelopes_accepted_total",
        "chat_relay_envelopes_delivered_total 1",
        'chat_relay_errors_total{code="bad_json"} 1',
        'chat_relay_errors_total{code="rate_limited"} 1',
        'chat_relay_rate_limited_total{scope="connection"} 1',
        "chat_relay_auth_failures_total 1",
        "chat_relay_mailbox_envelopes ",
        "chat_relay_mailbox_bytes ",
        'chat_relay_backend_seconds_bucket{op="mailbox_put",le="0.001"}',
        'chat_relay_backend_seconds_count{op="bus_publish"} 1',
      ]
    ) assert.ok(text.includes(family), `metrics lack ${family}:\n${text}`);
    for (const line of text.split("\n")) {
      if (line && !line.startsWith("#")) {
        assert.match(line, /^chat_relay_[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/);
      }
    }
    assert.ok(!text.includes(aliceKey) && !text.includes(bobKey), "no keys in metrics");
  }
  await waitFor(async () =>
    (await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text()).includes(
      "chat_relay_envelopes_acked_total 1",
    )
  );
  const h = await fetch(`http://127.0.0.1:${relay.port}/healthz`);
  assert.equal(h.status, 200);
  await h.body?.cancel();
  const r = await fetch(`http://127.0.0.1:${relay.port}/readyz`);
  assert.equal((await r.json()).ready, true);

  await relay.stop("SIGTERM");
  assert.ok(relay.logs.length > 5);
  for (const line of relay.logs) {
    const entry = JSON.parse(line); // every line is one JSON object
    assert.ok(["debug", "info", "warn", "error"].includes(entry.level), line);
    assert.equal(typeof entry.msg, "string");
    assert.ok(!Number.isNaN(Date.parse(entry.time)));
  }
  const all = relay.logs.join("\n");
  for (const secret of [aliceKey, bobKey, env.ciphertext, env.nonce]) {
    assert.ok(!all.includes(secret), `logs hold ${secret.slice(0, 12)}...`);
  }
  assert.ok(relay.logs.some((l) => l.includes('"msg":"authenticated"')), "debug events are logged");
});

Deno.test("observability: RELAY_LOG_LEVEL=warn keeps info and debug out", async () => {
  const dataDir = await Deno.makeTempDir();
  // "listening" is info, so the harness cannot see the port: look for the process to run instead
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "relay/main.ts",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--data-dir",
      dataDir,
    ],
    env: { RELAY_LOG_LEVEL: "warn", KAFKA_BROKERS: "", REDIS_URL: "" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await new Promise((r) => setTimeout(r, 1500));
  child.kill("SIGTERM");
  const out = await child.output();
  assert.equal(out.code, 0, "the relay ran and shut down cleanly on SIGTERM");
  const lines = new TextDecoder().decode(out.stdout).split("\n").filter(Boolean);
  assert.deepEqual(lines.filter((l) => /"level":"(info|debug)"/.test(l)), []);
  await Deno.remove(dataDir, { recursive: true });
});

async function waitFor(cond: () => Promise<boolean>) {
  const end = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition never held");
    await new Promise((r) => setTimeout(r, 20));
  }
}
