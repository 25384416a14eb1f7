import assert from "node:assert/strict";
import {
  type DecryptResult,
  type KeyPair,
  keyPairFromSeed,
  MAX_SESSIONS_PER_PEER,
  newPeerSessions,
  peerDecrypt,
  peerEncrypt,
  type PeerSessions,
  restartSessions,
  sendingSession,
} from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const [small, large] = [1, 5]
  .map((b) => keyPairFromSeed(new Uint8Array(32).fill(b)))
  .sort((p, q) => p.publicKey[0] - q.publicKey[0]);

Deno.test("peer sessions: the test identities are ordered as the tests assume", () => {
  assert.ok(small.publicKey[0] < large.publicKey[0]);
});

interface Party {
  kp: KeyPair;
  st: PeerSessions;
}
function party(me: KeyPair, peer: KeyPair): Party {
  return { kp: me, st: newPeerSessions(me.publicKey, peer.publicKey) };
}
function send(from: Party, text: string): Uint8Array {
  const r = peerEncrypt(from.st, enc.encode(text), from.kp);
  from.st = r.state;
  return r.message;
}
function receive(to: Party, message: Uint8Array): DecryptResult<PeerSessions> {
  const r = peerDecrypt(to.st, message, to.kp);
  if (r.ok) to.st = r.state;
  return r;
}
function opens(to: Party, message: Uint8Array, text: string): void {
  const r = receive(to, message);
  if (!r.ok) assert.fail(`${text}: ${r.reason} ${r.message}`);
  assert.equal(dec.decode(r.plaintext), text);
}
function sameSession(a: Party, b: Party): void {
  assert.ok(sendingSession(a.st));
  assert.equal(sendingSession(a.st)?.id, sendingSession(b.st)?.id);
}

for (
  const [name, first, second] of [["smaller", small, large], ["larger", large, small]] as const
) {
  Deno.test(`peer sessions: simultaneous start converges (${name} key first)`, () => {
    const a = party(first, second);
    const b = party(second, first);
    const a1 = send(a, "a1");
    const b1 = send(b, "b1");
    assert.notEqual(sendingSession(a.st)?.id, sendingSession(b.st)?.id);
    opens(a, b1, "b1");
    opens(b, a1, "a1");
    sameSession(a, b);
    // The session of the smaller identity key wins on both sides.
    const winner = (first === small ? a : b).st.sessions.find((s) => s.initiator === "me");
    assert.equal(sendingSession(a.st)?.id, winner?.id);
    opens(b, send(a, "a2"), "a2");
    opens(a, send(b, "b2"), "b2");
    sameSession(a, b);
  });
}

Deno.test("peer sessions: a reinstalled peer (state lost) is followed after its first message", () => {
  const a = party(large, small);
  const b = party(small, large);
  opens(b, send(a, "a1"), "a1");
  opens(a, send(b, "b1"), "b1");
  opens(b, send(a, "a2"), "a2");
  a.st = newPeerSessions(large.publicKey, small.publicKey); // reinstall
  opens(b, send(a, "a3 after reinstall"), "a3 after reinstall");
  opens(a, send(b, "b2"), "b2");
  opens(b, send(a, "a4"), "a4");
  sameSession(a, b);
});

Deno.test("peer sessions: restart after an unreadable authenticated message, then converge", () => {
  const a = party(large, small);
  const b = party(small, large);
  opens(b, send(a, "a1"), "a1");
  opens(a, send(b, "b1"), "b1");
  a.st = newPeerSessions(large.publicKey, small.publicKey); // A lost its state
  const lost = send(b, "b2 (sent before B knows)");
  assert.equal(receive(a, lost).ok, false);
  a.st = restartSessions(a.st);
  const a2 = send(a, "a2");
  assert.equal(receive(a, send(b, "b3 (still before)")).ok, false);
  assert.equal(restartSessions(a.st), a.st, "no second restart while A's session is unanswered");
  opens(b, a2, "a2");
  opens(a, send(b, "b4"), "b4");
  sameSession(a, b);
});

Deno.test("peer sessions: at most MAX_SESSIONS_PER_PEER; a dropped session's init is a replay", () => {
  const b = party(small, large);
  const inits: Uint8Array[] = [];
  for (let i = 0; i <= MAX_SESSIONS_PER_PEER; i++) {
    const a = party(large, small); // a fresh install each time
    const m = send(a, `init ${i}`);
    inits.push(m);
    opens(b, m, `init ${i}`);
  }
  assert.equal(b.st.sessions.length, MAX_SESSIONS_PER_PEER);
  assert.equal(b.st.retired.length, 1);
  const r = receive(b, inits[0]);
  assert.equal(!r.ok && r.reason, "replay");
  const again = receive(b, inits[3]);
  assert.equal(!again.ok && again.reason, "replay");
});

Deno.test("peer sessions: sessions belong to one identity", () => {
  const b = party(small, large);
  assert.throws(() => peerEncrypt(b.st, new Uint8Array(1), large), /another identity/);
});

/** A small PRNG so every seed replays the same schedule. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("peer sessions: random schedules (crossing starts, any delivery order, replays) lose nothing and converge", () => {
  for (let seed = 1; seed <= 120; seed++) {
    const rnd = mulberry32(seed);
    const [x, y] = seed % 2 ? [small, large] : [large, small];
    const a = party(x, y);
    const b = party(y, x);
    const flight: { to: Party; msg: Uint8Array; text: string }[] = [];
    const delivered: typeof flight = [];
    let n = 0;
    const post = (from: Party, to: Party) => {
      const text = `m${n++}`;
      flight.push({ to, msg: send(from, text), text });
    };
    const deliver = (i: number) => {
      const f = flight.splice(i, 1)[0];
      delivered.push(f);
      opens(f.to, f.msg, f.text);
    };
    for (let step = 0; step < 40; step++) {
      const r = rnd();
      if (r < 0.25) post(a, b);
      else if (r < 0.5) post(b, a);
      else if (r < 0.95 && flight.length) deliver(Math.floor(rnd() * flight.length));
      else if (delivered.length) {
        const d = delivered[Math.floor(rnd() * delivered.length)];
        const replay = receive(d.to, d.msg);
        assert.equal(replay.ok, false, `seed ${seed}: replay of ${d.text} opened`);
      }
    }
    while (flight.length) deliver(Math.floor(rnd() * flight.length));
    post(a, b);
    deliver(0);
    post(b, a);
    deliver(0);
    sameSession(a, b);
  }
});
