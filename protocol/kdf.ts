/**
 * Protocol v2 key agreement and derivations: SHA-256, HMAC-SHA-256 and HKDF-SHA-256 (RFC 5869)
 * from `@noble/hashes`, X25519 from tweetnacl, and every key and id v2 derives from them — the pair
 * secret, the per-direction mailbox keys and ids, the request inbox id, the ratchet's KDFs and the
 * local-storage key. docs/PROTOCOL.md §3 is the prose form, `vectors_v2.json` holds a vector for
 * each function.
 *
 * Notation as in the spec: `u32(x)` is 4 bytes big-endian, `IK` an Ed25519 identity public key,
 * `ikx` its X25519 form (libsodium `crypto_sign_ed25519_pk_to_curve25519`).
 *
 * @module
 */
import nacl from "tweetnacl";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";

import {
  type KeyPair,
  keyPairFromSeed,
  keyPairFromSeedAsync,
  toX25519PublicKey,
  toX25519SecretKey,
} from "./crypto.ts";
import { PUBLIC_KEY_BYTES, toBase64 } from "./encoding.ts";

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Every label v2 feeds to a hash, as the exact ASCII text (`\0` is the byte 0x00). */
export const LABELS = {
  /** HKDF salt of the mailbox keys and the local-storage key. */
  salt: "chat-p2p/2",
  /** HKDF info prefix of a mailbox's Ed25519 auth seed. */
  mailboxAuth: "mailbox auth",
  /** HKDF info prefix of a mailbox's body key. */
  mailboxBox: "mailbox box",
  /** Hash prefix of a pair mailbox id. */
  pairId: "chat-p2p/2 pair\0",
  /** Hash prefix of a request inbox id. */
  inboxId: "chat-p2p/2 inbox\0",
  /** HKDF info prefix of a session's shared key SK. */
  session: "chat-p2p/2 session",
  /** HKDF info of `KDF_RK`. */
  ratchet: "chat-p2p/2 ratchet",
  /** HKDF info of a message key's AEAD key and nonce. */
  message: "chat-p2p/2 message",
  /** Prefix of a ratchet message's associated data. */
  messageAd: "chat-p2p/2 msg",
  /** HKDF info of the local-storage key. */
  localStorage: "local storage",
} as const;

/** SHA-256 of `data`. */
export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

/** HMAC-SHA-256 of `data` under `key`. */
export function hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(nobleSha256, key, data);
}

/** HKDF-SHA-256 (RFC 5869): extract with `salt`, expand with `info` to `length` bytes. */
export function hkdfSha256(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  return hkdf(nobleSha256, ikm, salt, info, length);
}

/** `u32(x)`: 4 bytes big-endian. Throws for anything but a whole number 0 to 2^32 - 1. */
export function u32(x: number): Uint8Array {
  if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) {
    throw new RangeError(`Cannot encode ${x} as u32: not a whole number from 0 to 4294967295`);
  }
  return Uint8Array.of(x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff);
}

/** Concatenation of byte strings. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** An X25519 key pair (32-byte clamped-on-use secret scalar and its public key). */
export interface X25519KeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** The X25519 key pair of a 32-byte secret (tweetnacl `nacl.box.keyPair.fromSecretKey`). */
export function x25519KeyPair(secretKey: Uint8Array): X25519KeyPair {
  if (secretKey.length !== 32) throw new RangeError("an X25519 secret key is 32 bytes");
  const kp = nacl.box.keyPair.fromSecretKey(secretKey);
  return { publicKey: kp.publicKey, secretKey: kp.secretKey };
}

/** The X25519 form of an Ed25519 identity (`ikx`): libsodium's `..._to_curve25519` pair. */
export function identityX25519(identity: KeyPair): X25519KeyPair {
  return x25519KeyPair(toX25519SecretKey(identity.secretKey));
}

/**
 * `DH(a, B)`: X25519 of my secret and their public key, or `undefined` when the result is all
 * zero (a small-order public key: the "shared" secret would be a public constant).
 */
