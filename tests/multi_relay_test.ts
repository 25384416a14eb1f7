/**
 * Scale-out end to end: three relay subprocesses on one Kafka and one Redis, with the CLI as
 * subprocesses. Live messages cross relays; an offline recipient's messages wait in Redis, survive
 * the loss of the relay they were sent through, and arrive once, in order, through another; Redis
 * and Kafka hold only ciphertext: no text, no message id, no public key in any encoding (read
 * back with redis-cli and Kafka's ConsoleConsumer). Redis stalled (CLIENT PAUSE) for longer than a
 * relay's lease: its live readers are closed with 1013 by its own clock, reopen and lose nothing.
 * Kafka stalled (SIGSTOP, connections open, nothing answered): sends are refused `unavailable`,
 * and after SIGCONT the resent one and the next reach a reader on the other relay live.
 */
import assert from "node:assert/strict";
import { type EnvelopeV2, fromBase64 } from "@chat-p2p/protocol";
import { type CliOptions, runCliOk, spawnCli } from "./cli_helpers.ts";
import { encodings } from "./relay_harness.ts";
import { RelayProcess } from "./relay_process.ts";
import {
  requireManaged,
  runId,
  scaledRelayEnv,
  servicePid,
  type Services,
  servicesTest,
} from "./services.ts";
import { dumpRedis, readKafkaTopic, redisCli } from "./services_inspect.ts";
import { envelope, pairBox, RawClient } from "./raw_client.ts";
import { deadline, delay } from "@chat-p2p/protocol/async";

const cli = runCliOk;

