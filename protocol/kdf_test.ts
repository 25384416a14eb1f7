import assert from "node:assert/strict";
import {
  dh,
  fromHex,
  generateKeyPair,
  hkdfSha256,
  inboxId,
  kdfCk,
  keyPairFromSeed,
  localStorageKey,
  mailboxBoxKey,
  mailboxIdFor,
  pairMailbox,
  pairMailboxAsync,
  pairMailboxId,
  pairSecret,
  sessionKey,
  toHex,
  u32,
  x25519KeyPair,
} from "./mod.ts";

const alice = keyPairFromSeed(new Uint8Array(32).fill(1));
const bob = keyPairFromSeed(new Uint8Array(32).fill(2));
const carol = keyPairFromSeed(new Uint8Array(32).fill(3));

Deno.test("hkdfSha256 matches RFC 5869 test case 1", () => {
  const okm = hkdfSha256(
    fromHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")!,
    fromHex("000102030405060708090a0b0c")!,
    fromHex("f0f1f2f3f4f5f6f7f8f9")!,
    42,
  );
  assert.equal(
    toHex(okm),
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
  );
});

Deno.test("u32 is big-endian and refuses what does not fit", () => {
  assert.equal(toHex(u32(0x01020304)), "01020304");
  assert.equal(toHex(u32(0xffffffff)), "ffffffff");
  for (const bad of [-1, 0x100000000, 1.5, NaN]) assert.throws(() => u32(bad), RangeError);
});

Deno.test("dh refuses a small-order public key (all-zero output)", () => {
  const me = x25519KeyPair(new Uint8Array(32).fill(9));
  assert.equal(dh(me.secretKey, new Uint8Array(32)), undefined);
  assert.equal(dh(me.secretKey, Uint8Array.from([1, ...new Array(31).fill(0)])), undefined);
  const other = x25519KeyPair(new Uint8Array(32).fill(7));
  assert.deepEqual(dh(me.secretKey, other.publicKey), dh(other.secretKey, me.publicKey));
});

Deno.test("the pair secret is the same from both sides and differs per pair", () => {
  assert.deepEqual(pairSecret(alice, bob.publicKey), pairSecret(bob, alice.publicKey));
  assert.notDeepEqual(pairSecret(alice, bob.publicKey), pairSecret(alice, carol.publicKey));
});

Deno.test("a direction's mailbox is the same for its sender and its recipient", () => {
  for (const epoch of [0, 1, 0xffffffff]) {
    const out = pairMailbox(alice, bob.publicKey, "send", epoch);
    const in_ = pairMailbox(bob, alice.publicKey, "receive", epoch);
    assert.equal(out.idText, in_.idText);
    assert.deepEqual(out.boxKey, in_.boxKey);
    assert.deepEqual(out.authKeyPair.publicKey, in_.authKeyPair.publicKey);
    assert.deepEqual(out.id, pairMailboxId(out.authKeyPair.publicKey));
    assert.deepEqual(mailboxIdFor("pair", out.authKeyPair.publicKey), out.id);
  }
});

Deno.test("the two directions, epochs and pairs all get different mailboxes and keys", () => {
  const ids = new Set<string>();
  const keys = new Set<string>();
  for (const [me, peer] of [[alice, bob], [bob, alice], [alice, carol], [carol, alice]]) {
    for (const epoch of [0, 1]) {
      const m = pairMailbox(me, peer.publicKey, "send", epoch);
      ids.add(m.idText);
      keys.add(toHex(m.boxKey));
      keys.add(toHex(m.authKeyPair.publicKey));
    }
  }
  for (const k of [alice, bob, carol]) ids.add(toHex(inboxId(k.publicKey)));
  assert.equal(ids.size, 8 + 3);
  assert.equal(keys.size, 16);
});

Deno.test("the mailbox box key binds sender and recipient in order", () => {
  const s = pairSecret(alice, bob.publicKey);
  assert.notDeepEqual(
    mailboxBoxKey(s, alice.publicKey, bob.publicKey, 0),
    mailboxBoxKey(s, bob.publicKey, alice.publicKey, 0),
  );
  assert.notDeepEqual(
    sessionKey(s, alice.publicKey, bob.publicKey),
    sessionKey(s, bob.publicKey, alice.publicKey),
  );
});

Deno.test("inbox ids are the inbox kind of mailboxIdFor and differ from pair ids of the key", () => {
  const k = generateKeyPair().publicKey;
  assert.deepEqual(mailboxIdFor("inbox", k), inboxId(k));
  assert.notDeepEqual(inboxId(k), pairMailboxId(k));
  assert.throws(() => inboxId(new Uint8Array(31)), RangeError);
});

Deno.test("kdfCk separates message and chain keys; localStorageKey is 32 bytes per seed", () => {
  const { chainKey, messageKey } = kdfCk(new Uint8Array(32));
  assert.notDeepEqual(chainKey, messageKey);
  assert.equal(localStorageKey(new Uint8Array(32)).length, 32);
  assert.notDeepEqual(
    localStorageKey(new Uint8Array(32)),
    localStorageKey(new Uint8Array(32).fill(1)),
  );
  assert.throws(() => localStorageKey(new Uint8Array(16)), RangeError);
});

Deno.test("pairMailboxAsync derives the same mailbox as pairMailbox", async () => {
  for (const direction of ["send", "receive"] as const) {
    const sync = pairMailbox(alice, bob.publicKey, direction, 7);
    assert.deepEqual(await pairMailboxAsync(alice, bob.publicKey, direction, 7), sync);
  }
});
