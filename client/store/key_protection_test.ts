import assert from "node:assert/strict";
import { scrypt } from "@noble/hashes/scrypt.js";
import { generateKeyPair, toBase64, toHex } from "@chat-p2p/protocol";
import {
  decryptSeed,
  DEFAULT_SCRYPT,
  encryptSeed,
  explainScryptParams,
  parseEncryptedSecretKey,
} from "./key_protection.ts";

/** Cheap parameters: these tests are about the format, not the cost. */
const FAST = { N: 1024, r: 8, p: 1 };

Deno.test("scrypt from @noble/hashes matches RFC 7914's test vector", () => {
  const dk = scrypt("password", "NaCl", { N: 1024, r: 8, p: 16, dkLen: 64 });
  assert.equal(
    toHex(dk),
    "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640",
  );
});

Deno.test("default KDF parameters: scrypt N=2^17, r=8, p=1", () => {
  assert.deepEqual({ ...DEFAULT_SCRYPT }, { N: 131072, r: 8, p: 1 });
  assert.equal(explainScryptParams(DEFAULT_SCRYPT), undefined);
});

Deno.test("encryptSeed/decryptSeed: round trip, wrong passphrase, fresh salt and nonce", () => {
  const seed = generateKeyPair().secretKey.slice(0, 32);
  const enc = encryptSeed(seed, "correct horse battery staple", FAST);
  assert.deepEqual(Object.keys(enc).sort(), ["cipher", "ciphertext", "kdf", "nonce", "v"]);
  assert.deepEqual(
    { ...enc.kdf, salt: undefined },
    { name: "scrypt", N: 1024, r: 8, p: 1, dk_len: 32, salt: undefined },
  );
  assert.equal(atob(enc.kdf.salt).length, 16);
  assert.equal(atob(enc.nonce).length, 24);
  assert.equal(atob(enc.ciphertext).length, 48);
  assert.deepEqual(decryptSeed(enc, "correct horse battery staple"), seed);
  assert.equal(decryptSeed(enc, "correct horse battery stapl"), undefined);
  assert.equal(decryptSeed(enc, ""), undefined);
  const again = encryptSeed(seed, "correct horse battery staple", FAST);
  assert.notEqual(again.kdf.salt, enc.kdf.salt);
  assert.notEqual(again.nonce, enc.nonce);
  assert.notEqual(again.ciphertext, enc.ciphertext);
  assert.ok(!JSON.stringify(enc).includes(toBase64(seed)), "no plaintext seed");
});

Deno.test("decryptSeed: the passphrase is NFC-normalised; a flipped bit does not open", () => {
  const seed = generateKeyPair().secretKey.slice(0, 32);
  const enc = encryptSeed(seed, "caf\u00e9", FAST); // é precomposed
  assert.deepEqual(decryptSeed(enc, "cafe\u0301"), seed, "é as e + combining accent");
  const ct = Uint8Array.from(atob(enc.ciphertext), (c) => c.charCodeAt(0));
  ct[5] ^= 1;
  assert.equal(decryptSeed({ ...enc, ciphertext: toBase64(ct) }, "caf\u00e9"), undefined);
  const other = encryptSeed(seed, "caf\u00e9", FAST);
  assert.equal(decryptSeed({ ...enc, kdf: other.kdf }, "caf\u00e9"), undefined, "salt bound");
});

Deno.test("parseEncryptedSecretKey: accepts what encryptSeed writes, rejects the rest", () => {
  const enc = encryptSeed(new Uint8Array(32), "pw", FAST);
  const ok = parseEncryptedSecretKey(JSON.parse(JSON.stringify(enc)));
  assert.ok(ok.ok);
  assert.deepEqual(ok.value, enc);
  const bad = (patch: Record<string, unknown>, kdf: Record<string, unknown> = {}) =>
    parseEncryptedSecretKey({ ...enc, ...patch, kdf: { ...enc.kdf, ...kdf } });
  const reason = (r: ReturnType<typeof bad>) => (r.ok ? "ok" : r.reason);
  assert.match(reason(bad({ v: 2 })), /unsupported version 2/);
  assert.match(reason(bad({ cipher: "aes" })), /unknown cipher/);
  assert.match(reason(bad({}, { name: "pbkdf2" })), /unknown kdf/);
  assert.match(reason(bad({}, { N: 1000 })), /power of two/);
  assert.match(reason(bad({}, { N: 512 })), /at least 1024/);
  assert.match(reason(bad({}, { N: 2 ** 30 })), /GiB of memory/);
  assert.match(reason(bad({}, { r: 0 })), /r must be/);
  assert.match(reason(bad({}, { p: 100 })), /p must be/);
  assert.match(reason(bad({}, { dk_len: 64 })), /dk_len/);
  assert.match(reason(bad({}, { salt: toBase64(new Uint8Array(8)) })), /salt/);
  assert.match(reason(bad({ nonce: toBase64(new Uint8Array(12)) })), /nonce/);
  assert.match(reason(bad({ ciphertext: "!!" })), /ciphertext/);
  assert.match(reason(parseEncryptedSecretKey("x")), /not an object/);
  assert.throws(() => encryptSeed(new Uint8Array(32), "pw", { N: 3, r: 8, p: 1 }), TypeError);
  assert.throws(() => encryptSeed(new Uint8Array(31), "pw", FAST), TypeError);
});
