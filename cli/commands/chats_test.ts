/** chats (inbox): conversations with unread counts, strangers included; read marks; history order. */
import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { openStore } from "@chat-p2p/client";
import { runInProcess, withHome } from "../testing.ts";

/** Arrival times, a millisecond apart in call order: two stores in one millisecond would tie. */
let arrived = Date.now();

/** Stores incoming messages from `peer` as the inbox would (arrival order = array order). */
function receive(home: string, peer: string, messages: Array<[string, string, string]>): void {
  const store = openStore((n) => (n === "HOME" ? home : undefined), "default", () => {});
  for (const [id, text, sent_at] of messages) {
    store.history(peer).appendMessage({
      id,
      dir: "in",
      text,
      sent_at,
      at: new Date(++arrived).toISOString(),
    });
  }
}

const lines = (s: string) => s.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));

Deno.test("chats: contacts and strangers, unread until shown by history, latest first", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    const bob = toBase64(generateKeyPair().publicKey);
    const stranger = toBase64(generateKeyPair().publicKey);
    await runInProcess(["add-contact", "bob", bob], { home });
    receive(home, bob, [["b1", "hi", "2026-01-01T09:00:00Z"], [
      "b2",
      "are you there?",
      "2026-01-01T09:01:00Z",
    ]]);
    receive(home, stranger, [["s1", "hello from nowhere", "2026-01-01T10:00:00Z"]]);

    const json = lines((await runInProcess(["chats", "--json"], { home })).stdout);
    assert.deepEqual(json.map((c) => [c.contact, c.unread, c.total, c.last.text]), [
      [null, 1, 1, "hello from nowhere"],
      ["bob", 2, 2, "are you there?"],
    ]);
    assert.equal(json[0].peer, stranger);
    assert.match(json[0].fingerprint, /^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
    const human = await runInProcess(["inbox"], {
      home,
      now: () => new Date("2026-01-01T12:00:00Z"),
    });
    assert.equal(human.code, 0, human.stderr);
    const rows = human.stdout.trim().split("\n");
    assert.match(
      rows[0],
      new RegExp(
        `^\\[${json[0].fingerprint}\\]  +1 unread  \\[\\d\\d:\\d\\d\\] hello from nowhere$`,
      ),
    );
    assert.match(rows[1], /^bob +2 unread {2}\[\d\d:\d\d\] are you there\?$/);

    // history shows bob's conversation: read from then on; the stranger's stays unread.
    await runInProcess(["history", "bob"], { home });
    const after = lines((await runInProcess(["chats", "--json"], { home })).stdout);
    assert.deepEqual(after.map((c) => c.unread), [1, 0]);
    receive(home, bob, [["b3", "new", "2026-01-01T11:00:00Z"]]);
    assert.deepEqual(
      lines((await runInProcess(["chats", "--json"], { home })).stdout).map((
        c,
      ) => [c.contact, c.unread]),
      [
        ["bob", 1],
        [null, 1],
      ],
    );
  });
});

Deno.test("history: arrival order, whatever sent_at the sender claims, strangers too", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    const stranger = toBase64(generateKeyPair().publicKey);
    // A sender's claimed times cannot move a message: not back among old ones, not to the end.
    receive(home, stranger, [
      ["first", "first", "2026-01-01T10:00:00Z"],
      ["future", "dated 2099", "2099-01-01T00:00:00Z"],
      ["backdated", "dated 2001", "2001-01-01T00:00:00Z"],
      ["last", "last", "2026-01-01T10:05:00Z"],
    ]);
    const h = await runInProcess(["history", stranger, "--json"], { home });
    assert.equal(h.code, 0, h.stderr);
    assert.deepEqual(lines(h.stdout).map((m) => m.id), ["first", "future", "backdated", "last"]);
  });
});
