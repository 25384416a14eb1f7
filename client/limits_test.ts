import assert from "node:assert/strict";
import { MAX_FRAME_BYTES_V2, type PayloadV2 } from "@chat-p2p/protocol";
import { sendFrameBytes } from "./sealing.ts";
import {
  checkMessage,
  countCharacters,
  encodedBytes,
  MAX_MESSAGE_BYTES,
  MAX_MESSAGE_CHARACTERS,
} from "./limits.ts";

Deno.test("limits: characters are grapheme clusters, bytes are the encoded size", () => {
  assert.equal(countCharacters("😀".repeat(8_193)), 8_193);
  assert.equal(countCharacters("e\u0301👨‍👩‍👧🇫🇷"), 3);
  assert.equal(encodedBytes("中"), 3);
  assert.equal(encodedBytes('a\n"\\'), 7, "a newline, a quote and a backslash take two bytes");
  assert.equal(encodedBytes("\u0001"), 6);
});

Deno.test("limits: emoji are counted as characters, and refused by their byte size", () => {
  assert.equal(checkMessage("😀".repeat(8_193)), undefined, "32,772 bytes fit in protocol 2");
  const r = checkMessage("😀".repeat(16_384));
  assert.equal(r?.code, "too_large");
  assert.deepEqual(r?.size, { characters: 16_384, bytes: 65_536 });
  assert.equal(
    r?.message,
    "the message is 16,384 characters but 65,536 bytes encoded; at most 65,000 bytes fit in " +
      "one message",
  );
  assert.equal(checkMessage("中".repeat(16_384)), undefined, "49,152 bytes fit");
});

Deno.test("limits: characters past the limit, and empty messages", () => {
  assert.equal(checkMessage("a".repeat(MAX_MESSAGE_CHARACTERS)), undefined);
  const r = checkMessage("a".repeat(MAX_MESSAGE_CHARACTERS + 1));
  assert.equal(r?.code, "too_long");
  assert.equal(r?.message, "the message is 16,385 characters; at most 16,384 are allowed");
  assert.equal(checkMessage(" \n\t")?.code, "empty");
});

Deno.test("limits: whatever passes the check fits the largest padding bucket and a default frame", () => {
  const payload = (text: string): PayloadV2 => ({
    v: 2,
    kind: "message",
    id: "0".repeat(32),
    text,
    sent_at: "2026-11-30T08:00:00.000+01:00",
    receipts: Array.from({ length: 10 }, () => "f".repeat(32)),
  });
  // The largest texts the check lets through, each the worst of its kind (with receipts along).
  for (
    const text of [
      "😀".repeat(MAX_MESSAGE_BYTES / 4),
      "\u0001".repeat(MAX_MESSAGE_BYTES / 6),
      "a\n".repeat(MAX_MESSAGE_CHARACTERS / 2),
    ]
  ) {
    assert.equal(checkMessage(text), undefined);
    const frame = sendFrameBytes(payload(text));
    assert.ok(frame !== undefined && frame <= MAX_FRAME_BYTES_V2, `${frame} bytes`);
  }
  // And the limit is not far below what fits.
  assert.ok(sendFrameBytes(payload("a".repeat(MAX_MESSAGE_BYTES + 50))) !== undefined);
});
