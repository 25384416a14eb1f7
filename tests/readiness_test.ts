/**
 * /healthz says the process is alive; /readyz says whether a send would be accepted now, with the
 * reason when not: a full SQLite disk, Redis at maxmemory (issue 12, item 3).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteMailbox } from "../relay/mailbox/sqlite/mailbox.ts";
import { DEFAULT_MAILBOX_LIMITS } from "../relay/ports/mailbox.ts";
import { drainAll } from "./crash_helpers.ts";
import { envelope, pairBox, RawClient, type TestMailbox } from "./raw_client.ts";
import { startTestRelay } from "./relay_harness.ts";
import { servicesTest } from "./services.ts";
import { redisCli } from "./services_inspect.ts";

async function probe(port: number, path: "/healthz" | "/readyz") {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, body: await r.json() };
}

/** Sends one envelope to `to` and returns the relay's answer to it. */
function sendOne(c: RawClient, to: TestMailbox, bodyBytes?: number) {
  return c.sendAndWait(envelope(to, undefined, bodyBytes), undefined, 10_000);
}

async function until(what: string, cond: () => Promise<boolean>, ms = 10_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("readiness: a full disk makes /readyz 503 with the reason while /healthz stays 200", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-ready-" });
  const db = join(dataDir, "mailbox.db");
  const mailbox = new SqliteMailbox(db, DEFAULT_MAILBOX_LIMITS, {
    reserveBytes: 1 << 20,
    writer: new URL("../relay/mailbox/sqlite/testdata/full_disk_writer.ts", import.meta.url),
  });
  await using relay = await startTestRelay({ RELAY_DATA_DIR: dataDir }, { mailbox });
  const bob = pairBox();
  await RawClient.register(relay.url, bob);
  await using a = await RawClient.connect(relay.url);
  assert.equal((await sendOne(a, bob)).type, "accepted");
  assert.equal((await probe(relay.port, "/readyz")).status, 200);

  await Deno.writeTextFile(db + "-disk-full", "");
  const refused = await sendOne(a, bob);
  assert.equal(refused.code, "unavailable");
  const ready = await probe(relay.port, "/readyz");
  assert.equal(ready.status, 503);
  assert.equal(ready.body.ready, false);
  assert.match(ready.body.reason, /^mailbox \(sqlite\): disk full/);
  const live = await probe(relay.port, "/healthz");
  assert.equal(live.status, 200);
  assert.equal(live.body.status, "ok");

  assert.equal((await drainAll(relay.url, bob)).length, 1, "bob drains on the full disk");
  assert.deepEqual(await drainAll(relay.url, bob), [], "and his ack held");

  await Deno.remove(db + "-disk-full");
  await until("ready again", async () => (await probe(relay.port, "/readyz")).status === 200);
  assert.equal((await sendOne(a, bob)).type, "accepted");
  await Deno.remove(dataDir, { recursive: true });
});

await servicesTest(
  "readiness: Redis at maxmemory makes /readyz 503 with the reason until memory is back",
  async ({ redisUrl }) => {
    await using relay = await startTestRelay({
      REDIS_URL: redisUrl,
      RELAY_FRAME_RATE: "0",
      RELAY_SEND_RATE: "0",
    });
    const cli = (...args: string[]) => redisCli(redisUrl, ...args);
    const bob = pairBox();
    await RawClient.register(relay.url, bob);
    await using a = await RawClient.connect(relay.url);
    assert.equal((await probe(relay.port, "/readyz")).status, 200);
    const used = Number(/used_memory:(\d+)/.exec(await cli("INFO", "memory"))![1]);
    try {
      await cli("CONFIG", "SET", "maxmemory", String(used + 512 * 1024));
      let answer;
      for (let i = 0; i < 200; i++) {
        answer = await sendOne(a, bob, 32768 + 97);
        if (answer.type !== "accepted") break;
      }
      assert.equal(answer?.code, "unavailable", JSON.stringify(answer));
      const ready = await probe(relay.port, "/readyz");
      assert.equal(ready.status, 503);
      assert.match(ready.body.reason, /^mailbox \(redis\): Redis is at maxmemory/);
      assert.equal((await probe(relay.port, "/healthz")).status, 200);
    } finally {
      await cli("CONFIG", "SET", "maxmemory", "0");
    }
    assert.equal((await probe(relay.port, "/readyz")).status, 200);
    await drainAll(relay.url, bob);
  },
);
