/**
 * The Double Ratchet of protocol v2, one session: Signal's published algorithm
 * (https://signal.org/docs/specifications/doubleratchet/) with the KDFs of `kdf.ts`,
 * XChaCha20-Poly1305, a 41-byte header and associated data binding both identities in order.
 * Sessions start X3DH-like from the two identities plus the initiator's ephemeral key, with no
 * prekey server. `peer_sessions.ts` keeps several sessions per peer and chooses among them.
 *
 * Every operation is a pure function: it never changes the state it is given and returns the new
 * state, which is plain JSON-friendly data (base64 strings, numbers) with a `version` field. The
 * caller persists the new state before it sends or shows anything, and drops it when the
 * operation fails. Randomness (new ratchet keys) comes in through an `rng` parameter, so vectors
 * are deterministic.
 *
 * A ratchet message is `header (41 bytes) || XChaCha20-Poly1305 ciphertext`, the header being
 * `type (0x01 normal, 0x02 init) || dh_public (32) || u32(pn) || u32(n)`.
 *
 * @module
 */
import { type KeyPair, randomBytes, toX25519PublicKey } from "./crypto.ts";
import { fromBase64, toBase64 } from "./encoding.ts";
import { AEAD_TAG_BYTES, aeadDecrypt, aeadEncrypt } from "./aead.ts";
import {
  concat,
  dh,
  identityX25519,
  kdfCk,
  kdfRk,
  LABELS,
  messageKeys,
  pairSecret,
  sessionKey,
  u32,
  x25519KeyPair,
} from "./kdf.ts";

/** Version of the {@linkcode RatchetState} layout. */
export const RATCHET_STATE_VERSION = 1;
/** Most message keys one chain may skip in one step (messages lost or still on the way). */
export const MAX_SKIP = 1000;
/** Most skipped message keys a session keeps; the oldest are dropped beyond this. */
export const MAX_SKIPPED_KEYS = 2000;
/** How many earlier receiving ratchet keys a session remembers, to report replays as such. */
export const MAX_OLD_RATCHET_KEYS = 50;
/** Length of a ratchet message header. */
export const HEADER_BYTES = 41;
/** Header type byte: a message of an established session. */
export const TYPE_NORMAL = 0x01;
/** Header type byte: a message the initiator sent before it received anything in the session. */
export const TYPE_INIT = 0x02;

/** Source of random bytes (default: the system's CSPRNG). Tests pass a deterministic one. */
export type Rng = (length: number) => Uint8Array;

/** A decoded ratchet message header. */
export interface Header {
  type: "normal" | "init";
  /** The sender's current ratchet public key (for `init`, the session's ephemeral key). */
  dh: Uint8Array;
  /** Length of the sender's previous sending chain. */
  pn: number;
  /** Number of this message in its sending chain. */
  n: number;
}

/** A skipped message key, kept until its message arrives or it is evicted. */
export interface SkippedKey {
  /** Base64 ratchet public key of the chain. */
  dh: string;
  n: number;
  /** Base64 message key. */
  mk: string;
}

/** One Double Ratchet session with one peer, as plain data. All keys are base64. */
export interface RatchetState {
  version: 1;
  /** The session id: the initiator's ephemeral public key (`dh_public` of its init messages). */
  id: string;
  /** My identity key. */
  me: string;
  /** The peer's identity key. */
  peer: string;
  /** Who started the session. */
  initiator: "me" | "peer";
  /** Whether a message of this session has opened here (the initiator then stops sending init). */
  received: boolean;
  /** Root key. */
  rk: string;
  /** My current ratchet key pair. */
  dhs: { public: string; secret: string };
  /** The peer's current ratchet public key; `null` before the first one is known. */
  dhr: string | null;
  /** Sending chain key (`null` only inside the responder's first step). */
  cks: string | null;
  /** Receiving chain key; `null` until the first receiving chain. */
  ckr: string | null;
  /** Messages sent in the current sending chain. */
  ns: number;
  /** Messages received in the current receiving chain. */
  nr: number;
  /** Length of the previous sending chain. */
  pn: number;
  /** Skipped message keys, oldest first, at most {@linkcode MAX_SKIPPED_KEYS}. */
  skipped: SkippedKey[];
  /** Earlier receiving ratchet keys, oldest first, at most {@linkcode MAX_OLD_RATCHET_KEYS}. */
  old_dhr: string[];
}

