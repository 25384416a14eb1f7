import assert from "node:assert/strict";
import nacl from "tweetnacl";
import {
  base64ByteLength,
  bytesEqual,
  decodePublicKey,
  explainPublicKey,
  fingerprint,
  fromBase64,
  generateKeyPair,
  isPublicKeyText,
  keyPairFromSeed,
  keyPairFromSeedAsync,
  NONCE_BYTES,
  open,
  PUBLIC_KEY_BYTES,
  randomBytes,
  seal,
  sealWithNonce,
  SECRET_KEY_BYTES,
  sharedKey,
  sign,
  signAsync,
  SIGNATURE_BYTES,
  toBase64,
  toHex,
  toX25519PublicKey,
  toX25519SecretKey,
  verify,
} from "./mod.ts";

const enc = new TextEncoder();

function seedOf(byte: number): Uint8Array {
  return new Uint8Array(32).fill(byte);
}

function flipBit(bytes: Uint8Array, index: number, bit = 0): Uint8Array {
  const copy = bytes.slice();
  copy[index] ^= 1 << bit;
  return copy;
}

/** A 32-byte string that is not the encoding of any Ed25519 point. */
function nonPoint(): Uint8Array {
  for (let i = 2; i < 256; i++) {
    const candidate = new Uint8Array(32);
    candidate[0] = i;
    try {
      toX25519PublicKey(candidate);
    } catch {
      return candidate;
    }
  }
  throw new Error("no non-point found");
}

// --- base64 ---------------------------------------------------------------------------------

Deno.test("toBase64/fromBase64 round-trip every length from 0 to 100", () => {
  for (let n = 0; n <= 100; n++) {
    const bytes = randomBytes(n);
    const text = toBase64(bytes);
    assert.equal(text.length, Math.ceil(n / 3) * 4);
    assert.deepEqual(fromBase64(text), bytes);
  }
});

Deno.test("toBase64 handles buffers larger than its chunk size", () => {
  const bytes = randomBytes(200_000);
  const text = toBase64(bytes);
  assert.deepEqual(fromBase64(text), bytes);
});

Deno.test("toBase64 matches RFC 4648 test vectors", () => {
  const cases: [string, string][] = [
    ["", ""],
    ["f", "Zg=="],
    ["fo", "Zm8="],
    ["foo", "Zm9v"],
    ["foob", "Zm9vYg=="],
    ["fooba", "Zm9vYmE="],
    ["foobar", "Zm9vYmFy"],
  ];
  for (const [plain, b64] of cases) {
    assert.equal(toBase64(enc.encode(plain)), b64);
    assert.deepEqual(fromBase64(b64), enc.encode(plain));
  }
  assert.equal(toBase64(new Uint8Array([0xfb, 0xff, 0xbf])), "+/+/");
});

Deno.test("fromBase64 rejects missing or wrong padding", () => {
  for (const t of ["Zg", "Zg=", "Zm8", "Zg===", "Zm8==", "Z===", "=Zg=", "Zg==Zg==", "Z"]) {
    assert.equal(fromBase64(t), undefined, t);
  }
});

Deno.test("fromBase64 rejects characters outside the standard alphabet", () => {
  for (const t of ["Zm9-", "Zm9_", "Zm9v*A==", "Zm9v.A==", "Zm9vä===", "Zm9v\0A=="]) {
    assert.equal(fromBase64(t), undefined, JSON.stringify(t));
  }
});

Deno.test("fromBase64 rejects whitespace anywhere", () => {
  for (const t of [" Zm9v", "Zm9v ", "Zm 9v", "Zm9v\n", "Zm9v\r\nYmFy", "\tZm9v", "Zm9v\u00a0"]) {
    assert.equal(fromBase64(t), undefined, JSON.stringify(t));
  }
});