export function dh(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array | undefined {
  if (secretKey.length !== 32 || publicKey.length !== 32) return undefined;
  const out = nacl.scalarMult(secretKey, publicKey);
  return out.some((b) => b !== 0) ? out : undefined;
}

function checkKey(key: Uint8Array, what: string): void {
  if (key.length !== PUBLIC_KEY_BYTES) throw new RangeError(`${what} must be 32 bytes`);
}

/**
 * `PAIR_SECRET(me, peer) = DH(ikx_secret(me), ikx_public(peer))`: the same 32 bytes on both
 * sides of a pair. Throws when `peer` is not a usable Ed25519 public key.
 *
 * @example Both sides compute the same secret
 * ```ts
 * import { generateKeyPair, pairSecret, toHex } from "@chat-p2p/protocol";
 *
 * const alice = generateKeyPair();
 * const bob = generateKeyPair();
 * console.log(toHex(pairSecret(alice, bob.publicKey)) === toHex(pairSecret(bob, alice.publicKey)));
 * ```
 */
export function pairSecret(me: KeyPair, peer: Uint8Array): Uint8Array {
  checkKey(peer, "the peer's identity key");
  const out = dh(toX25519SecretKey(me.secretKey), toX25519PublicKey(peer));
  if (!out) throw new RangeError("Cannot derive the pair secret: the peer's key has small order");
  return out;
}

function mailboxInfo(label: string, sender: Uint8Array, recipient: Uint8Array, epoch: number) {
  checkKey(sender, "the sender's identity key");
  checkKey(recipient, "the recipient's identity key");
  return concat(ascii(label), sender, recipient, u32(epoch));
}

/**
 * `mailbox_auth_key(S, R, e)`: the Ed25519 key pair (RFC 8032, from a 32-byte seed) that opens
 * the pair mailbox of direction S → R at epoch `e`; its seed is
 * `HKDF(PAIR_SECRET, salt = "chat-p2p/2", info = "mailbox auth" || IK_S || IK_R || u32(e), 32)`.
 */
export function mailboxAuthKeyPair(
  secret: Uint8Array,
  sender: Uint8Array,
  recipient: Uint8Array,
  epoch: number,
): KeyPair {
  return keyPairFromSeed(mailboxAuthSeed(secret, sender, recipient, epoch));
}

function mailboxAuthSeed(
  secret: Uint8Array,
  sender: Uint8Array,
  recipient: Uint8Array,
  epoch: number,
): Uint8Array {
  const info = mailboxInfo(LABELS.mailboxAuth, sender, recipient, epoch);
  return hkdfSha256(secret, ascii(LABELS.salt), info, 32);
}

/**
 * `mailbox_box_key(S, R, e) = HKDF(PAIR_SECRET, salt = "chat-p2p/2",
 * info = "mailbox box" || IK_S || IK_R || u32(e), 32)`: the key of the outer layer of every
 * body in that mailbox (see `pairBody`).
 */
export function mailboxBoxKey(
  secret: Uint8Array,
  sender: Uint8Array,
  recipient: Uint8Array,
  epoch: number,
): Uint8Array {
  const info = mailboxInfo(LABELS.mailboxBox, sender, recipient, epoch);
  return hkdfSha256(secret, ascii(LABELS.salt), info, 32);
}

/** `pair_mailbox_id = H("chat-p2p/2 pair\0" || mailbox_auth_public)`: 32 bytes. */
export function pairMailboxId(authPublicKey: Uint8Array): Uint8Array {
  checkKey(authPublicKey, "a mailbox auth key");
  return sha256(concat(ascii(LABELS.pairId), authPublicKey));
}

/**
 * `inbox_id(IK) = H("chat-p2p/2 inbox\0" || IK)`: the public request inbox of an identity (its
 * auth key is the identity key itself).
 */
export function inboxId(identityKey: Uint8Array): Uint8Array {
  checkKey(identityKey, "an identity key");
  return sha256(concat(ascii(LABELS.inboxId), identityKey));
}

/** The two kinds of mailbox: a public request inbox, or a per-pair, per-direction mailbox. */
export type MailboxKind = "inbox" | "pair";

/** The mailbox id a relay computes from an `open` frame's kind and auth public key. */
export function mailboxIdFor(kind: MailboxKind, authPublicKey: Uint8Array): Uint8Array {
  return kind === "inbox" ? inboxId(authPublicKey) : pairMailboxId(authPublicKey);
}

/** `send`: the mailbox I write to (me → peer); `receive`: the one I read (peer → me). */
export type Direction = "send" | "receive";

/** Everything about one pair mailbox that both of its parties can derive. */
export interface PairMailbox {
  direction: Direction;
  epoch: number;
  /** Signs `open` frames for this mailbox. */
  authKeyPair: KeyPair;
  /** Key of the bodies' outer layer. */
  boxKey: Uint8Array;
  /** The 32-byte mailbox id. */
  id: Uint8Array;
  /** The id as the wire carries it (base64). */
  idText: string;
}

/**
 * The pair mailbox of `direction` between me and `peer` at `epoch`: for `send` the sender is
 * me, for `receive` the peer. Pass `secret` ({@linkcode pairSecret}) to skip recomputing it.
 *
 * @example Alice's sending mailbox is Bob's receiving one
 * ```ts
 * import { generateKeyPair, pairMailbox } from "@chat-p2p/protocol";
 *
 * const alice = generateKeyPair();
 * const bob = generateKeyPair();
 * const out = pairMailbox(alice, bob.publicKey, "send", 0);
 * const in_ = pairMailbox(bob, alice.publicKey, "receive", 0);
 * console.log(out.idText === in_.idText); // true
 * ```
 */
export function pairMailbox(
  me: KeyPair,
  peer: Uint8Array,
  direction: Direction,
  epoch: number,
  secret: Uint8Array = pairSecret(me, peer),
): PairMailbox {
  const [sender, recipient] = direction === "send" ? [me.publicKey, peer] : [peer, me.publicKey];
  const authKeyPair = mailboxAuthKeyPair(secret, sender, recipient, epoch);
  return mailboxOf(authKeyPair, secret, sender, recipient, direction, epoch);
}

/**
 * {@linkcode pairMailbox} with the runtime's native Ed25519 for the auth key pair (the same
 * keys, about 1 ms instead of tweetnacl's several): for a client's cold start.
 */
export async function pairMailboxAsync(
  me: KeyPair,
  peer: Uint8Array,
  direction: Direction,
  epoch: number,
  secret: Uint8Array = pairSecret(me, peer),
): Promise<PairMailbox> {
  const [sender, recipient] = direction === "send" ? [me.publicKey, peer] : [peer, me.publicKey];
  const authKeyPair = await keyPairFromSeedAsync(mailboxAuthSeed(secret, sender, recipient, epoch));
  return mailboxOf(authKeyPair, secret, sender, recipient, direction, epoch);
}

function mailboxOf(
  authKeyPair: KeyPair,
  secret: Uint8Array,
  sender: Uint8Array,
  recipient: Uint8Array,
  direction: Direction,
  epoch: number,
): PairMailbox {
  const id = pairMailboxId(authKeyPair.publicKey);
  return {
    direction,
    epoch,
    authKeyPair,
    boxKey: mailboxBoxKey(secret, sender, recipient, epoch),
    id,
    idText: toBase64(id),
  };
}

/**
 * `SK = HKDF(ikm = PAIR_SECRET, salt = 32 zero bytes,
 * info = "chat-p2p/2 session" || IK_initiator || IK_responder, 32)`: a session's first root key.
 */
export function sessionKey(
  secret: Uint8Array,
  initiator: Uint8Array,
  responder: Uint8Array,
): Uint8Array {
  checkKey(initiator, "the initiator's identity key");
  checkKey(responder, "the responder's identity key");
  const info = concat(ascii(LABELS.session), initiator, responder);
  return hkdfSha256(secret, new Uint8Array(32), info, 32);
}

/** `KDF_RK(rk, dh_out) = HKDF(ikm = dh_out, salt = rk, info = "chat-p2p/2 ratchet", 64)`. */
export function kdfRk(rootKey: Uint8Array, dhOut: Uint8Array): {
  rootKey: Uint8Array;
  chainKey: Uint8Array;
} {
  const out = hkdfSha256(dhOut, rootKey, ascii(LABELS.ratchet), 64);
  return { rootKey: out.slice(0, 32), chainKey: out.slice(32) };
}

/** `KDF_CK(ck)`: message key `HMAC(ck, 0x01)`, next chain key `HMAC(ck, 0x02)`. */
export function kdfCk(chainKey: Uint8Array): { chainKey: Uint8Array; messageKey: Uint8Array } {
  return {
    messageKey: hmacSha256(chainKey, Uint8Array.of(1)),
    chainKey: hmacSha256(chainKey, Uint8Array.of(2)),
  };
}

/**
 * The AEAD key and nonce of a message key:
 * `HKDF(ikm = mk, salt = 32 zero bytes, info = "chat-p2p/2 message", 56)` = key (32) || nonce (24).
 */
export function messageKeys(messageKey: Uint8Array): { key: Uint8Array; nonce: Uint8Array } {
  const out = hkdfSha256(messageKey, new Uint8Array(32), ascii(LABELS.message), 56);
  return { key: out.slice(0, 32), nonce: out.slice(32) };
}

/**
 * The key a client encrypts its files with when the identity has a passphrase:
 * `HKDF(ikm = identity seed, salt = "chat-p2p/2", info = "local storage", 32)`.
 */
export function localStorageKey(identitySeed: Uint8Array): Uint8Array {
  if (identitySeed.length !== 32) throw new RangeError("an identity seed is 32 bytes");
  return hkdfSha256(identitySeed, ascii(LABELS.salt), ascii(LABELS.localStorage), 32);
}
