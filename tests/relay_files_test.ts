/**
 * What the relay keeps (issue 10): after a full flow of real v2 traffic (a first-contact request,
 * pair messages both ways, acks, one message left waiting), the relay's files hold neither
 * party's identity key, nor any mailbox auth key, in any encoding (raw bytes, base64, base64url,
 * hex), and no plaintext. Embedded: the SQLite database, its WAL and every other file in the data
 * directory, while the relay runs and after it stopped. Scaled: everything in Redis, Redis's
 * append-only file, and the Kafka topic (its records and its log segments on disk). A 1-character
 * and a 200-character message are stored as envelopes of the same size.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateKeyPair, type KeyPair, pairMailbox, toBase64 } from "@chat-p2p/protocol";
import { inboxBox, pairBox, RawClient } from "./raw_client.ts";
import { encodings, readTree, readTreeSince, startTestRelay, treeSizes } from "./relay_harness.ts";
import { runId, scaledRelayEnv, servicesDir, servicesTest } from "./services.ts";
import { dumpRedis, readKafkaTopic } from "./services_inspect.ts";
import { pairMessages, requestMessage } from "./v2_messages.ts";

/** Fails if `text` (from `where`) holds any of the secrets. */
function assertClean(
  where: string,
  text: string,
  secrets: Map<string, Uint8Array>,
  plain: string[],
) {
  assert.ok(text.length > 0, `${where}: nothing to search`);
  for (const [name, bytes] of secrets) {
    for (const enc of encodings(bytes)) {
      assert.ok(
        !text.includes(enc),
        `${where} holds ${name} (${JSON.stringify(enc.slice(0, 12))}…)`,
      );
    }
  }
  for (const p of plain) assert.ok(!text.includes(p), `${where} holds plaintext ${p.slice(0, 20)}`);
}

/**
 * alice and bob, each with a reader socket (request inbox + the pair mailbox the other writes
 * to, opened through `readUrl`) and a sender socket (through `sendUrl`): a first-contact request
 * from alice, two messages from alice (1 and 200 characters), a reply from bob; bob acks the
 * request and the long message, so the short one waits at rest. Returns what must never be
 * stored, and the two stored sizes of alice's messages.
 */
async function fullFlow(readUrl: string, sendUrl: string) {
  const alice = generateKeyPair(), bob = generateKeyPair();
  const marker = `PLAINTEXT-${runId()}`;
  const texts = { request: `${marker} hello, I am alice`, short: "x", long: "y".repeat(200) };
  const reply = `${marker} hi alice`;
  const toBob = pairMessages(alice, bob.publicKey, [texts.short, texts.long]);
  const toAlice = pairMessages(bob, alice.publicKey, [reply]);
  const read = async (me: KeyPair, pair: ReturnType<typeof pairBox>) =>
    await RawClient.reader(readUrl, inboxBox(me), pair);
  await using bobReads = await read(bob, toBob.box);
  await using aliceReads = await read(alice, toAlice.box);

  await using aliceSends = await RawClient.connect(sendUrl);
  const request = requestMessage(alice, bob.publicKey, texts.request);
  assert.equal((await aliceSends.sendAndWait(request, toBase64(bob.publicKey))).type, "accepted");
  for (const e of toBob.envelopes) {
    assert.equal((await aliceSends.sendAndWait(e)).type, "accepted");
  }
  const got = [];
  for (let i = 0; i < 3; i++) got.push((await bobReads.next("deliver", 20_000)).envelope);
  assert.deepEqual(
    got.map((e) => e.id).sort(),
    [request, ...toBob.envelopes].map((e) => e.id).sort(),
  );
  bobReads.ack(inboxBox(bob), [request.id]);
  bobReads.ack(toBob.box, [toBob.envelopes[1].id]);

  await using bobSends = await RawClient.connect(sendUrl);
  assert.equal((await bobSends.sendAndWait(toAlice.envelopes[0])).type, "accepted");
  await aliceReads.next("deliver", 20_000);
  aliceReads.ack(toAlice.box, [toAlice.envelopes[0].id]);
  for (const c of [bobReads, aliceReads]) {
    c.send({ v: 2, type: "ping", nonce: "acked" });
    await c.next("pong");
  }

  const secrets = new Map<string, Uint8Array>([
    ["alice's identity key", alice.publicKey],
    ["bob's identity key", bob.publicKey],
    ["the auth key of alice → bob", toBob.mailbox.authKeyPair.publicKey],
    ["the auth key of bob → alice", toAlice.mailbox.authKeyPair.publicKey],
    [
      "bob's auth key of alice → bob, as he derives it",
      pairMailbox(bob, alice.publicKey, "receive", 0).authKeyPair.publicKey,
    ],
  ]);
  return {
    secrets,
    plain: [marker, texts.long, "hello, I am alice"],
    sizes: toBob.envelopes.map((e) => JSON.stringify(e).length),
    waiting: toBob,
  };
}