Deno.test("fromBase64 rejects non-canonical encodings (unused bits set)", () => {
  // "Zg==" is "f"; "Zh==" would decode to the same byte if unused bits were ignored.
  for (const t of ["Zh==", "Zv==", "Zm9=", "Zm+=", "AB==", "AAB="]) {
    assert.equal(fromBase64(t), undefined, t);
  }
  // Every canonical encoding of one and two bytes is accepted and re-encodes to itself.
  for (let a = 0; a < 256; a++) {
    const one = toBase64(new Uint8Array([a]));
    assert.equal(toBase64(fromBase64(one)!), one);
    const two = toBase64(new Uint8Array([a, 255 - a]));
    assert.equal(toBase64(fromBase64(two)!), two);
  }
});

Deno.test("fromBase64 answers undefined for non-strings instead of throwing", () => {
  for (const x of [undefined, null, 42, {}, []]) {
    assert.equal(fromBase64(x as unknown as string), undefined);
  }
});

Deno.test("base64ByteLength agrees with fromBase64 on valid and invalid text", () => {
  for (let n = 0; n <= 100; n++) {
    const t = toBase64(randomBytes(n));
    assert.equal(base64ByteLength(t), n);
    assert.equal(fromBase64(t)?.length, n);
  }
  for (const bad of ["A", "AB=", "AB==C", "AB=A", "A B=", "////_w==", "AAAA\n", "AR=="]) {
    assert.equal(fromBase64(bad), undefined, bad);
    assert.equal(base64ByteLength(bad), undefined, bad);
  }
});

Deno.test("base64ByteLength accepts exactly what the RFC 4648 canonical grammar accepts", () => {
  // The grammar as a regular expression (what the relay used before the table-driven loop): four
  // alphabet characters at a time, then an optional padded last group whose unused bits are zero.
  const grammar =
    /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const odd = ["=", "-", "_", " ", "\n", "\0", "é", "\u{1F600}", "\u0141", "A", "/"];
  const expected = (t: string) =>
    grammar.test(t) ? (t.length / 4) * 3 - (t.split("=").length - 1) : undefined;
  let accepted = 0, refused = 0;
  for (let i = 0; i < 20_000; i++) {
    let t = toBase64(randomBytes(i % 13));
    const edits = randomBytes(1)[0] % 3; // most texts get one or two edits, some none
    for (let e = 0; e < edits; e++) {
      const [where, what, pick] = randomBytes(3);
      const at = t.length === 0 ? 0 : where % (t.length + 1);
      const c = what % 2 === 0 ? alphabet[pick % 64] : odd[pick % odd.length];
      t = what % 3 === 0 ? t.slice(0, at) + c + t.slice(at + 1) : t.slice(0, at) + c + t.slice(at);
    }
    const want = expected(t);
    assert.equal(base64ByteLength(t), want, JSON.stringify(t));
    assert.equal(fromBase64(t)?.length, want, JSON.stringify(t));
    if (want === undefined) refused++;
    else accepted++;
  }
  // Both sides of the boundary were exercised, not just one.
  assert.ok(accepted > 2_000 && refused > 2_000, `${accepted} accepted, ${refused} refused`);
});

Deno.test("isPublicKeyText answers as decodePublicKey does, also when asked again", () => {
  const good = toBase64(generateKeyPair().publicKey);
  const weak = toBase64(new Uint8Array(32));
  for (let i = 0; i < 2; i++) {
    assert.equal(isPublicKeyText(good), true);
    assert.equal(isPublicKeyText(weak), false);
    assert.equal(isPublicKeyText(good.slice(4)), false);
    assert.equal(isPublicKeyText(toBase64(new Uint8Array(31).fill(7))), false);
    assert.equal(isPublicKeyText(good + "A".repeat(100_000)), false);
  }
});

Deno.test("keyPairFromSeedAsync and signAsync (WebCrypto) give tweetnacl's exact bytes", async () => {
  for (let i = 0; i < 20; i++) {
    const seed = randomBytes(32);
    const a = keyPairFromSeed(seed), b = await keyPairFromSeedAsync(seed);
    assert.deepEqual(b.publicKey, a.publicKey);
    assert.deepEqual(b.secretKey, a.secretKey);
    const msg = randomBytes(i * 7);
    assert.deepEqual(await signAsync(msg, b.secretKey), sign(msg, a.secretKey));
  }
  await assert.rejects(keyPairFromSeedAsync(new Uint8Array(31)), /32 bytes/);
});

