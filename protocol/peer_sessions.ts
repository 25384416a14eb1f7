/**
 * All ratchet sessions with one peer, and the rule that picks the one to send on. Two or more
 * sessions exist when both people start at the same time, or when one of them reinstalled and
 * lost its state (or re-created a session from an old init message). Every session is kept for
 * receiving (at most {@linkcode MAX_SESSIONS_PER_PEER}), and both sides converge on one session
 * after one exchange.
 *
 * The rule (docs/PROTOCOL.md, "Several sessions per peer"):
 *
 * 1. Follow the peer: the session in which a message from the peer last opened with a fresh key
 *    (not a skipped one; a late message does not count) is the *last* session.
 * 2. When the peer's last message there was a normal one (the peer has heard from me in it and
 *    uses it), send on it.
 * 3. Otherwise (it was an init: the peer started that session because it had none it could use,
 *    and has not heard back), or when nothing has opened yet, choose among the last session and
 *    the sessions I started that the peer has not answered: the one whose initiator has the
 *    smaller identity key (bytewise), the most recently created among equals. Both sides apply
 *    the same choice to the same two candidates, so simultaneous starts converge. With no
 *    candidate, start a new session.
 * 4. {@linkcode restartSessions}: a message that the pair mailbox's outer layer authenticated
 *    but that opens in no session shows that the peer sends on a state this side does not share;
 *    forget the last session, so rule 3 sends init messages, which the peer can always open.
 * 5. Beyond {@linkcode MAX_SESSIONS_PER_PEER} sessions, the one the peer used least recently is
 *    dropped; dropped ids are remembered ({@linkcode MAX_RETIRED_SESSIONS}), so a replayed init of
 *    a dropped session is reported as a replay instead of reopening it.
 *
 * Like the ratchet, every function is pure and the state is plain JSON-friendly data.
 *
 * @module
 */
import { type KeyPair, randomBytes } from "./crypto.ts";
import { fromBase64, toBase64 } from "./encoding.ts";
import {
  acceptSession,
  decodeHeader,
  type DecryptResult,
  initiateSession,
  knowsChain,
  ratchetDecrypt,
  ratchetEncrypt,
  type RatchetState,
  type Rng,
} from "./ratchet.ts";

/** Version of the {@linkcode PeerSessions} layout. */
export const PEER_SESSIONS_VERSION = 1;
/** Most sessions kept per peer. */
export const MAX_SESSIONS_PER_PEER = 3;
/** Most ids of dropped sessions remembered per peer. */
export const MAX_RETIRED_SESSIONS = 100;

/** A session with its place among the peer's sessions. */
export interface PeerSession extends RatchetState {
  /** Creation order among this peer's sessions (larger is newer). */
  seq: number;
  /** `rx` of the last message that opened here with a fresh key; 0 for none. */
  last_rx: number;
  /** Whether that message was an init. */
  last_rx_init: boolean;
}

/** Every session with one peer (what a client stores in `sessions/<peer>.json`). */
export interface PeerSessions {
  version: 1;
  /** My identity key (base64). */
  me: string;
  /** The peer's identity key (base64). */
  peer: string;
  /** At most {@linkcode MAX_SESSIONS_PER_PEER}, oldest first. */
  sessions: PeerSession[];
  /** Ids of dropped sessions, oldest first. */
  retired: string[];
  /** Counts messages that opened with a fresh key (the clock of `last_rx`). */
  rx: number;
  /** Sessions whose `last_rx` is at most this are not followed (rule 4). */
  restarted_at: number;
  /** The `seq` of the next session. */
  next_seq: number;
}