/** Why a ratchet message did not open. */
export type DecryptFailure =
  /** Too short, or an unknown header type or unusable ratchet key. */
  | "malformed"
  /** Its message key is gone: used already (a replay or duplicate) or discarded. */
  | "replay"
  /** It would skip more than {@linkcode MAX_SKIP} keys of one chain. */
  | "too_many_skipped"
  /** It does not authenticate: tampered, reflected, forged, or of no session held here. */
  | "auth_failed";

/** The result of decrypting: the new state and the plaintext, or the reason it failed. */
export type DecryptResult<S> =
  | { ok: true; state: S; plaintext: Uint8Array }
  | { ok: false; reason: DecryptFailure; message: string };

/** Encodes a header (41 bytes). */
export function encodeHeader(h: Header): Uint8Array {
  if (h.dh.length !== 32) throw new RangeError("a header's ratchet key is 32 bytes");
  return concat(
    Uint8Array.of(h.type === "init" ? TYPE_INIT : TYPE_NORMAL),
    h.dh,
    u32(h.pn),
    u32(h.n),
  );
}

/** Decodes the header at the start of a ratchet message; `undefined` when it is not one. */
export function decodeHeader(message: Uint8Array): Header | undefined {
  if (message.length < HEADER_BYTES) return undefined;
  const t = message[0];
  if (t !== TYPE_NORMAL && t !== TYPE_INIT) return undefined;
  const view = new DataView(message.buffer, message.byteOffset, HEADER_BYTES);
  return {
    type: t === TYPE_INIT ? "init" : "normal",
    dh: message.slice(1, 33),
    pn: view.getUint32(33),
    n: view.getUint32(37),
  };
}

/** `AD = "chat-p2p/2 msg" || IK_sender || IK_recipient || header`. */
export function messageAd(
  sender: Uint8Array,
  recipient: Uint8Array,
  header: Uint8Array,
): Uint8Array {
  return concat(new TextEncoder().encode(LABELS.messageAd), sender, recipient, header);
}

const b64 = toBase64;
function bytes(text: string): Uint8Array {
  const out = fromBase64(text);
  if (!out) throw new TypeError("Cannot use ratchet state: a key is not base64");
  return out;
}

function fail<S>(reason: DecryptFailure, message: string): DecryptResult<S> {
  return { ok: false, reason, message: `Cannot decrypt: ${message}` };
}

/** A session before its first message: no receiving chain, all counters zero. */
function newState(
  me: KeyPair,
  peer: Uint8Array,
  initiator: "me" | "peer",
  keys: Pick<RatchetState, "id" | "rk" | "dhs" | "dhr" | "cks">,
): RatchetState {
  return {
    version: RATCHET_STATE_VERSION,
    me: b64(me.publicKey),
    peer: b64(peer),
    initiator,
    received: false,
    ...keys,
    ckr: null,
    ns: 0,
    nr: 0,
    pn: 0,
    skipped: [],
    old_dhr: [],
  };
}

