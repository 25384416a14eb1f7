/**
 * Fuzzing a live relay subprocess with 10,000+ random and mutated frames (valid frames with
 * fields deleted, retyped, oversized, duplicated; truncated JSON; random text; binary). Zero
 * crashes, every bad frame answered with an error frame, memory back near its baseline, and
 * other clients' messages still delivered.
 */
import assert from "node:assert/strict";
import { type EnvelopeV2, toBase64 } from "@chat-p2p/protocol";
import { envelope, inboxBox, pairBox, RawClient, type TestMailbox } from "./raw_client.ts";
import { RelayProcess } from "./relay_process.ts";

/** A small deterministic PRNG (mulberry32) so a failure can be replayed from its seed. */
function rng(seed: number) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RETYPES: unknown[] = [12345, null, [], {}, true, -1.5, "", "🙂".repeat(3)];

// deno-lint-ignore no-explicit-any
type Obj = Record<string, any>;

/** What one fuzzing socket's frames are cut from. */
interface Pool {
  /** A request inbox nobody opened, and envelopes for it (valid only with its `key`). */
  inbox: TestMailbox;
  toInbox: EnvelopeV2[];
  /** Envelopes for pair mailboxes nobody opened. */
  toNowhere: EnvelopeV2[];
  /** Someone else's request inbox (its key does not match `inbox`). */
  other: EnvelopeV2[];
}

function pool(n = 16): Pool {
  const inbox = inboxBox(), other = inboxBox();
  return {
    inbox,
    toInbox: Array.from({ length: n }, () => envelope(inbox)),
    toNowhere: Array.from({ length: n }, () => envelope(pairBox())),
    other: Array.from({ length: n }, () => envelope(other)),
  };
}

/** One frame that must be refused: text (or bytes) that no correct relay accepts. */
function mutate(r: () => number, p: Pool, challenge: string): string | Uint8Array {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  // Valid as it stands (a request to an inbox nobody opened): every mutation must break it.
  const key = toBase64(p.inbox.auth.publicKey);
  const frame: Obj = { v: 2, type: "send", envelope: { ...pick(p.toInbox) }, key };
  switch (Math.floor(r() * 10)) {
    case 0: { // delete a field, top level or in the envelope (without key: an unknown mailbox)
      const inEnv = r() < 0.7;
      const target = inEnv ? frame.envelope : frame;
      delete target[pick(Object.keys(target))];
      return JSON.stringify(frame);
    }
    case 1: { // retype a field
      const inEnv = r() < 0.7;
      const target = inEnv ? frame.envelope : frame;
      const k = pick(Object.keys(target));
      target[k] = pick(RETYPES.filter((x) => typeof x !== typeof target[k]));
      return JSON.stringify(frame);
    }
    case 2: { // oversize (but not past the frame limit) a field; odd lengths are never base64
      const k = pick(["id", "to", "body", "key"]);
      const text = "A".repeat(101 + 2 * Math.floor(r() * 1000));
      if (k === "key") frame.key = text;
      else frame.envelope[k] = text;
      return JSON.stringify(frame);
    }
    case 3: { // duplicated keys: the later one wins in JSON.parse, and it is wrong
      const text = JSON.stringify(frame);
      return text.replace('{"v":2,', `{"v":2,"v":${pick(["1", '"2"', "null", "0"])},`);
    }
    case 4: // truncated JSON
      return JSON.stringify(frame).slice(0, Math.floor(r() * 200));
    case 5: { // random printable text
      const n = 1 + Math.floor(r() * 300);
      return Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(r() * 95))).join(
        "",
      ) + "{";
    }
    case 6: // well-formed, but not allowed: another inbox under this key, or nobody's mailbox
      return r() < 0.5
        ? JSON.stringify({ ...frame, envelope: pick(p.other) })
        : JSON.stringify({ v: 2, type: "send", envelope: pick(p.toNowhere) });
    case 7: // binary frame
      return crypto.getRandomValues(new Uint8Array(1 + Math.floor(r() * 500)));
    case 8: // an open whose signature is not the key's, or an ack of a mailbox not opened here
      return r() < 0.5
        ? JSON.stringify({
          v: 2,
          type: "open",
          kind: pick(["pair", "inbox"]),
          key,
          signature: toBase64(crypto.getRandomValues(new Uint8Array(64))),
          challenge,
        })
        : JSON.stringify({ v: 2, type: "ack", mailbox: p.inbox.id, ids: [frame.envelope.id] });
    default: { // wrong type or version on an otherwise fine frame
      if (r() < 0.5) frame.type = pick(["sned", "Send", "", "deliver", "hello", "opened"]);
      else frame.v = pick([0, 1, 99, "2"]);
      return JSON.stringify(frame);
    }
  }
}