/** No sessions yet between `me` and `peer` (identity public keys). */
export function newPeerSessions(me: Uint8Array, peer: Uint8Array): PeerSessions {
  return {
    version: PEER_SESSIONS_VERSION,
    me: toBase64(me),
    peer: toBase64(peer),
    sessions: [],
    retired: [],
    rx: 0,
    restarted_at: 0,
    next_seq: 0,
  };
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/** The session the next message to this peer goes on, or `undefined` when one must be started. */
export function sendingSession(ps: PeerSessions): PeerSession | undefined {
  const last = ps.sessions
    .filter((s) => s.last_rx > ps.restarted_at)
    .sort((a, b) => b.last_rx - a.last_rx)[0];
  if (last && !last.last_rx_init) return last;
  const meFirst = compareBytes(fromBase64(ps.me)!, fromBase64(ps.peer)!) < 0;
  const rank = (s: PeerSession) => (s.initiator === "me") === meFirst ? 0 : 1;
  const unanswered = ps.sessions.filter((s) => s.initiator === "me" && !s.received);
  return [...(last ? [last] : []), ...unanswered]
    .sort((a, b) => rank(a) - rank(b) || b.seq - a.seq)[0];
}

function checkMe(ps: PeerSessions, me: KeyPair): void {
  if (ps.me !== toBase64(me.publicKey)) {
    throw new Error("Cannot use these sessions: they belong to another identity");
  }
}

function addSession(ps: PeerSessions, s: RatchetState): PeerSession {
  const entry: PeerSession = { ...s, seq: ps.next_seq, last_rx: 0, last_rx_init: false };
  ps.next_seq += 1;
  ps.sessions.push(entry);
  if (ps.sessions.length > MAX_SESSIONS_PER_PEER) {
    const keep = new Set([entry.id, sendingSession(ps)?.id]);
    const victim = ps.sessions
      .filter((x) => !keep.has(x.id))
      .sort((a, b) => a.last_rx - b.last_rx || a.seq - b.seq)[0];
    ps.sessions = ps.sessions.filter((x) => x !== victim);
    ps.retired.push(victim.id);
    if (ps.retired.length > MAX_RETIRED_SESSIONS) ps.retired.shift();
  }
  return entry;
}

/**
 * Encrypts the next message to the peer on {@linkcode sendingSession}, starting a session (an
 * ephemeral key from `rng`) when there is none. Persist `state` before sending `message`.
 *
 * @example Alice writes to Bob, Bob opens it
 * ```ts
 * import { generateKeyPair, newPeerSessions, peerDecrypt, peerEncrypt } from "@chat-p2p/protocol";
 *
 * const alice = generateKeyPair();
 * const bob = generateKeyPair();
 * const atAlice = newPeerSessions(alice.publicKey, bob.publicKey);
 * const atBob = newPeerSessions(bob.publicKey, alice.publicKey);
 * const sent = peerEncrypt(atAlice, new TextEncoder().encode("hello"), alice);
 * const got = peerDecrypt(atBob, sent.message, bob);
 * if (got.ok) console.log(new TextDecoder().decode(got.plaintext)); // "hello"
 * ```
 */
export function peerEncrypt(
  ps: PeerSessions,
  plaintext: Uint8Array,
  me: KeyPair,
  rng: Rng = randomBytes,
): { state: PeerSessions; message: Uint8Array; session: string; started: boolean } {
  checkMe(ps, me);
  const next = structuredClone(ps);
  let session = sendingSession(next);
  const started = session === undefined;
  if (!session) session = addSession(next, initiateSession(me, fromBase64(ps.peer)!, rng));
  const r = ratchetEncrypt(session, plaintext);
  next.sessions = next.sessions.map((s) => s.id === r.state.id ? r.state : s);
  return { state: next, message: r.message, session: session.id, started };
}

function opened(ps: PeerSessions, x: PeerSession, init: boolean, fresh: boolean): void {
  if (!fresh) return;
  ps.rx += 1;
  x.last_rx = ps.rx;
  x.last_rx_init = init;
}

/**
 * Decrypts a ratchet message from the peer with whichever session opens it, or with a new
 * responder session when it is the init of a session not seen before. Failures are data: see
 * {@linkcode DecryptResult}; `replay` means the message (or one with its key) already opened.
 */
export function peerDecrypt(
  ps: PeerSessions,
  message: Uint8Array,
  me: KeyPair,
  rng: Rng = randomBytes,
): DecryptResult<PeerSessions> {
  checkMe(ps, me);
  const header = decodeHeader(message);
  if (!header) {
    return { ok: false, reason: "malformed", message: "Cannot decrypt: not a ratchet message" };
  }
  const next = structuredClone(ps);
  const id = toBase64(header.dh);
  const isInit = header.type === "init";
  if (isInit && !ps.sessions.some((s) => s.id === id)) {
    if (ps.retired.includes(id)) {
      return {
        ok: false,
        reason: "replay",
        message: "Cannot decrypt: an init of a session that was closed here (a replay)",
      };
    }
    const r = acceptSession(me, fromBase64(ps.peer)!, message, rng);
    if (!r.ok) return r;
    opened(next, addSession(next, r.state), true, true);
    return { ok: true, state: next, plaintext: r.plaintext };
  }
  const known = (s: PeerSession) => isInit ? s.id === id : knowsChain(s, message);
  const order = [...next.sessions.filter(known), ...next.sessions.filter((s) => !known(s))];
  for (const s of order) {
    if (isInit && !known(s)) break;
    const skipped = s.skipped.some((k) => k.dh === id && k.n === header.n);
    const r = ratchetDecrypt(s, message, rng);
    if (r.ok) {
      next.sessions = next.sessions.map((x) => x.id === s.id ? r.state : x);
      opened(next, r.state, isInit, !skipped);
      return { ok: true, state: next, plaintext: r.plaintext };
    }
    if (known(s) && r.reason !== "auth_failed") return r;
  }
  return {
    ok: false,
    reason: "auth_failed",
    message: "Cannot decrypt: no session with this peer opens the message " +
      "(tampered, reflected, forged, or of a session lost here)",
  };
}

/**
 * Rule 4, recovery from a lost or diverged state: call it when a message that the pair
 * mailbox's outer layer authenticated (so it came from the peer, or is a replay of one of its
 * messages) fails with `auth_failed`. The peer then sends on a session it holds and this side
 * does not (this side lost it, or one of the two re-created it from an old init). The next
 * message goes on a session I started that the peer has not answered, or a new one: init
 * messages, which the peer can always open. Returns `ps` unchanged when the sending session is
 * already such a session, so replayed old messages cannot make this side restart again and again.
 */
export function restartSessions(ps: PeerSessions): PeerSessions {
  const current = sendingSession(ps);
  if (current && current.initiator === "me" && !current.received) return ps;
  return { ...structuredClone(ps), restarted_at: ps.rx };
}