/**
 * Starts a session as its initiator: `DHs = EK` (a fresh X25519 pair from `rng`),
 * `DHr = ikx_public(peer)`, `RK, CKs = KDF_RK(SK, DH(EK, ikx_public(peer)))`. Its messages are
 * `init` until one of the peer's opens.
 *
 * @example Alice starts a session and Bob answers
 * ```ts
 * import { acceptSession, generateKeyPair, ratchetEncrypt, initiateSession } from "@chat-p2p/protocol";
 *
 * const alice = generateKeyPair();
 * const bob = generateKeyPair();
 * let a = initiateSession(alice, bob.publicKey);
 * const first = ratchetEncrypt(a, new TextEncoder().encode("hi bob"));
 * a = first.state; // persist before sending
 * const opened = acceptSession(bob, alice.publicKey, first.message);
 * if (opened.ok) console.log(new TextDecoder().decode(opened.plaintext)); // "hi bob"
 * ```
 */
export function initiateSession(
  me: KeyPair,
  peer: Uint8Array,
  rng: Rng = randomBytes,
): RatchetState {
  const ek = x25519KeyPair(rng(32));
  const peerX = toX25519PublicKey(peer);
  const out = dh(ek.secretKey, peerX);
  if (!out) throw new RangeError("Cannot start a session: the peer's key has small order");
  const sk = sessionKey(pairSecret(me, peer), me.publicKey, peer);
  const { rootKey, chainKey } = kdfRk(sk, out);
  return newState(me, peer, "me", {
    id: b64(ek.publicKey),
    rk: b64(rootKey),
    dhs: { public: b64(ek.publicKey), secret: b64(ek.secretKey) },
    dhr: b64(peerX),
    cks: b64(chainKey),
  });
}

/**
 * Encrypts the next message. The returned state has moved past the message key used, so
 * encrypting again (with that state) never reuses a key: persist it before sending `message`.
 */
export function ratchetEncrypt<S extends RatchetState>(
  state: S,
  plaintext: Uint8Array,
): { state: S; message: Uint8Array } {
  if (state.cks === null) throw new Error("Cannot encrypt: the session has no sending chain");
  if (state.ns >= 0xffffffff) throw new RangeError("Cannot encrypt: the sending chain is full");
  const s = structuredClone(state);
  const { chainKey, messageKey } = kdfCk(bytes(state.cks));
  const header = encodeHeader({
    type: s.initiator === "me" && !s.received ? "init" : "normal",
    dh: bytes(s.dhs.public),
    pn: s.pn,
    n: s.ns,
  });
  s.cks = b64(chainKey);
  s.ns += 1;
  const { key, nonce } = messageKeys(messageKey);
  const ad = messageAd(bytes(s.me), bytes(s.peer), header);
  return { state: s, message: concat(header, aeadEncrypt(key, nonce, plaintext, ad)) };
}

function openWith<S extends RatchetState>(
  s: S,
  mk: Uint8Array,
  message: Uint8Array,
): DecryptResult<S> {
  const { key, nonce } = messageKeys(mk);
  const header = message.subarray(0, HEADER_BYTES);
  const ad = messageAd(bytes(s.peer), bytes(s.me), header);
  const plaintext = aeadDecrypt(key, nonce, message.subarray(HEADER_BYTES), ad);
  if (!plaintext) {
    return fail("auth_failed", "the message does not authenticate in this session");
  }
  s.received = true;
  return { ok: true, state: s, plaintext };
}

/** Derives and stores the receiving chain's keys up to (excluding) `until`. */
function skipKeys(s: RatchetState, until: number): boolean {
  if (s.ckr === null) return true;
  if (until - s.nr > MAX_SKIP) return false;
  let ck = bytes(s.ckr);
  while (s.nr < until) {
    const next = kdfCk(ck);
    s.skipped.push({ dh: s.dhr!, n: s.nr, mk: b64(next.messageKey) });
    ck = next.chainKey;
    s.nr += 1;
  }
  s.ckr = b64(ck);
  if (s.skipped.length > MAX_SKIPPED_KEYS) s.skipped.splice(0, s.skipped.length - MAX_SKIPPED_KEYS);
  return true;
}

/**
 * Decrypts a message of this session. On success returns the new state (the message key is
 * deleted: the same message never opens twice); on failure the given state stays the one to
 * keep. A DH ratchet step draws a new ratchet key from `rng`.
 */