/** Waits until `relay` reports `n` sockets that opened a mailbox (readers) on /metrics. */
async function authenticatedOn(relay: RelayProcess, n: number): Promise<void> {
  const end = Date.now() + 20_000;
  for (;;) {
    const text = await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text();
    const m = /chat_relay_connections\{state="reading"\} (\d+)/.exec(text);
    if (m && Number(m[1]) >= n) return;
    if (Date.now() > end) {
      throw new Error(`relay :${relay.port} never had ${n} reading sockets`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

await servicesTest(
  "multi-relay: live across relays, offline via Redis, relay loss, only ciphertext stored",
  async (svc) => {
    const env = scaledRelayEnv(svc, "e2e");
    const topic = env.KAFKA_TOPIC;
    const marker = `PLAINTEXT-${runId()}`;
    const home = await Deno.makeTempDir({ prefix: "chat-multi-" });
    const alice: CliOptions = { home, profile: "alice" };
    const bob: CliOptions = { home, profile: "bob" };
    const carol: CliOptions = { home, profile: "carol" };
    const keys: Record<string, string> = {};
    for (const [name, p] of Object.entries({ alice, bob, carol })) {
      await cli(["init"], p);
      keys[name] = (await cli(["id"], p)).stdout.split("\n")[0];
    }
    for (const [name, p] of Object.entries({ alice, bob, carol })) {
      for (const other of ["alice", "bob", "carol"]) {
        if (other !== name) await cli(["add-contact", other, keys[other]], p);
      }
    }

    const a = await RelayProcess.start({ env });
    await using b = await RelayProcess.start({ env });
    await using c = await RelayProcess.start({ env });
    try {
      for (const r of [a, b, c]) {
        const h = await (await fetch(`http://127.0.0.1:${r.port}/readyz`)).json();
        assert.equal(h.ready, true, JSON.stringify(h));
        assert.equal(h.mailbox.kind, "redis");
        assert.equal(h.bus.kind, "kafka");
      }

      // live, across relays: bob listens on B and carol on C; alice sends through A
      const bobChat = spawnCli(["chat", b.url, "alice"], bob);
      const carolChat = spawnCli(["chat", c.url, "bob"], carol);
      // Each chat reads on two sockets: its request inbox, and its pair mailboxes.
      await authenticatedOn(b, 2);
      await authenticatedOn(c, 2);
      await cli(["send", a.url, "bob", `live to bob ${marker}`], alice);
      await bobChat.waitForStdout(`live to bob ${marker}`, { timeoutMs: 20_000 });
      await cli(["send", b.url, "carol", `bob to carol ${marker}`], bob);
      await carolChat.waitForStdout(`bob to carol ${marker}`, { timeoutMs: 20_000 });
      await bobChat.closeStdin();
      await carolChat.closeStdin();
      assert.equal((await bobChat.result()).code, 0);
      assert.equal((await carolChat.result()).code, 0);

      // bob offline: alice sends three through A, then A goes away
      const texts = [1, 2, 3].map((i) => `offline ${i} ${marker}`);
      const ids = [];
      for (const t of texts) ids.push((await cli(["send", a.url, "bob", t], alice)).stdout.trim());

      // while they wait: Redis holds their envelopes, and nothing of what is inside them
      const redis = await dumpRedis(svc.redisUrl);
      assert.ok(redis.includes('"v":2,"id":'), "Redis should hold the envelopes");
      for (const id of ids) assert.ok(!redis.includes(id), `Redis holds message id ${id}`);
      assert.ok(!redis.includes(marker), "Redis holds no plaintext");
      assert.ok(!redis.includes("offline 1"), "not even fragments");
      const keyForms = Object.values(keys).flatMap((k) => encodings(fromBase64(k)!));
      for (const form of keyForms) assert.ok(!redis.includes(form), "Redis holds a public key");

      await a.stop("SIGTERM");

      // bob comes back through C and gets all three, in order, once
      const synced = await cli(["sync", c.url, "--json"], bob);
      const got = synced.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.deepEqual(got.map((m) => m.text), texts);
      assert.deepEqual(got.map((m) => m.id), ids);
      assert.equal((await cli(["sync", b.url, "--json"], bob)).stdout.trim(), "", "nothing twice");
      const hist = (await cli(["history", "alice", "--json"], bob)).stdout.trim().split("\n")
        .map((l) => JSON.parse(l));
      assert.equal(hist.filter((m) => m.text.includes(marker)).length, 4, "each message once");

      // Kafka's own consumer reads the topic: the envelopes are there, the text is not
      const kafka = await readKafkaTopic(svc.kafkaBrokers, topic, 10_000, 6000);
      assert.ok(kafka.includes('"v":2,"id":'), "Kafka should carry the envelopes");
      for (const id of ids) assert.ok(!kafka.includes(id), `Kafka carries message id ${id}`);
      assert.ok(!kafka.includes(marker), "Kafka holds no plaintext");
      for (const form of keyForms) assert.ok(!kafka.includes(form), "Kafka holds a public key");
      for (const r of [a, b, c]) {
        assert.ok(!r.logs.join("\n").includes(marker), "no plaintext in logs");
      }
    } finally {
      await a.stop("SIGKILL");
      await Deno.remove(home, { recursive: true });
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
);

/**
 * Two relays on one topic: a reader of a fresh pair mailbox on the first (`readers`), a sender on
 * the second (`senders`). Disposing it closes both sockets and stops both relays.
 */
async function readerAndSender(svc: Services, name: string) {
  await using stack = new AsyncDisposableStack();
  const env = scaledRelayEnv(svc, name);
  const readers = stack.use(await RelayProcess.start({ env }));
  const senders = stack.use(await RelayProcess.start({ env }));
  const box = pairBox();
  const reader = stack.use(await RawClient.reader(readers.url, box)); // waits for synced
  const sender = stack.use(await RawClient.connect(senders.url));
  const owned = stack.move();
  return {
    readers,
    senders,
    box,
    reader,
    sender,
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}

await servicesTest(
  "multi-relay: what a reader on another relay acked live is gone from Redis (no ack overtakes its put)",
  async (svc) => {
    await using relays = await readerAndSender(svc, "acks");
    const { readers, box, reader, sender } = relays;
    const sent = Array.from({ length: 100 }, () => envelope(box));
    // The reader acks each envelope the moment it arrives, as a live client does.
    const got = new Set<string>();
    const reading = (async () => {
      while (got.size < sent.length) {
        const f = await reader.next("deliver", 10_000);
        got.add(f.envelope.id);
        reader.ack(box, [f.envelope.id]);
      }
    })();
    for (const e of sent) {
      sender.sendEnvelope(e);
      await delay(2);
    }
    for (const e of sent) assert.equal((await sender.next("accepted", 10_000)).id, e.id);
    await reading;
    // The acks' linger and script call take a few ms; what an overtaken ack left stays for good.
    let left: string[] = [];
    for (const end = Date.now() + 5000;;) {
      await using again = await RawClient.connect(readers.url);
      left = (await again.openAndSync(box)).map((e) => e.id);
      if (left.length === 0 || Date.now() > end) break;
      await delay(100);
    }
    assert.deepEqual(left, [], "acked envelopes stayed stored");
  },
  { sanitizeResources: false, sanitizeOps: false },
);

/** A counter of `relay`'s /metrics (0 before it was first counted). */
async function counter(relay: RelayProcess, name: string): Promise<number> {
  const url = `http://127.0.0.1:${relay.port}/metrics`;
  // Once more on a fresh request if the pooled keep-alive connection was closed by the relay's
  // guard as idle just as it was reused (a race any HTTP client has; a scraper tries next time).
  const text = await (await fetch(url).catch(() => fetch(url))).text();
  return Number(new RegExp(`^chat_relay_${name} (\\d+)$`, "m").exec(text)?.[1] ?? 0);
}

await servicesTest(
  "multi-relay: a relay alone never writes to Redis what its reader acks while the put is held",
  async (svc) => {
    // A hold far longer than the test: an `accepted` within it can only come from the ack.
    const env = { ...scaledRelayEnv(svc, "hold"), REDIS_HOLD_MS: "60000" };
    await using a = await RelayProcess.start({ env });
    const box = pairBox();
    await using here = await RawClient.reader(a.url, box);
    await using sender = await RawClient.connect(a.url);
    for (const e of Array.from({ length: 5 }, () => envelope(box))) {
      sender.sendEnvelope(e);
      assert.equal((await here.next("deliver", 10_000)).envelope.id, e.id);
      here.ack(box, [e.id]);
      const answer = await sender.nextWhere((f) => f.id === e.id, 10_000);
      assert.equal(answer.type, "accepted");
    }
    // The first put, before any put had counted the relay alone, was written; no other was.
    assert.ok(await counter(a, "mailbox_puts_withdrawn_total") >= 4);
    const seq = await redisCli(svc.redisUrl, "HGET", `chat:v2:mb:${box.id}:meta`, "seq");
    const written = Number(seq.trim() || "0");
    assert.ok(written <= 1, `${written} puts reached Redis`);
    await using again = await RawClient.connect(a.url);
    assert.deepEqual(await again.openAndSync(box), [], "nothing left to deliver");
  },
  { sanitizeResources: false, sanitizeOps: false },
);

await servicesTest(
  "multi-relay: a relay alone skips Kafka; a relay that joins later gets live messages at once",
  async (svc) => {
    const env = scaledRelayEnv(svc, "alone");
    await using a = await RelayProcess.start({ env });
    const box = pairBox();
    await using here = await RawClient.reader(a.url, box);
    await using sender = await RawClient.connect(a.url);
    const first = Array.from({ length: 5 }, () => envelope(box));
    for (const e of first) assert.equal((await sender.sendAndWait(e)).type, "accepted");
    for (const e of first) assert.equal((await here.next("deliver", 10_000)).envelope.id, e.id);
    // The first put may be published before it counted; every later one is not.
    assert.ok(await counter(a, "bus_publishes_skipped_total") >= 4, "alone: not published");

    await using b = await RelayProcess.start({ env });
    await using there = await RawClient.reader(b.url, box); // reads the five from Redis
    const skipped = await counter(a, "bus_publishes_skipped_total");
    const later = envelope(box);
    assert.equal((await sender.sendAndWait(later)).type, "accepted");
    assert.equal((await there.next("deliver", 10_000)).envelope.id, later.id, "live on B");
    assert.equal((await here.next("deliver", 10_000)).envelope.id, later.id, "live on A");
    assert.equal(await counter(a, "bus_publishes_skipped_total"), skipped, "published");
  },
  { sanitizeResources: false, sanitizeOps: false },
);

/** Sends `e` again (same id, as a client retries) until the relay accepts it, for up to `ms`. */
async function resendUntilAccepted(sender: RawClient, e: EnvelopeV2, ms: number): Promise<void> {
  for (const end = Date.now() + ms;;) {
    const f = await sender.sendAndWait(e, undefined, 10_000);
    if (f.type === "accepted") return;
    assert.ok(Date.now() < end, `still refused: ${JSON.stringify(f)}`);
    await delay(200);
  }
}

await servicesTest(
  "multi-relay: Redis stalled past the lease: live readers are closed (1013), reopen, lose nothing",
  async (svc) => {
    await using relays = await readerAndSender(svc, "stall");
    const { readers, box, reader, sender } = relays;
    // Across relays first: both leases run, so the senders' relay publishes and the readers' pushes.
    const before = envelope(box);
    assert.equal((await sender.sendAndWait(before)).type, "accepted");
    assert.equal((await reader.next("deliver", 10_000)).envelope.id, before.id);
    reader.ack(box, [before.id]);
    await delay(200); // the ack's linger and script

    // Every command of every client waits: renewals time out, and no lease can be renewed for
    // longer than one lease (30 s). CLIENT UNPAUSE in `finally`, whatever happens.
    const stalledAt = Date.now();
    await redisCli(svc.redisUrl, "CLIENT", "PAUSE", "60000", "ALL");
    try {
      // A send meanwhile is refused (its put times out), not left waiting.
      const during = envelope(box);
      const answer = await sender.sendAndWait(during, undefined, 20_000);
      assert.equal(answer.type, "error", JSON.stringify(answer));
      assert.equal(answer.code, "unavailable");

      // The readers' relay may have been counted out, so it closes its live sockets for their readers to
      // reopen (and read what they missed from the store): by its own clock, not Redis's answer.
      const code = await deadline(reader.closed, 50_000);
      const after = Date.now() - stalledAt;
      assert.equal(code, 1013);
      assert.ok(after >= 20_000, `closed ${after} ms into the stall, before the lease could end`);
      assert.ok(await counter(readers, "lease_lapses_total") >= 1);
      assert.ok(readers.logs.some((l) => l.includes("relay lease not renewed in time")));

      await redisCli(svc.redisUrl, "CLIENT", "UNPAUSE");
      // The first renewal answered after the stall was late, so it closes live sockets once more;
      // a reader that reopens after that stays.
      for (const end = Date.now() + 20_000; await counter(readers, "lease_lapses_total") < 2;) {
        assert.ok(Date.now() < end, "no renewal after the stall");
        await delay(100);
      }

      // The refused send is retried with its id until accepted (its put may have landed late:
      // then it is a duplicate, accepted too); the reopened reader gets it once, from the store.
      await resendUntilAccepted(sender, during, 20_000);
      await using again = await RawClient.connect(readers.url);
      const stored = (await again.openAndSync(box)).map((e) => e.id);
      assert.deepEqual(stored, [during.id], "the acked one gone, the refused one there once");
      again.ack(box, stored);

      // Live across relays again: the senders' relay counts the readers' renewed lease and publishes.
      const live = envelope(box);
      assert.equal((await sender.sendAndWait(live)).type, "accepted");
      assert.equal((await again.next("deliver", 10_000)).envelope.id, live.id);
    } finally {
      await redisCli(svc.redisUrl, "CLIENT", "UNPAUSE").catch(() => {});
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
);

await servicesTest(
  "multi-relay: a stalled Kafka broker (SIGSTOP): sends refused, not left waiting; live again after",
  async (svc) => {
    if (!requireManaged(svc, "the stalled-broker test")) return;
    const kafka = servicePid("kafka");
    assert.ok(kafka, "the Kafka pid of scripts/services.sh");
    await using relays = await readerAndSender(svc, "kstop");
    const { box, reader, sender } = relays;
    const first = envelope(box);
    assert.equal((await sender.sendAndWait(first)).type, "accepted");
    assert.equal((await reader.next("deliver", 10_000)).envelope.id, first.id);

    // A stalled broker keeps its connections open and answers nothing (no reset, unlike a kill),
    // for longer than a fetch's own timeout (its wait plus 5 s).
    Deno.kill(kafka, "SIGSTOP");
    let resumed = false;
    try {
      const during = envelope(box);
      const answer = await sender.sendAndWait(during, undefined, 20_000);
      assert.equal(answer.type, "error", JSON.stringify(answer));
      assert.equal(answer.code, "unavailable");
      await delay(8000);
      Deno.kill(kafka, "SIGCONT");
      resumed = true;

      // The refused send is sent again with its id until accepted (stored the first time, it is
      // then a duplicate, announced again) and reaches the reader live: maybe twice, when the
      // stalled broker appended the first announcement after all (the reader drops the copy).
      await resendUntilAccepted(sender, during, 30_000);
      assert.equal((await reader.next("deliver", 20_000)).envelope.id, during.id);
      const later = envelope(box);
      assert.equal((await sender.sendAndWait(later)).type, "accepted");
      const rest: string[] = [];
      while (rest.at(-1) !== later.id) {
        rest.push((await reader.next("deliver", 10_000)).envelope.id);
      }
      assert.ok(rest.slice(0, -1).every((id) => id === during.id), JSON.stringify(rest));
    } finally {
      if (!resumed) Deno.kill(kafka, "SIGCONT");
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
);