Deno.test("toHex is lower-case, two digits per byte", () => {
  assert.equal(toHex(new Uint8Array([0, 1, 0xab, 0xff])), "0001abff");
  assert.equal(toHex(new Uint8Array()), "");
});

// --- keys -----------------------------------------------------------------------------------

Deno.test("generateKeyPair gives distinct 32/64-byte keys in tweetnacl layout", () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  assert.equal(a.publicKey.length, PUBLIC_KEY_BYTES);
  assert.equal(a.secretKey.length, SECRET_KEY_BYTES);
  assert.deepEqual(a.secretKey.subarray(32), a.publicKey);
  assert.notDeepEqual(a.publicKey, b.publicKey);
  assert.deepEqual(keyPairFromSeed(a.secretKey.subarray(0, 32)), a);
});

Deno.test("keyPairFromSeed is deterministic", () => {
  assert.deepEqual(keyPairFromSeed(seedOf(7)), keyPairFromSeed(seedOf(7)));
  assert.notDeepEqual(keyPairFromSeed(seedOf(7)).publicKey, keyPairFromSeed(seedOf(8)).publicKey);
});

Deno.test("decodePublicKey accepts exactly base64 of 32 bytes", () => {
  const kp = generateKeyPair();
  assert.deepEqual(decodePublicKey(toBase64(kp.publicKey)), kp.publicKey);
  assert.equal(decodePublicKey(toBase64(new Uint8Array(31))), undefined);
  assert.equal(decodePublicKey(toBase64(new Uint8Array(33))), undefined);
  assert.equal(decodePublicKey(toBase64(kp.publicKey).slice(0, -1)), undefined);
  assert.equal(decodePublicKey(""), undefined);
});

Deno.test("explainPublicKey words each problem exactly", () => {
  assert.equal(explainPublicKey(toBase64(generateKeyPair().publicKey)), undefined);
  assert.equal(explainPublicKey(""), "the key is empty");
  assert.equal(explainPublicKey(undefined as unknown as string), "the key is empty");
  const notB64 = "the key is not standard base64 (A-Z a-z 0-9 + / with = padding)";
  assert.equal(explainPublicKey("not a key"), notB64);
  assert.equal(explainPublicKey(toBase64(new Uint8Array(32)).slice(0, -1)), notB64);
  assert.equal(explainPublicKey(toBase64(new Uint8Array(32)).replace("AAAA", "AA-_")), notB64);
  assert.equal(
    explainPublicKey(toBase64(new Uint8Array(31))),
    "the key decodes to 31 bytes; an Ed25519 public key is 32",
  );
  assert.equal(
    explainPublicKey(toBase64(new Uint8Array(64))),
    "the key decodes to 64 bytes; an Ed25519 public key is 32",
  );
});

// --- signatures -----------------------------------------------------------------------------

Deno.test("sign/verify: a signature verifies for its key and message", () => {
  const kp = generateKeyPair();
  const msg = enc.encode("chat-p2p-auth/1\nws://localhost/ws\nchallenge\nkey");
  const sig = sign(msg, kp.secretKey);
  assert.equal(sig.length, SIGNATURE_BYTES);
  assert.equal(verify(msg, sig, kp.publicKey), true);
  assert.deepEqual(sign(msg, kp.secretKey), sig, "Ed25519 is deterministic");
});

Deno.test("verify is false for a wrong key", () => {
  const kp = generateKeyPair();
  const msg = enc.encode("hello");
  assert.equal(verify(msg, sign(msg, kp.secretKey), generateKeyPair().publicKey), false);
});

Deno.test("verify is false when any byte of the signature is changed", () => {
  const kp = keyPairFromSeed(seedOf(1));
  const msg = enc.encode("hello");
  const sig = sign(msg, kp.secretKey);
  for (let i = 0; i < sig.length; i++) {
    assert.equal(verify(msg, flipBit(sig, i, i % 8), kp.publicKey), false, `byte ${i}`);
  }
});