export function ratchetDecrypt<S extends RatchetState>(
  state: S,
  message: Uint8Array,
  rng: Rng = randomBytes,
): DecryptResult<S> {
  const header = decodeHeader(message);
  if (!header || message.length < HEADER_BYTES + AEAD_TAG_BYTES) {
    return fail("malformed", "not a ratchet message (too short or unknown type)");
  }
  const s = structuredClone(state);
  const dhText = b64(header.dh);
  const at = s.skipped.findIndex((k) => k.dh === dhText && k.n === header.n);
  if (at >= 0) {
    const r = openWith(s, bytes(s.skipped[at].mk), message);
    if (r.ok) r.state.skipped.splice(at, 1);
    return r;
  }
  if ((dhText === s.dhr && header.n < s.nr) || s.old_dhr.includes(dhText)) {
    return fail("replay", "this message's key was already used (a replay or duplicate)");
  }
  if (dhText !== s.dhr) {
    if (!skipKeys(s, header.pn)) {
      return fail("too_many_skipped", `more than ${MAX_SKIP} messages of one chain are missing`);
    }
    if (s.ckr !== null && s.dhr !== null) {
      s.old_dhr.push(s.dhr);
      if (s.old_dhr.length > MAX_OLD_RATCHET_KEYS) s.old_dhr.shift();
    }
    const recv = dh(bytes(s.dhs.secret), header.dh);
    if (!recv) return fail("malformed", "the ratchet key has small order");
    const r1 = kdfRk(bytes(s.rk), recv);
    const next = x25519KeyPair(rng(32));
    const send = dh(next.secretKey, header.dh)!;
    const r2 = kdfRk(r1.rootKey, send);
    s.pn = s.ns;
    s.ns = 0;
    s.nr = 0;
    s.dhr = dhText;
    s.ckr = b64(r1.chainKey);
    s.dhs = { public: b64(next.publicKey), secret: b64(next.secretKey) };
    s.rk = b64(r2.rootKey);
    s.cks = b64(r2.chainKey);
  }
  if (s.ckr === null) return fail("auth_failed", "no receiving chain for this ratchet key");
  if (!skipKeys(s, header.n)) {
    return fail("too_many_skipped", `more than ${MAX_SKIP} messages of one chain are missing`);
  }
  const { chainKey, messageKey } = kdfCk(bytes(s.ckr));
  s.ckr = b64(chainKey);
  s.nr += 1;
  return openWith(s, messageKey, message);
}

/**
 * Creates the responder's side of a session from an `init` message and decrypts it:
 * `DHs = ikx(me)`, `RK = SK`, then the normal DH ratchet step. Returns a state only when the
 * message opens (a forged init creates nothing); the identity's X25519 secret is used for that
 * step and is not in the returned state.
 */
export function acceptSession(
  me: KeyPair,
  peer: Uint8Array,
  message: Uint8Array,
  rng: Rng = randomBytes,
): DecryptResult<RatchetState> {
  const header = decodeHeader(message);
  if (!header || header.type !== "init") {
    return fail("malformed", "a session can only start from an init message");
  }
  const ikx = identityX25519(me);
  const draft = newState(me, peer, "peer", {
    id: b64(header.dh),
    rk: b64(sessionKey(pairSecret(me, peer), peer, me.publicKey)),
    dhs: { public: b64(ikx.publicKey), secret: b64(ikx.secretKey) },
    dhr: null,
    cks: null,
  });
  return ratchetDecrypt(draft, message, rng);
}

/** True when `message`'s header names a chain this session knows (current, earlier or skipped). */
export function knowsChain(state: RatchetState, message: Uint8Array): boolean {
  const header = decodeHeader(message);
  if (!header) return false;
  const d = b64(header.dh);
  return d === state.dhr || state.old_dhr.includes(d) || state.skipped.some((k) => k.dh === d);
}
