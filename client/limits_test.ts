import assert from "node:assert/strict";
import {
  DEFAULT_MAX_FRAME_BYTES,
  generateKeyPair,
  sealEnvelope,
  toBase64,
} from "@chat-p2p/protocol";
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

Deno.test("limits: 8,193 emoji are reported as 8,193 characters", () => {
  const r = checkMessage("😀".repeat(8_193));
  assert.equal(r?.code, "too_large");
  assert.deepEqual(r?.size, { characters: 8_193, bytes: 32_772 });
  assert.match(r!.message, /^the message is 8,193 characters/);
  assert.doesNotMatch(r!.message, /16,386 characters/);
  assert.equal(checkMessage("😀".repeat(8_192)), undefined);
});

Deno.test("limits: 16,384 CJK characters are refused by their byte size", () => {
  const r = checkMessage("中".repeat(16_384));
  assert.equal(r?.code, "too_large");
  assert.equal(
    r?.message,
    "the message is 16,384 characters but 49,152 bytes encoded; at most 48,000 bytes fit in " +
      "one message",
  );
  assert.equal(checkMessage("中".repeat(16_000)), undefined);
});

Deno.test("limits: characters past the limit, and empty messages", () => {
  assert.equal(checkMessage("a".repeat(MAX_MESSAGE_CHARACTERS)), undefined);
  const r = checkMessage("a".repeat(MAX_MESSAGE_CHARACTERS + 1));
  assert.equal(r?.code, "too_long");
  assert.equal(r?.message, "the message is 16,385 characters; at most 16,384 are allowed");
  assert.equal(checkMessage(" \n\t")?.code, "empty");
});

Deno.test("limits: whatever passes the check fits in one frame of the default size", () => {
  const me = generateKeyPair();
  const to = toBase64(generateKeyPair().publicKey);
  const frameBytes = (text: string) => {
    const payload = {
      v: 1 as const,
      kind: "message" as const,
      text,
      sent_at: new Date().toISOString(),
    };
    const envelope = sealEnvelope(payload, me, to);
    return new TextEncoder().encode(JSON.stringify({ v: 1, type: "send", envelope })).length;
  };
  // The largest texts the check lets through, each the worst of its kind.
  for (
    const text of [
      "中".repeat(MAX_MESSAGE_BYTES / 3),
      "\u0001".repeat(MAX_MESSAGE_BYTES / 6),
      "a\n".repeat(MAX_MESSAGE_CHARACTERS / 2),
    ]
  ) {
    assert.equal(checkMessage(text), undefined);
    assert.ok(frameBytes(text) <= DEFAULT_MAX_FRAME_BYTES, `${frameBytes(text)} bytes`);
  }
  // And the limit is not far below what fits: 879 bytes more would still fit.
  assert.ok(frameBytes("a".repeat(MAX_MESSAGE_BYTES + 879)) <= DEFAULT_MAX_FRAME_BYTES);
});