Deno.test("verify is false when any bit of the message or key is changed", () => {
  const kp = keyPairFromSeed(seedOf(2));
  const msg = enc.encode("short message");
  const sig = sign(msg, kp.secretKey);
  for (let i = 0; i < msg.length; i++) {
    assert.equal(verify(flipBit(msg, i, 7 - (i % 8)), sig, kp.publicKey), false, `msg ${i}`);
  }
  for (let i = 0; i < kp.publicKey.length; i++) {
    assert.equal(verify(msg, sig, flipBit(kp.publicKey, i, i % 8)), false, `key ${i}`);
  }
  assert.equal(verify(enc.encode("short messagE"), sig, kp.publicKey), false);
  assert.equal(verify(enc.encode("short message "), sig, kp.publicKey), false);
});

Deno.test("verify is false (never throws) for wrong lengths and bad points", () => {
  const kp = generateKeyPair();
  const msg = enc.encode("m");
  const sig = sign(msg, kp.secretKey);
  assert.equal(verify(msg, sig.subarray(0, 63), kp.publicKey), false);
  assert.equal(verify(msg, new Uint8Array([...sig, 0]), kp.publicKey), false);
  assert.equal(verify(msg, new Uint8Array(), kp.publicKey), false);
  assert.equal(verify(msg, sig, kp.publicKey.subarray(0, 31)), false);
  assert.equal(verify(msg, sig, new Uint8Array([...kp.publicKey, 0])), false);
  assert.equal(verify(msg, sig, new Uint8Array()), false);
  assert.equal(verify(msg, sig, nonPoint()), false);
  assert.equal(verify(msg, new Uint8Array(64), kp.publicKey), false);
});

// --- Ed25519 -> X25519 and the box ----------------------------------------------------------

Deno.test("X25519 keys converted from one Ed25519 pair belong together", () => {
  for (let s = 0; s < 8; s++) {
    const kp = keyPairFromSeed(seedOf(s * 31));
    const cs = toX25519SecretKey(kp.secretKey);
    const cp = toX25519PublicKey(kp.publicKey);
    assert.equal(cs.length, 32);
    assert.equal(cp.length, 32);
    // Independent route: the X25519 public key of the converted secret key.
    assert.deepEqual(nacl.scalarMult.base(cs), cp);
    // The secret key is SHA-512(seed)[0..32] clamped.
    const h = nacl.hash(kp.secretKey.subarray(0, 32)).subarray(0, 32);
    h[0] &= 248;
    h[31] &= 127;
    h[31] |= 64;
    assert.deepEqual(cs, h);
  }
});

Deno.test("toX25519PublicKey throws for bytes that are not a point", () => {
  assert.throws(() => toX25519PublicKey(nonPoint()), /not a valid Ed25519 point/);
});

Deno.test("sharedKey is the same from either side of the pair", () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const ab = sharedKey(a.secretKey, b.publicKey);
  assert.equal(ab.length, 32);
  assert.deepEqual(sharedKey(b.secretKey, a.publicKey), ab);
  assert.notDeepEqual(sharedKey(a.secretKey, generateKeyPair().publicKey), ab);
});

Deno.test("seal/open round-trips in both directions", () => {
  const alice = generateKeyPair();
  const bob = generateKeyPair();
  const m1 = enc.encode("hello bob");
  const s1 = seal(m1, bob.publicKey, alice.secretKey);
  assert.equal(s1.nonce.length, NONCE_BYTES);
  assert.equal(s1.ciphertext.length, m1.length + 16);
  assert.deepEqual(open(s1, alice.publicKey, bob.secretKey), m1);
  const m2 = enc.encode("hello alice ✓");
  const s2 = seal(m2, alice.publicKey, bob.secretKey);
  assert.deepEqual(open(s2, bob.publicKey, alice.secretKey), m2);
  // The sender can open what it sealed too (same shared key).
  assert.deepEqual(open(s1, bob.publicKey, alice.secretKey), m1);
});

Deno.test("seal of empty and large plaintexts", () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  for (const n of [0, 1, 15, 16, 17, 100_000]) {
    const m = randomBytes(n);
    const s = seal(m, b.publicKey, a.secretKey);
    assert.equal(s.ciphertext.length, n + 16);
    assert.deepEqual(open(s, a.publicKey, b.secretKey), m);
  }
});

