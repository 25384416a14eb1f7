import assert from "node:assert/strict";
import { MAX_RECEIPT_IDS } from "@chat-p2p/protocol";
import { ReceiptQueue } from "./receipts.ts";

Deno.test("receipt queue: has(peer) follows add, take and untake", () => {
  const q = new ReceiptQueue();
  assert.deepStrictEqual(q.has("alice"), false);
  q.add("alice", ["a", "b", "a"]);
  assert.deepStrictEqual(q.has("alice"), true);
  assert.deepStrictEqual(q.has("bob"), false);
  assert.deepStrictEqual(q.take("alice"), ["a", "b"]);
  assert.deepStrictEqual(q.has("alice"), false);
  assert.deepStrictEqual(q.isEmpty, true);
  q.untake("alice", ["b"]);
  assert.deepStrictEqual(q.has("alice"), true);
  assert.deepStrictEqual(q.peers(), ["alice"]);
});

Deno.test("receipt queue: take hands out at most MAX_RECEIPT_IDS, oldest first", () => {
  const q = new ReceiptQueue();
  const ids = Array.from({ length: MAX_RECEIPT_IDS + 2 }, (_, i) => `id${i}`);
  q.add("alice", ids);
  assert.deepStrictEqual(q.take("alice"), ids.slice(0, MAX_RECEIPT_IDS));
  assert.deepStrictEqual(q.has("alice"), true);
  assert.deepStrictEqual(q.take("alice"), ids.slice(MAX_RECEIPT_IDS));
  assert.deepStrictEqual(q.has("alice"), false);
});
