/**
 * Issue 10, defect 4: anyone who knows a public key can fill its request inbox, but never stop
 * that person's contacts. Once bob has read from the relay, alice writes to their pair mailbox,
 * which strangers cannot name; before that, her first message waits (queued, not failed) while the
 * inbox is full, and goes through the pair mailbox as soon as bob has read.
 */
import assert from "node:assert/strict";
import { connectRelay } from "../client/connection.ts";
import { RelayError } from "../client/errors.ts";
import { pairedProfiles, runCli, runCliOk } from "./cli_helpers.ts";
import { startFakeRelay } from "./fake_relay.ts";
import { TestPeer } from "./v2_peer.ts";

const CAP = 20;
const lines = (text: string) => text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));

/** A stranger fills bob's request inbox until the relay refuses; returns how many it took. */
async function flood(url: string, bob: string): Promise<number> {
  await using mallory = await TestPeer.create();
  const s = await connectRelay(url, { framesPerSecond: 0 });
  let stored = 0;
  try {
    for (let i = 0; i < CAP * 2; i++) {
      const m = await mallory.message(bob, `spam ${i}`, { via: "request" });
      try {
        await s.send(m.envelope, { key: bob });
        stored++;
      } catch (e) {
        assert.ok(e instanceof RelayError && e.code === "mailbox_full", String(e));
      }
    }
  } finally {
    await s.close();
  }
  return stored;
}

Deno.test("flooding: a stranger filling bob's request inbox never stops alice's messages once bob has read (issue 10, defect 4)", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-flood-" });
  await using relay = startFakeRelay(undefined, { inboxMaxCount: CAP });
  try {
    const { alice, bob, bKey } = await pairedProfiles(home);
    // Before bob ever read: his pair mailbox is unknown, his inbox full. Alice's message waits.
    assert.equal(await flood(relay.url, bKey), CAP);
    const first = await runCli(["send", relay.url, "bob", "first", "--timeout", "2"], alice);
    assert.equal(first.code, 3, `queued, not failed: ${first.stderr}`);
    assert.match(first.stderr, /mailbox_full/);

    // Bob reads (his pair mailbox exists from now on) and gets the strangers' requests.
    const r1 = await runCliOk(["sync", relay.url, "--json"], bob);
    assert.equal(r1.stdout, "", "requests are not messages");

    // The stranger fills the inbox again; alice's messages go through the pair mailbox anyway.
    assert.equal(await flood(relay.url, bKey), CAP);
    const before = relay.sends.length;
    for (const t of ["second", "third"]) await runCliOk(["send", relay.url, "bob", t], alice);
    assert.ok(
      relay.keys.slice(before).every((k) => k === undefined),
      "alice's envelopes went to the pair mailbox, none to the full inbox",
    );
    const got = lines((await runCliOk(["sync", relay.url, "--json"], bob)).stdout);
    assert.deepEqual(got.map((m) => m.text), ["first", "second", "third"]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