Deno.test("seal uses a fresh nonce every time", () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const m = enc.encode("same");
  const s1 = seal(m, b.publicKey, a.secretKey);
  const s2 = seal(m, b.publicKey, a.secretKey);
  assert.notDeepEqual(s1.nonce, s2.nonce);
  assert.notDeepEqual(s1.ciphertext, s2.ciphertext);
});

Deno.test("sealWithNonce is deterministic, matches nacl.box, and opens with open", () => {
  const a = keyPairFromSeed(seedOf(3));
  const b = keyPairFromSeed(seedOf(4));
  const nonce = new Uint8Array(24).fill(9);
  const m = enc.encode("fixed");
  const s1 = sealWithNonce(m, nonce, b.publicKey, a.secretKey);
  const s2 = sealWithNonce(m, nonce, b.publicKey, a.secretKey);
  assert.deepEqual(s1, s2);
  const direct = nacl.box(
    m,
    nonce,
    toX25519PublicKey(b.publicKey),
    toX25519SecretKey(a.secretKey),
  );
  assert.deepEqual(s1.ciphertext, direct);
  assert.deepEqual(open(s1, a.publicKey, b.secretKey), m);
  assert.throws(
    () => sealWithNonce(m, new Uint8Array(23), b.publicKey, a.secretKey),
    /nonce must be 24 bytes/,
  );
});

Deno.test("open: flipping any bit position of the nonce or ciphertext fails", () => {
  const a = keyPairFromSeed(seedOf(5));
  const b = keyPairFromSeed(seedOf(6));
  const m = enc.encode('{"v":1,"kind":"message","text":"tamper me"}');
  const s = seal(m, b.publicKey, a.secretKey);
  assert.deepEqual(open(s, a.publicKey, b.secretKey), m);
  for (let i = 0; i < s.nonce.length; i++) {
    for (const bit of [0, 7]) {
      const nonce = flipBit(s.nonce, i, bit);
      assert.equal(open({ nonce, ciphertext: s.ciphertext }, a.publicKey, b.secretKey), undefined);
    }
  }
  for (let i = 0; i < s.ciphertext.length; i++) {
    for (const bit of [0, 7]) {
      const ciphertext = flipBit(s.ciphertext, i, bit);
      assert.equal(open({ nonce: s.nonce, ciphertext }, a.publicKey, b.secretKey), undefined);
    }
  }
});

Deno.test("open: truncated, extended or short ciphertext fails", () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const s = seal(enc.encode("hi there"), b.publicKey, a.secretKey);
  const cases = [
    s.ciphertext.subarray(0, s.ciphertext.length - 1),
    new Uint8Array([...s.ciphertext, 0]),
    s.ciphertext.subarray(0, 16),
    s.ciphertext.subarray(0, 15),
    new Uint8Array(),
  ];
  for (const ciphertext of cases) {
    assert.equal(open({ nonce: s.nonce, ciphertext }, a.publicKey, b.secretKey), undefined);
  }
});

Deno.test("open: wrong nonce length is undefined, not an exception", () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const s = seal(enc.encode("x"), b.publicKey, a.secretKey);
  for (
    const nonce of [s.nonce.subarray(0, 23), new Uint8Array([...s.nonce, 0]), new Uint8Array()]
  ) {
    assert.equal(open({ nonce, ciphertext: s.ciphertext }, a.publicKey, b.secretKey), undefined);
  }
});

Deno.test("open: wrong recipient key fails", () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const eve = generateKeyPair();
  const s = seal(enc.encode("for bob only"), b.publicKey, a.secretKey);
  assert.equal(open(s, a.publicKey, eve.secretKey), undefined);
});

Deno.test("open: a box does not open under a sender it was not sealed by", () => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const eve = generateKeyPair();
  // Eve seals for Bob; Bob tries it as if it came from Alice.
  const s = seal(enc.encode("I am alice"), b.publicKey, eve.secretKey);
  assert.equal(open(s, a.publicKey, b.secretKey), undefined);
  assert.deepEqual(open(s, eve.publicKey, b.secretKey), enc.encode("I am alice"));
});

