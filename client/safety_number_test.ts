import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { formatSafetyNumber, numericFingerprint, safetyNumber } from "./safety_number.ts";

const hex = (s: string) => new Uint8Array(s.match(/../g)!.map((b) => parseInt(b, 16)));
const utf8 = (s: string) => new TextEncoder().encode(s);

Deno.test("safety number: the construction gives libsignal's own test vector", () => {
  // libsignal-protocol-c tests/test_fingerprint.c: Curve25519 keys with their 0x05 type byte,
  // phone numbers as stable identifiers, 5,200 iterations.
  const alice = {
    key: hex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"),
    id: utf8("+14152222222"),
  };
  const bob = {
    key: hex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"),
    id: utf8("+14153333333"),
  };
  const expected = "300354477692869396892869876765458257569162576843440918079131";
  assert.equal(numericFingerprint(alice, bob), expected);
  assert.equal(numericFingerprint(bob, alice), expected);
});

Deno.test("safety number: both sides compute the same 60 digits; another key changes them", () => {
  const alice = toBase64(generateKeyPair().publicKey);
  const bob = toBase64(generateKeyPair().publicKey);
  const mallory = toBase64(generateKeyPair().publicKey);
  const n = safetyNumber(alice, bob);
  assert.match(n, /^\d{60}$/);
  assert.equal(safetyNumber(bob, alice), n);
  assert.notEqual(safetyNumber(alice, mallory), n);
  assert.match(formatSafetyNumber(n), /^(\d{5} ){11}\d{5}$/);
  assert.throws(() => safetyNumber(alice, "not a key"), TypeError);
});
