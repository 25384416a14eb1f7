/**
 * Issue 10, defect 4: anyone who knows a public key can fill its request inbox, but never stop
 * that person's contacts. Once bob has read from the relay, alice writes to their pair mailbox,
 * which strangers cannot name. Before that, the relay does not know that mailbox
 * (`unknown_mailbox`) and a first message would go to bob's request inbox: when strangers have
 * filled it, alice registers the pair mailbox herself (she derives its auth key too) and sends
 * there, so her message is accepted at once and bob gets it the first time he reads.
 */
import assert from "node:assert/strict";
import { connectRelay } from "../client/connection.ts";
import { RelayError } from "../client/errors.ts";
import { jsonLines, pairedProfiles, runCli, runCliOk } from "./cli_helpers.ts";
import { startFakeRelay } from "./fake_relay.ts";
import { TestPeer } from "./v2_peer.ts";

const CAP = 20;

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

Deno.test("flooding: a stranger filling bob's request inbox never stops alice's messages, before or after bob read (issue 10, defect 4)", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-flood-" });
  await using relay = startFakeRelay(undefined, { inboxMaxCount: CAP });
  try {
    const { alice, bob, bKey } = await pairedProfiles(home);
    // Before bob ever read: his pair mailbox is unknown, his inbox full. Alice registers the
    // pair mailbox herself and her message is accepted there.
    assert.equal(await flood(relay.url, bKey), CAP);
    assert.equal(relay.registered.size, 0, "bob never read here");
    const first = await runCli(["send", relay.url, "bob", "first", "--timeout", "5"], alice);
    assert.equal(first.code, 0, `accepted: ${first.stderr}`);
    assert.equal(relay.registered.size, 1, "alice registered the pair mailbox");
    const pairMailbox = [...relay.registered][0];
    assert.deepEqual(
      relay.mailboxes.get(pairMailbox)?.map((e) => e.to),
      [pairMailbox],
      "her message waits there, not read nor acked by the registration",
    );

    // Bob reads: alice's message, and the strangers' requests (kept as requests, not shown).
    const r1 = await runCliOk(["sync", relay.url, "--json"], bob);
    assert.deepEqual(jsonLines(r1.stdout).map((m) => m.text), ["first"]);

    // The stranger fills the inbox again; alice's messages go through the pair mailbox anyway.
    assert.equal(await flood(relay.url, bKey), CAP);
    const before = relay.sends.length;
    for (const t of ["second", "third"]) await runCliOk(["send", relay.url, "bob", t], alice);
    assert.ok(
      relay.keys.slice(before).every((k) => k === undefined),
      "alice's envelopes went to the pair mailbox, none to the full inbox",
    );
    const got = jsonLines((await runCliOk(["sync", relay.url, "--json"], bob)).stdout);
    assert.deepEqual(got.map((m) => m.text), ["second", "third"]);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