Deno.test("attack: after a full flow the embedded relay's files hold no identity or auth key in any encoding, and no plaintext", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-files-" });
  const relay = await startTestRelay({ RELAY_DATA_DIR: dataDir });
  try {
    const flow = await fullFlow(relay.url, relay.url);
    const [short, long] = flow.sizes;
    assert.equal(short, long, "1 and 200 characters give envelopes of the same size");
    const held = await relay.router.mailbox.pending(flow.waiting.box.id);
    assert.deepEqual(held.map((e) => e.id), [flow.waiting.envelopes[0].id], "one waits at rest");
    assert.ok((await Deno.stat(join(dataDir, "mailbox.db-wal"))).size > 0, "the WAL is searched");
    assertClean("the running relay's files", await readTree(dataDir), flow.secrets, flow.plain);
    await relay.shutdown();
    assertClean("the stopped relay's files", await readTree(dataDir), flow.secrets, flow.plain);
    const logs = relay.logs.join("\n");
    assertClean("the relay's logs", logs, flow.secrets, flow.plain);
  } finally {
    await relay[Symbol.asyncDispose]();
    await Deno.remove(dataDir, { recursive: true });
  }
});

await servicesTest(
  "attack: after a full flow across two scaled relays, Redis, its append-only file and Kafka hold no identity or auth key in any encoding, and no plaintext",
  async (svc) => {
    const env = scaledRelayEnv(svc, "files");
    const topic = env.KAFKA_TOPIC;
    const aof = join(servicesDir(), "redis", "appendonlydir");
    const aofBefore = svc.managed ? await treeSizes(aof) : new Map();
    await using reader = await startTestRelay(env);
    await using sender = await startTestRelay(env);
    const flow = await fullFlow(reader.url, sender.url);
    assertClean("Redis", await dumpRedis(svc.redisUrl), flow.secrets, flow.plain);
    const kafka = await readKafkaTopic(svc.kafkaBrokers, topic, 4, 6000);
    assert.ok(kafka.includes(flow.waiting.envelopes[0].id), "the topic was read");
    assertClean("the Kafka topic", kafka, flow.secrets, flow.plain);
    if (svc.managed) {
      const state = servicesDir();
      // What this flow appended: the file also holds every earlier test's and bench's writes.
      const appended = await readTreeSince(aof, aofBefore);
      assert.ok(appended.includes(flow.waiting.envelopes[0].id), "the append-only file was read");
      assertClean("Redis's append-only file", appended, flow.secrets, flow.plain);
      let segments = "";
      for await (const e of Deno.readDir(join(state, "kafka", "data"))) {
        if (e.name.startsWith(`${topic}-`)) {
          segments += await readTree(join(state, "kafka", "data", e.name));
        }
      }
      assert.ok(segments.includes(flow.waiting.envelopes[0].id), "the segments were read");
      assertClean("Kafka's log segments", segments, flow.secrets, flow.plain);
    }
    for (const r of [reader, sender]) {
      assertClean("the relays' logs", r.logs.join("\n"), flow.secrets, flow.plain);
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
);