async function fuzz(url: string, count: number, seed: number) {
  const r = rng(seed);
  const p = pool();
  await using c = await RawClient.connect(url);
  let sent = 0;
  while (sent < count) {
    const batch = Math.min(250, count - sent);
    for (let i = 0; i < batch; i++) c.send(mutate(r, p, c.challenge));
    for (let i = 0; i < batch; i++) {
      const f = await c.next(undefined, 10_000);
      assert.equal(
        f.type,
        "error",
        `frame #${sent + i} (seed ${seed}) was not refused: ${JSON.stringify(f)}`,
      );
      assert.ok(typeof f.code === "string" && typeof f.message === "string");
    }
    sent += batch;
  }
  c.send({ v: 2, type: "ping", nonce: "end" });
  assert.equal((await c.next("pong")).nonce, "end", "the fuzzed socket still works");
  assert.equal(c.closeCode, undefined);
}

Deno.test("fuzz: 10,000+ random and mutated frames: no crash, all answered, memory steady, others served", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-fuzz-" });
  await using relay = await RelayProcess.start({
    dataDir,
    env: {
      RELAY_FRAME_RATE: "0",
      RELAY_SEND_RATE: "0",
      RELAY_INBOX_SEND_RATE: "0",
      RELAY_LOG_LEVEL: "info",
    },
  });
  await fuzz(relay.url, 1000, 1); // warm-up: JIT and pools reach steady state
  const baseline = await relay.rss();

  // bob reads a pair mailbox throughout; alice keeps writing to it while four sockets fuzz
  const bob = pairBox();
  await using b = await RawClient.reader(relay.url, bob);
  await using a = await RawClient.connect(relay.url);
  const talk = (async () => {
    for (let i = 0; i < 20; i++) {
      const e = envelope(bob);
      assert.equal((await a.sendAndWait(e, undefined, 10_000)).type, "accepted");
      assert.equal((await b.next("deliver", 10_000)).envelope.id, e.id);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await Promise.all([...[0, 1, 2, 3].map((i) => fuzz(relay.url, 2500, 100 + i)), talk]);

  // oversized frames: answered, then closed 1009, each on its own socket
  for (let i = 0; i < 20; i++) {
    await using c = await RawClient.connect(relay.url);
    c.send("{" + "x".repeat(140_000 + i));
    assert.equal((await c.next("error")).code, "frame_too_large");
    assert.equal(await c.closed, 1009);
  }

  await new Promise((r) => setTimeout(r, 1500));
  const after = await relay.rss();
  console.log(
    `relay RSS: baseline ${(baseline / 2 ** 20).toFixed(1)} MiB, after 10,020 hostile frames ${
      (after / 2 ** 20).toFixed(1)
    } MiB`,
  );
  assert.ok(
    after - baseline < 48 * 2 ** 20,
    `RSS grew by ${((after - baseline) / 2 ** 20).toFixed(1)} MiB`,
  );
  const health = await fetch(`http://127.0.0.1:${relay.port}/healthz`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  assert.ok(
    !relay.logs.some((l) => /"level":"error"/.test(l)),
    `relay logged errors:\n${relay.logs.join("\n")}`,
  );
  await Deno.remove(dataDir, { recursive: true });
});