Deno.test("open: a sender key that is not a point is undefined, not an exception", () => {
  const b = generateKeyPair();
  const s = seal(enc.encode("x"), b.publicKey, generateKeyPair().secretKey);
  assert.equal(open(s, nonPoint(), b.secretKey), undefined);
  assert.throws(() => seal(enc.encode("x"), nonPoint(), b.secretKey), /not a valid Ed25519 point/);
});

// --- fingerprint, bytesEqual, randomBytes ---------------------------------------------------

Deno.test("fingerprint: five groups of four lower-case hex of SHA-512(key)[0..10]", async () => {
  for (let i = 0; i < 5; i++) {
    const pk = generateKeyPair().publicKey;
    const fp = fingerprint(pk);
    assert.match(fp, /^[0-9a-f]{4}( [0-9a-f]{4}){4}$/);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-512", new Uint8Array(pk)));
    assert.equal(fp.replaceAll(" ", ""), toHex(digest.subarray(0, 10)));
    assert.equal(fingerprint(pk), fp);
  }
  assert.notEqual(
    fingerprint(keyPairFromSeed(seedOf(1)).publicKey),
    fingerprint(keyPairFromSeed(seedOf(2)).publicKey),
  );
});

Deno.test("bytesEqual compares content and length", () => {
  assert.equal(bytesEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3])), true);
  assert.equal(bytesEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 4])), false);
  assert.equal(bytesEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2])), false);
  assert.equal(bytesEqual(new Uint8Array(), new Uint8Array()), true);
  assert.equal(bytesEqual(new Uint8Array(), new Uint8Array([0])), false);
});

Deno.test("randomBytes gives the requested length and differs between calls", () => {
  assert.equal(randomBytes(0).length, 0);
  assert.equal(randomBytes(24).length, 24);
  assert.notDeepEqual(randomBytes(32), randomBytes(32));
});

Deno.test("public keys: small-order and non-canonical encodings are refused, as libsodium does", () => {
  const weak = [
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIA=",
    "JuiVj8KyJ7BFw/SJ8u+Y8NXfrAXTxjM5sTgCiG1T/AU=",
    "xxdqcD1N2E+6PAt2DRBnDyogU/osOczGTsf9d5KsA/o=",
    "7P///////////////////////////////////////38=",
    "7f///////////////////////////////////////38=",
    "7v////////////////////////////////////////8=",
    "8P///////////////////////////////////////38=", // y >= p, not canonical
  ];
  for (const k of weak) {
    assert.equal(decodePublicKey(k), undefined, k);
    assert.match(explainPublicKey(k) ?? "", /not a usable Ed25519 public key/, k);
  }
  for (let i = 0; i < 20; i++) {
    const k = toBase64(generateKeyPair().publicKey);
    assert.ok(decodePublicKey(k), k);
    assert.equal(explainPublicKey(k), undefined, k);
  }
});

Deno.test("verifyAsync (native WebCrypto) agrees with tweetnacl's verify", async () => {
  const { verifyAsync } = await import("./mod.ts");
  for (let i = 0; i < 10; i++) {
    const kp = generateKeyPair();
    const other = generateKeyPair();
    const msg = new TextEncoder().encode(`message ${i}`);
    const sig = sign(msg, kp.secretKey);
    assert.equal(await verifyAsync(msg, sig, kp.publicKey), true);
    assert.equal(await verifyAsync(msg, sig, other.publicKey), false, "wrong key");
    const flipped = sig.slice();
    flipped[i % 64] ^= 1;
    assert.equal(await verifyAsync(msg, flipped, kp.publicKey), verify(msg, flipped, kp.publicKey));
    assert.equal(await verifyAsync(msg, flipped, kp.publicKey), false, "tampered signature");
    const msg2 = msg.slice();
    msg2[0] ^= 1;
    assert.equal(await verifyAsync(msg2, sig, kp.publicKey), false, "tampered message");
  }
  assert.equal(await verifyAsync(new Uint8Array(1), new Uint8Array(63), new Uint8Array(32)), false);
});
