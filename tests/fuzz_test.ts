/**
 * Fuzzing a live relay subprocess with 10,000+ random and mutated frames (valid frames with
 * fields deleted, retyped, oversized, duplicated; truncated JSON; random text; binary). Zero
 * crashes, every bad frame answered with an error frame, memory back near its baseline, and
 * other clients' messages still delivered.
 */
import assert from "node:assert/strict";
import { generateKeyPair, type KeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { RawClient } from "./raw_client.ts";
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

/** Sealing costs a scalar multiplication; fuzzing needs shapes, not fresh boxes, so reuse some. */
function sealedPool(from: KeyPair, to: KeyPair, n = 16) {
  return Array.from({ length: n }, (_, i) =>
    sealEnvelope(
      { v: 1, kind: "message", text: `fuzz ${i}`, sent_at: new Date().toISOString() },
      from,
      toBase64(to.publicKey),
    ));
}

/** One frame that must be refused: text (or bytes) that no correct relay accepts. */
function mutate(
  r: () => number,
  mine: ReturnType<typeof sealedPool>,
  theirs: ReturnType<typeof sealedPool>,
): string | Uint8Array {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const frame: Obj = { v: 1, type: "send", envelope: { ...pick(mine) } };
  switch (Math.floor(r() * 9)) {
    case 0: { // delete a field, top level or in the envelope
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
    case 2: { // oversize (but not past the frame limit) a field
      const k = pick(["id", "from", "to", "nonce"]);
      frame.envelope[k] = "A".repeat(100 + Math.floor(r() * 2000));
      return JSON.stringify(frame);
    }
    case 3: { // duplicated keys: the later one wins in JSON.parse, and it is wrong
      const text = JSON.stringify(frame);
      return text.replace('{"v":1,', `{"v":1,"v":${pick(["2", '"1"', "null", "0"])},`);
    }
    case 4: // truncated JSON
      return JSON.stringify(frame).slice(0, Math.floor(r() * 200));
    case 5: { // random printable text
      const n = 1 + Math.floor(r() * 300);
      return Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(r() * 95))).join(
        "",
      ) + "{";
    }
    case 6: // spoofed sender: a well-formed envelope from someone else
      return JSON.stringify({ v: 1, type: "send", envelope: pick(theirs) });
    case 7: // binary frame
      return crypto.getRandomValues(new Uint8Array(1 + Math.floor(r() * 500)));
    default: { // wrong type or version on an otherwise fine frame
      if (r() < 0.5) frame.type = pick(["sned", "Send", "", "deliver", "challenge"]);
      else frame.v = pick([0, 2, 99, "1"]);
      return JSON.stringify(frame);
    }
  }
}

async function fuzz(url: string, me: KeyPair, other: KeyPair, count: number, seed: number) {
  const r = rng(seed);
  const mine = sealedPool(me, other), theirs = sealedPool(other, me);
  await using c = await RawClient.authed(url, me);
  await c.next("synced");
  let sent = 0;
  while (sent < count) {
    const batch = Math.min(250, count - sent);
    for (let i = 0; i < batch; i++) c.send(mutate(r, mine, theirs));
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
  c.send({ v: 1, type: "ping", nonce: "end" });
  assert.equal((await c.next("pong")).nonce, "end", "the fuzzed socket still works");
}

Deno.test("fuzz: 10,000+ random and mutated frames: no crash, all answered, memory steady, others served", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-fuzz-" });
  await using relay = await RelayProcess.start({
    dataDir,
    env: { RELAY_FRAME_RATE: "0", RELAY_SEND_RATE: "0", RELAY_LOG_LEVEL: "info" },
  });
  const alice = generateKeyPair(), bob = generateKeyPair();
  const fuzzers = [generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair()];

  await fuzz(relay.url, fuzzers[0], bob, 1000, 1); // warm-up: JIT and pools reach steady state
  const baseline = await relay.rss();

  // bob listens throughout; alice keeps talking to him while four sockets fuzz in parallel
  await using b = await RawClient.authed(relay.url, bob);
  await b.next("synced");
  await using a = await RawClient.authed(relay.url, alice);
  const talk = (async () => {
    for (let i = 0; i < 20; i++) {
      const e = sealEnvelope(
        { v: 1, kind: "message", text: `m${i}`, sent_at: "" },
        alice,
        toBase64(bob.publicKey),
      );
      a.send({ v: 1, type: "send", envelope: e });
      assert.equal((await a.next("accepted", 10_000)).id, e.id);
      assert.equal((await b.next("deliver", 10_000)).envelope.id, e.id);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await Promise.all([
    ...fuzzers.map((f, i) => fuzz(relay.url, f, bob, 2500, 100 + i)),
    talk,
  ]);

  // oversized frames: answered, then closed 1009, each on its own socket
  for (let i = 0; i < 20; i++) {
    await using c = await RawClient.connect(relay.url);
    c.send("{" + "x".repeat(70_000 + i));
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
