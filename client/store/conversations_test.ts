import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { chronological, conversations, ReadMarks } from "./conversations.ts";
import type { HistoryEntry } from "./message_log.ts";
import { ProfileStore } from "./profile_store.ts";

function withStore(fn: (s: ProfileStore) => void): void {
  const home = Deno.makeTempDirSync({ prefix: "chat-conv-" });
  try {
    fn(new ProfileStore({ home, profile: "p" }));
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
}

const entry = (id: string, sent_at: string, dir: "in" | "out" = "in"): HistoryEntry => ({
  id,
  dir,
  text: id,
  sent_at,
  at: "2026-01-01T00:00:00.000Z",
  state: dir === "in" ? "received" : "sending",
});

Deno.test("chronological: the order they were stored (arrival), whatever the senders claim as sent_at", () => {
  const sorted = chronological([
    entry("old", "2026-01-01T09:00:00Z"),
    entry("mine", "2026-01-01T09:01:00Z", "out"),
    // A contact backdates a new message to bury it among old ones...
    entry("backdated", "2001-01-01T00:00:00Z"),
    entry("garbage", "not a time"),
    // ...or dates one in the future to keep it last.
    entry("future", "2099-01-01T00:00:00Z"),
    entry("newest", "2026-01-01T09:05:00Z"),
  ]);
  assert.deepEqual(sorted.map((e) => e.id), [
    "old",
    "mine",
    "backdated",
    "garbage",
    "future",
    "newest",
  ]);
});

Deno.test("read marks: what was shown is read, what was not stays unread, saved and merged", () => {
  withStore((store) => {
    const peer = toBase64(generateKeyPair().publicKey);
    const log = store.history(peer);
    const add = (id: string, dir: "in" | "out" = "in") =>
      log.appendMessage({ id, dir, text: id, sent_at: new Date().toISOString(), at: "x" });
    ["m1", "m2", "m3", "m4"].forEach((id) => add(id));
    add("mine", "out");
    const marks = new ReadMarks(store);
    const unread = (m: ReadMarks) => m.unread(peer).map((e) => e.id);
    assert.deepEqual(unread(marks), ["m1", "m2", "m3", "m4"]);
    assert.equal(marks.markRead(peer, ["m1", "m3"]), true);
    assert.deepEqual(unread(marks), ["m2", "m4"], "m2 was never shown: it stays unread");
    assert.equal(marks.markRead(peer, ["m1"]), false, "nothing new");
    marks.save();
    assert.deepEqual(JSON.parse(store.readFile("read.json")!)[peer].read, ["m3"]);
    const other = new ReadMarks(store); // another command, reading the file
    assert.deepEqual(unread(other), ["m2", "m4"]);
    // Two commands save at once: what either marked stays read, whichever saves last.
    const a = new ReadMarks(store);
    const b = new ReadMarks(store);
    a.get(peer);
    b.get(peer);
    a.markRead(peer, ["m2"]); // the run now goes through m3
    b.markRead(peer, ["m4"]);
    a.save();
    b.save();
    assert.deepEqual(unread(new ReadMarks(store)), []);
    const onDisk = JSON.parse(store.readFile("read.json")!);
    assert.deepEqual(onDisk[peer].through, "m4");
    assert.deepEqual(onDisk[peer].count, 4);
    assert.equal(onDisk[peer].read, undefined);
    add("m5");
    assert.deepEqual(unread(new ReadMarks(store)), ["m5"]);
    const all = new ReadMarks(store);
    all.markRead(peer);
    assert.deepEqual(unread(all), []);
  });
});

Deno.test("conversations: contacts and strangers, unread counts, the last message stored, latest stored first", () => {
  withStore((store) => {
    const bob = toBase64(generateKeyPair().publicKey);
    const stranger = toBase64(generateKeyPair().publicKey);
    store.saveContacts([{ name: "bob", key: bob }]);
    const at = "2026-01-01T00:00:00.000Z";
    store.history(bob).appendMessage({
      id: "b1",
      dir: "in",
      text: "hi",
      sent_at: "2026-01-01T09:00:00Z",
      at,
    });
    store.history(bob).appendMessage({
      id: "b2",
      dir: "out",
      text: "yo",
      sent_at: "2026-01-01T09:01:00Z",
      at,
    });
    const later = "2026-01-01T00:01:00.000Z";
    store.history(stranger).appendMessage({
      id: "s1",
      dir: "in",
      text: "buy",
      sent_at: "2026-01-01T10:00:00Z",
      at: later,
    });
    store.history(stranger).appendMessage({
      id: "s0",
      dir: "in",
      text: "backdated",
      sent_at: "2026-01-01T08:00:00Z",
      at: later,
    });
    const list = conversations(store);
    assert.deepEqual(
      list.map((c) => [c.contact, c.unread, c.total, c.last.id]),
      [[null, 2, 2, "s0"], ["bob", 1, 2, "b2"]],
      "the last stored, whatever it claims",
    );
    // bob dates a message far in the future: it does not keep his conversation first once a
    // later one arrives elsewhere.
    store.history(bob).appendMessage({
      id: "b3",
      dir: "in",
      text: "pinned?",
      sent_at: "2099-01-01T00:00:00Z",
      at: "2026-01-01T00:02:00.000Z",
    });
    store.history(stranger).appendMessage({
      id: "s2",
      dir: "in",
      text: "newest",
      sent_at: "2026-01-01T10:05:00Z",
      at: "2026-01-01T00:03:00.000Z",
    });
    assert.deepEqual(conversations(store).map((c) => c.last.id), ["s2", "b3"]);
    assert.match(list[0].fingerprint, /^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
  });
});
