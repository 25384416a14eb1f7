/**
 * kill -9 of the CLI at every step of sending and receiving (the crash points of
 * client/_crash.ts: after encrypting, after writing the sessions, after the history append,
 * after the frame is on the wire; after decrypting a batch, after its history append, after the
 * sessions write, after the ack). After each crash the next run goes on as usual, and:
 *
 * - a message that was in history (reported queued) is delivered exactly once, and one killed
 *   before that is never delivered half-way;
 * - no message key is ever used twice: every ratchet message the relay saw, grouped by its header
 *   (ratchet key, counter), has one byte string;
 * - everything received is in history exactly once, and the sessions still open what comes next.
 */
import assert from "node:assert/strict";
import {
  decodeHeader,
  type EnvelopeV2,
  openPairEnvelope,
  openRequestEnvelope,
  toBase64,
} from "@chat-p2p/protocol";
import type { CrashPoint } from "../client/_crash.ts";
import { Mailboxes } from "../client/mailboxes.ts";
import { ProfileStore } from "../client/store/profile_store.ts";
import { type CliOptions, jsonLines, pairedProfiles, runCli, runCliOk } from "./cli_helpers.ts";
import { startFakeRelay } from "./fake_relay.ts";

/** Every ratchet message in `sends` that `from` sent to `to` (opened with `to`'s keys). */
async function ratchetMessages(
  home: string,
  to: string,
  from: string,
  sends: EnvelopeV2[],
): Promise<Uint8Array[]> {
  const store = new ProfileStore({ home, profile: to });
  const me = await store.loadIdentity();
  const pair = await new Mailboxes(store, me).readMailbox(from);
  return sends.flatMap((e) => {
    const inner = openPairEnvelope(pair, e);
    if (inner) return [inner];
    const r = openRequestEnvelope(me, e);
    return r.ok && toBase64(r.sender) === from ? [r.message] : [];
  });
}

/** Fails when two different ratchet messages share a header's (ratchet key, counter). */
function assertNoKeyUsedTwice(messages: Uint8Array[]): number {
  const byKey = new Map<string, string>();
  for (const m of messages) {
    const h = decodeHeader(m)!;
    const key = `${toBase64(h.dh)}/${h.n}`;
    const bytes = toBase64(m);
    const seen = byKey.get(key);
    assert.ok(seen === undefined || seen === bytes, `message key ${key} used for two messages`);
    byKey.set(key, bytes);
  }
  return byKey.size;
}

async function killedAt(point: CrashPoint, args: string[], who: CliOptions) {
  const r = await runCli(args, { ...who, env: { ...who.env, CHAT_P2P_CRASH_AT: point } });
  assert.notEqual(r.code, 0, `${point}: the process should have been killed\n${r.stderr}`);
  return r;
}

const SEND_POINTS: Array<[CrashPoint, "lost" | "queued"]> = [
  ["send:encrypted", "lost"],
  ["send:sessions", "lost"],
  ["send:history", "queued"],
  ["send:sent", "queued"],
];

for (const [point, fate] of SEND_POINTS) {
  Deno.test(`crash: kill -9 of send at ${point}: ${fate === "lost" ? "never reported, never delivered" : "queued, delivered once"}; no key used twice`, async () => {
    const home = await Deno.makeTempDir({ prefix: "chat-crash-send-" });
    await using relay = startFakeRelay();
    try {
      const { alice, bob, aKey, bKey } = await pairedProfiles(home);
      await runCliOk(["sync", relay.url], bob); // bob's mailbox for alice exists at the relay
      await runCliOk(["send", relay.url, "bob", "before"], alice);
      await killedAt(point, ["send", relay.url, "bob", "the crashed one"], alice);
      const mine = jsonLines((await runCliOk(["history", "bob", "--json"], alice)).stdout);
      assert.deepEqual(
        mine.map((m) => m.text),
        fate === "lost" ? ["before"] : ["before", "the crashed one"],
        "in history exactly when it was reported queued",
      );
      await runCliOk(["send", relay.url, "bob", "after"], alice);
      const got = jsonLines((await runCliOk(["sync", relay.url, "--json"], bob)).stdout);
      assert.deepEqual(
        got.map((m) => m.text),
        fate === "lost" ? ["before", "after"] : ["before", "the crashed one", "after"],
      );
      const states = jsonLines((await runCliOk(["history", "bob", "--json"], alice)).stdout);
      assert.ok(states.every((m) => m.state === "accepted" || m.state === "delivered"));
      const n = assertNoKeyUsedTwice(await ratchetMessages(home, "bob", aKey, relay.sends));
      assert.equal(n, got.length, "one message key per delivered message");
      // The sessions on both sides still agree: a reply goes through.
      await runCliOk(["send", relay.url, "alice", "reply"], bob);
      const back = jsonLines((await runCliOk(["sync", relay.url, "--json"], alice)).stdout);
      assert.deepEqual(back.map((m) => [m.text, m.from]), [["reply", bKey]]);
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
}

const RECEIVE_POINTS: CrashPoint[] = [
  "receive:decrypted",
  "receive:history",
  "receive:sessions",
  "receive:acked",
];

for (const point of RECEIVE_POINTS) {
  Deno.test(`crash: kill -9 of sync at ${point}: everything stored once, the sessions still open what follows`, async () => {
    const home = await Deno.makeTempDir({ prefix: "chat-crash-recv-" });
    await using relay = startFakeRelay();
    try {
      const { alice, bob, aKey } = await pairedProfiles(home);
      await runCliOk(["sync", relay.url], bob);
      const texts = ["one", "two", "three"];
      await runCliOk(["chat", relay.url, "bob"], { ...alice, stdin: texts.join("\n") + "\n" });
      await killedAt(point, ["sync", relay.url, "--json"], bob);
      const again = await runCliOk(["sync", relay.url, "--json"], bob);
      assert.doesNotMatch(again.stderr, /rejected/, "nothing looks forged after a crash");
      const history = async () =>
        jsonLines((await runCliOk(["history", "alice", "--json"], bob)).stdout).map((m) => m.text);
      assert.deepEqual(await history(), texts, "each once, in order");
      await runCliOk(["send", relay.url, "bob", "four"], alice);
      const next = jsonLines((await runCliOk(["sync", relay.url, "--json"], bob)).stdout);
      assert.deepEqual(next.map((m) => m.text), ["four"]);
      assert.deepEqual(await history(), [...texts, "four"]);
      await runCliOk(["sync", relay.url], alice); // bob's receipts
      assert.deepEqual([...relay.mailboxes.values()].flat(), [], "all acked at the end");
      assertNoKeyUsedTwice(await ratchetMessages(home, "bob", aKey, relay.sends));
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  });
}
