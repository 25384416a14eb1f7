/**
 * Builds `vectors_v2.json` from the code (internal: `scripts/vectors_v2.ts` writes the file,
 * `vectors_v2_test.ts` checks that the file still equals what the code computes, and
 * docs/vectors_check.py recomputes it independently with libsodium). Deterministic: every
 * "random" value comes from {@linkcode vectorRng} or is fixed here.
 *
 * @module
 */
import { keyPairFromSeed, sign, toX25519PublicKey, toX25519SecretKey } from "./crypto.ts";
import type { KeyPair } from "./crypto.ts";
import { fromBase64, fromHex, toBase64, toHex } from "./encoding.ts";
import { aeadEncrypt } from "./aead.ts";
import {
  concat,
  dh,
  inboxId,
  kdfCk,
  kdfRk,
  LABELS,
  localStorageKey,
  mailboxAuthKeyPair,
  messageKeys,
  pairMailbox,
  pairSecret,
  sessionKey,
  sha256,
  u32,
  x25519KeyPair,
} from "./kdf.ts";
import { sealedBoxSeal } from "./sealed_box.ts";
import { pad, PADDED_SIZES, unpad } from "./padding.ts";
import { decodeHeader, messageAd, type Rng } from "./ratchet.ts";
import {
  newPeerSessions,
  peerDecrypt,
  peerEncrypt,
  type PeerSessions,
  sendingSession,
} from "./peer_sessions.ts";
import { parseRelayUrl } from "./relay_url.ts";
import { encodePayloadV2, parsePayloadV2, type PayloadV2 } from "./payload_v2.ts";
import { parseClientFrameV2, parseServerFrameV2, serializeEnvelopeV2 } from "./frames_v2.ts";
import { pairEnvelope, requestEnvelope } from "./bodies.ts";
import { openMessage } from "./auth_v2.ts";

const ascii = (s: string) => new TextEncoder().encode(s);
const hex = toHex;

/** The identities of the vectors (the same seeds as v1's). */
export const VECTOR_SEEDS: Record<string, string> = {
  alice: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
  bob: "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
  carol: "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};

function identity(name: string): KeyPair {
  return keyPairFromSeed(fromHex(VECTOR_SEEDS[name])!);
}

/**
 * The vectors' randomness: draw `i` of `party` is the first `n` bytes of
 * `SHA-256("chat-p2p/2 vector rng " || party || u32(i))`. Every draw is also recorded.
 */
export function vectorRng(party: string): { rng: Rng; draws: string[] } {
  const draws: string[] = [];
  const rng: Rng = (n) => {
    const out = sha256(concat(ascii(`chat-p2p/2 vector rng ${party}`), u32(draws.length)))
      .slice(0, n);
    draws.push(hex(out));
    return out;
  };
  return { rng, draws };
}

const SENT_AT = "2026-11-30T08:00:00.000Z";
function messageId(label: string): string {
  return hex(sha256(ascii(label)).slice(0, 16));
}
function messagePayload(label: string, text: string): PayloadV2 {
  return { v: 2, kind: "message", id: messageId(label), text, sent_at: SENT_AT };
}

const b64hex = (t: string | null) => (t === null ? null : hex(fromBase64(t)!));

/** A session's ratchet fields in hex, as the vectors list them after every step. */
function sessionDump(ps: PeerSessions, id: string) {
  const s = ps.sessions.find((x) => x.id === id)!;
  return {
    id_hex: b64hex(s.id),
    initiator: s.initiator,
    received: s.received,
    rk_hex: b64hex(s.rk),
    dhs_public_hex: b64hex(s.dhs.public),
    dhs_secret_hex: b64hex(s.dhs.secret),
    dhr_hex: b64hex(s.dhr),
    cks_hex: b64hex(s.cks),
    ckr_hex: b64hex(s.ckr),
    ns: s.ns,
    nr: s.nr,
    pn: s.pn,
    skipped: s.skipped.map((k) => ({ dh_hex: b64hex(k.dh), n: k.n, mk_hex: b64hex(k.mk) })),
    old_dhr_hex: s.old_dhr.map(b64hex),
  };
}

interface Party {
  name: string;
  kp: KeyPair;
  ps: PeerSessions;
  rng: Rng;
  draws: string[];
}

function transcript(
  name: string,
  names: [string, string],
  script: [op: "send" | "receive", party: string, label: string, text?: string][],
) {
  const parties = new Map<string, Party>();
  for (const [me, peer] of [names, [names[1], names[0]]]) {
    const { rng, draws } = vectorRng(`${name}/${me}`);
    const kp = identity(me);
    parties.set(me, {
      name: me,
      kp,
      ps: newPeerSessions(kp.publicKey, identity(peer).publicKey),
      rng,
      draws,
    });
  }
  const sent = new Map<string, { message: Uint8Array; mk: Uint8Array; from: string }>();
  const steps = script.map(([op, who, label, text]) => {
    const p = parties.get(who)!;
    if (op === "send") {
      const payload = messagePayload(label, text!);
      const plaintext = pad(encodePayloadV2(payload));
      const before = sendingSession(p.ps);
      const r = peerEncrypt(p.ps, plaintext, p.kp, p.rng);
      p.ps = r.state;
      const peer = [...parties.keys()].find((n) => n !== who)!;
      const peerKey = identity(peer).publicKey;
      let chainKey = before ? fromBase64(before.cks!)! : new Uint8Array();
      let start;
      if (r.started) {
        const ek = x25519KeyPair(fromHex(p.draws[p.draws.length - 1])!);
        const sk = sessionKey(pairSecret(p.kp, peerKey), p.kp.publicKey, peerKey);
        const dhOut = dh(ek.secretKey, toX25519PublicKey(peerKey))!;
        const first = kdfRk(sk, dhOut);
        chainKey = first.chainKey;
        start = {
          ek_secret_hex: hex(ek.secretKey),
          ek_public_hex: hex(ek.publicKey),
          sk_hex: hex(sk),
          dh_out_hex: hex(dhOut),
          rk_hex: hex(first.rootKey),
          cks_hex: hex(first.chainKey),
        };
      }
      const { messageKey } = kdfCk(chainKey);
      const keys = messageKeys(messageKey);
      const h = decodeHeader(r.message)!;
      sent.set(label, { message: r.message, mk: messageKey, from: who });
      return {
        op,
        party: who,
        label,
        payload_json: new TextDecoder().decode(encodePayloadV2(payload)),
        ...(start ? { session_start: start } : {}),
        session_id_hex: b64hex(r.session),
        header: { type: h.type, dh_hex: hex(h.dh), pn: h.pn, n: h.n },
        message_key_hex: hex(messageKey),
        aead_key_hex: hex(keys.key),
        aead_nonce_hex: hex(keys.nonce),
        ad_hex: hex(messageAd(p.kp.publicKey, peerKey, r.message.subarray(0, 41))),
        message_hex: hex(r.message),
        session_after: sessionDump(p.ps, r.session),
        sending_session_after_hex: b64hex(sendingSession(p.ps)?.id ?? null),
      };
    }
    const m = sent.get(label)!;
    const r = peerDecrypt(p.ps, m.message, p.kp, p.rng);
    const base = { op, party: who, label };
    if (!r.ok) return { ...base, result: r.reason };
    const used = r.state.sessions.find((s) =>
      JSON.stringify(s) !== JSON.stringify(p.ps.sessions.find((x) => x.id === s.id))
    )!;
    p.ps = r.state;
    const u = unpad(r.plaintext);
    return {
      ...base,
      result: "ok",
      payload_json: u.ok ? new TextDecoder().decode(u.value) : null,
      message_key_hex: hex(m.mk),
      session_id_hex: b64hex(used.id),
      session_after: sessionDump(p.ps, used.id),
      sending_session_after_hex: b64hex(sendingSession(p.ps)?.id ?? null),
    };
  });
  return {
    name,
    parties: Object.fromEntries(
      [...parties.values()].map((p) => [p.name, { rng_draws_hex: p.draws }]),
    ),
    steps,
  };
}

function relayUrls() {
  const inputs = [
    "ws://localhost:8080/ws",
    "ws://localhost:80/ws",
    "HTTPS://Relay.Example.COM:443/",
    "http://relay.example:8080",
    "wss://relay.example:80/ws",
    "ws://Relay.EXAMPLE/chat/ws",
    "wss://relay.example/chat/ws/",
    "ws://[0:0:0:0:0:0:0:1]:9000",
    "WS://[2001:DB8:0:0:1:0:0:1]/",
    "ws://[1:0:0:2:0:0:0:3]",
    "ws://[::ffff:192.0.2.1]",
    "ws://xn--bcher-kva.example",
    "ws://relay.example/ws?x=1",
    "ws://relay.example/ws#frag",
    "ws://user@relay.example/ws",
    "ws://relay.example/w%73",
    "ws://bücher.example/ws",
    "ftp://relay.example/ws",
    "relay.example:8080",
    "ws://127.1/",
    "ws://010.0.0.1/",
    "ws://relay.example./",
    "ws://[1::2::3]/",
    "ws://[fe80::1%25eth0]/",
    "ws://relay.example:0/",
    "ws://relay.example:08080/",
    "ws://relay.example:/",
    "ws://relay.example/a/../ws",
    "",
  ];
  return inputs.map((input) => {
    const r = parseRelayUrl(input);
    return r.ok ? { input, normalized: r.value } : { input, normalized: null, message: r.message };
  });
}

function pairs() {
  return [["alice", "bob"], ["alice", "carol"]].map(([a, b]) => {
    const secret = pairSecret(identity(a), identity(b).publicKey);
    return {
      a,
      b,
      pair_secret_hex: hex(secret),
      mailboxes: ([[a, b, 0], [b, a, 0], [a, b, 1]] as const).map(([s, r, epoch]) => {
        const S = identity(s);
        const R = identity(r);
        const m = pairMailbox(S, R.publicKey, "send", epoch, secret);
        const auth = mailboxAuthKeyPair(secret, S.publicKey, R.publicKey, epoch);
        return {
          sender: s,
          recipient: r,
          epoch,
          auth_seed_hex: hex(auth.secretKey.subarray(0, 32)),
          auth_public_key_hex: hex(m.authKeyPair.publicKey),
          auth_public_key_base64: toBase64(m.authKeyPair.publicKey),
          box_key_hex: hex(m.boxKey),
          mailbox_id_hex: hex(m.id),
          mailbox_id_base64: m.idText,
        };
      }),
      session_keys: [[a, b], [b, a]].map(([i, r]) => ({
        initiator: i,
        responder: r,
        sk_hex: hex(sessionKey(secret, identity(i).publicKey, identity(r).publicKey)),
      })),
    };
  });
}

function filled(n: number, byte: number): Uint8Array {
  return new Uint8Array(n).fill(byte);
}

function primitives() {
  const rk = filled(32, 1);
  const dhOut = filled(32, 2);
  const ck = filled(32, 3);
  const mk = filled(32, 4);
  const rkOut = kdfRk(rk, dhOut);
  const ckOut = kdfCk(ck);
  const mkOut = messageKeys(mk);
  const aeadCases = [
    { key: filled(32, 5), nonce: filled(24, 6), ad: new Uint8Array(), plaintext: ascii("") },
    {
      key: filled(32, 7),
      nonce: Uint8Array.from({ length: 24 }, (_, i) => i),
      ad: ascii("chat-p2p/2 msg"),
      plaintext: ascii("XChaCha20-Poly1305, IETF variant"),
    },
  ];
  const eph = x25519KeyPair(filled(32, 8));
  const bobX = toX25519PublicKey(identity("bob").publicKey);
  const sealedPlain = ascii("sealed to bob");
  return {
    kdf_rk: [{
      rk_hex: hex(rk),
      dh_out_hex: hex(dhOut),
      root_key_hex: hex(rkOut.rootKey),
      chain_key_hex: hex(rkOut.chainKey),
    }],
    kdf_ck: [{
      ck_hex: hex(ck),
      message_key_hex: hex(ckOut.messageKey),
      next_chain_key_hex: hex(ckOut.chainKey),
    }],
    message_keys: [{ mk_hex: hex(mk), key_hex: hex(mkOut.key), nonce_hex: hex(mkOut.nonce) }],
    aead: aeadCases.map((c) => ({
      key_hex: hex(c.key),
      nonce_hex: hex(c.nonce),
      ad_hex: hex(c.ad),
      plaintext_hex: hex(c.plaintext),
      ciphertext_hex: hex(aeadEncrypt(c.key, c.nonce, c.plaintext, c.ad)),
    })),
    sealed_boxes: [{
      recipient: "bob",
      recipient_x25519_public_hex: hex(bobX),
      ephemeral_secret_hex: hex(eph.secretKey),
      ephemeral_public_hex: hex(eph.publicKey),
      plaintext_hex: hex(sealedPlain),
      sealed_hex: hex(sealedBoxSeal(sealedPlain, bobX, eph)),
    }],
  };
}

function padding() {
  const short = ascii('{"v":2,"kind":"receipt","ids":["00112233445566778899aabbccddeeff"]}');
  const bad = (why: string, bytes: Uint8Array) => {
    const r = unpad(bytes);
    return { why, padded_hex: hex(bytes), message: r.ok ? null : r.message };
  };
  const nonzero = pad(short);
  nonzero[511] = 1;
  const wrongBucket = new Uint8Array(1024);
  wrongBucket[3] = 5;
  const tooLong = pad(short);
  tooLong[2] = 2;
  return {
    buckets: PADDED_SIZES,
    valid: [{ payload_hex: hex(short), padded_hex: hex(pad(short)) }],
    sizes: [0, 1, 508, 509, 1020, 1021, 65532].map((n) => ({
      payload_length: n,
      padded_length: pad(new Uint8Array(n)).length,
    })),
    too_long: 65533,
    invalid: [
      bad("a padding byte is not zero", nonzero),
      bad("a 5-byte payload belongs in the 512-byte bucket", wrongBucket),
      bad("the length prefix does not fit the bucket", tooLong),
      bad("511 bytes is no bucket", pad(short).subarray(0, 511)),
    ],
  };
}

async function openSignatures(challenge: string) {
  const url = "wss://relay.example/ws";
  const bob = identity("bob");
  const pair = pairMailbox(identity("alice"), bob.publicKey, "send", 0);
  const cases = [
    {
      kind: "inbox" as const,
      owner: { identity: "bob" },
      kp: bob,
      id: toBase64(inboxId(bob.publicKey)),
    },
    {
      kind: "pair" as const,
      owner: { mailbox: { sender: "alice", recipient: "bob", epoch: 0 } },
      kp: pair.authKeyPair,
      id: pair.idText,
    },
  ];
  return await Promise.all(cases.map((c) => {
    const key = toBase64(c.kp.publicKey);
    const message = openMessage(url, challenge, c.kind, key);
    const signature = toBase64(sign(message, c.kp.secretKey));
    return {
      relay_url: url,
      challenge,
      kind: c.kind,
      ...c.owner,
      key_base64: key,
      message_utf8: new TextDecoder().decode(message),
      message_hex: hex(message),
      signature_base64: signature,
      mailbox_id_base64: c.id,
      frame: JSON.stringify({ v: 2, type: "open", kind: c.kind, key, signature }),
    };
  }));
}

function payloads() {
  const ID = messageId("payload");
  const valid = [
    {
      name: "message",
      json: `{"v":2,"kind":"message","id":"${ID}","text":"hello bob","sent_at":"${SENT_AT}"}`,
    },
    {
      name: "message with receipts",
      json:
        `{"v":2,"kind":"message","id":"${ID}","text":"héllo ✓ 👋","sent_at":"2026-11-30T09:00:00+01:00","receipts":["${ID}"]}`,
    },
    { name: "receipt", json: `{"v":2,"kind":"receipt","ids":["${ID}","${messageId("other")}"]}` },
    { name: "rotate", json: `{"v":2,"kind":"rotate","epoch":1}` },
  ];
  const invalid = [
    { name: "not json", json: "{" },
    { name: "v1", json: `{"v":1,"kind":"message","text":"x","sent_at":"${SENT_AT}"}` },
    { name: "unknown kind", json: `{"v":2,"kind":"poll"}` },
    {
      name: "upper-case id",
      json: `{"v":2,"kind":"message","id":"${ID.toUpperCase()}","text":"x","sent_at":"${SENT_AT}"}`,
    },
    {
      name: "bad time",
      json: `{"v":2,"kind":"message","id":"${ID}","text":"x","sent_at":"today"}`,
    },
    { name: "empty receipt", json: `{"v":2,"kind":"receipt","ids":[]}` },
    { name: "envelope id in receipt", json: `{"v":2,"kind":"receipt","ids":["env-00000001"]}` },
    { name: "negative epoch", json: `{"v":2,"kind":"rotate","epoch":-1}` },
  ].map((c) => {
    const p = parsePayloadV2(ascii(c.json));
    return { ...c, code: p.ok ? null : p.code, message: p.ok ? null : p.message };
  });
  return { valid, invalid };
}

function frames(envelope: string, key: string, mailbox: string, challenge: string) {
  const sig = toBase64(filled(64, 7));
  const env = JSON.parse(envelope);
  const check =
    (parse: typeof parseClientFrameV2 | typeof parseServerFrameV2) =>
    (c: { name: string; json: string }) => {
      const p = parse(c.json);
      return { ...c, code: p.ok ? null : p.code, message: p.ok ? null : p.message };
    };
  const j = (o: unknown) => JSON.stringify(o);
  return {
    client_frames: {
      valid: [
        { name: "send to a pair mailbox", json: j({ v: 2, type: "send", envelope: env }) },
        { name: "open", json: j({ v: 2, type: "open", kind: "pair", key, signature: sig }) },
        { name: "ack", json: j({ v: 2, type: "ack", mailbox, ids: [env.id] }) },
        { name: "ping", json: j({ v: 2, type: "ping", nonce: "n-1" }) },
      ],
      invalid: [
        {
          name: "v1 auth",
          json: j({ v: 1, type: "auth", key, relay: "ws://h/ws", signature: sig }),
        },
        { name: "not json", json: "{" },
        { name: "no type", json: j({ v: 2 }) },
        { name: "relay frame", json: j({ v: 2, type: "deliver", envelope: env }) },
        {
          name: "body of no padded size",
          json: j({ v: 2, type: "send", envelope: { ...env, body: "AAAA" } }),
        },
        { name: "bad key", json: j({ v: 2, type: "send", envelope: env, key: "AAAA" }) },
        { name: "bad kind", json: j({ v: 2, type: "open", kind: "outbox", key, signature: sig }) },
        { name: "ack without mailbox", json: j({ v: 2, type: "ack", ids: [env.id] }) },
        { name: "ack of nothing", json: j({ v: 2, type: "ack", mailbox, ids: [] }) },
      ].map(check(parseClientFrameV2)),
    },
    server_frames: {
      valid: [
        { name: "hello", json: j({ v: 2, type: "hello", challenge }) },
        {
          name: "hello with the relay's frame limit",
          json: j({ v: 2, type: "hello", challenge, max_frame_bytes: 131072 }),
        },
        { name: "opened", json: j({ v: 2, type: "opened", mailbox }) },
        { name: "deliver", json: `{"v":2,"type":"deliver","envelope":${envelope}}` },
        { name: "synced", json: j({ v: 2, type: "synced", mailbox, count: 1 }) },
        { name: "accepted", json: j({ v: 2, type: "accepted", id: env.id }) },
        {
          name: "error",
          json: j({
            v: 2,
            type: "error",
            code: "unknown_mailbox",
            message: "no such mailbox",
            id: env.id,
          }),
        },
      ],
      invalid: [
        { name: "v1 challenge", json: j({ v: 1, type: "challenge", challenge, expires_in_ms: 1 }) },
        {
          name: "short challenge",
          json: j({ v: 2, type: "hello", challenge: toBase64(filled(16, 1)) }),
        },
        {
          name: "frame limit not a whole number",
          json: j({ v: 2, type: "hello", challenge, max_frame_bytes: 0.5 }),
        },
        { name: "client frame", json: j({ v: 2, type: "ack", mailbox, ids: [env.id] }) },
        { name: "negative count", json: j({ v: 2, type: "synced", mailbox, count: -1 }) },
      ].map(check(parseServerFrameV2)),
    },
  };
}

/** Every v2 vector, as `vectors_v2.json` holds them. */
export async function buildVectorsV2(): Promise<Record<string, unknown>> {
  const names = Object.keys(VECTOR_SEEDS);
  const t1 = transcript("alice-bob", ["alice", "bob"], [
    ["send", "alice", "a0", "hello bob"],
    ["send", "alice", "a1", "second of the first flight"],
    ["send", "alice", "a2", "third of the first flight"],
    ["receive", "bob", "a0"],
    ["receive", "bob", "a2"],
    ["receive", "bob", "a1"],
    ["receive", "bob", "a1"],
    ["send", "bob", "b0", "hi alice"],
    ["receive", "alice", "b0"],
    ["send", "alice", "a3", "after the reply"],
    ["send", "alice", "a4", "this one is lost"],
    ["send", "alice", "a5", "this one overtakes"],
    ["receive", "bob", "a5"],
    ["receive", "bob", "a3"],
    ["receive", "alice", "a3"],
    ["send", "bob", "b1", "got them"],
    ["receive", "alice", "b1"],
    ["receive", "alice", "b1"],
  ]);
  const t2 = transcript("simultaneous", ["alice", "bob"], [
    ["send", "alice", "s-a0", "alice starts"],
    ["send", "bob", "s-b0", "bob starts too"],
    ["receive", "alice", "s-b0"],
    ["receive", "bob", "s-a0"],
    ["send", "alice", "s-a1", "alice again"],
    ["send", "bob", "s-b1", "bob again"],
    ["receive", "bob", "s-a1"],
    ["receive", "alice", "s-b1"],
  ]);
  const a0 = fromHex((t1.steps[0] as { message_hex: string }).message_hex)!;
  const alice = identity("alice");
  const bob = identity("bob");
  const mailbox = pairMailbox(alice, bob.publicKey, "send", 0);
  const nonce = filled(24, 9);
  const eph = x25519KeyPair(filled(32, 10));
  const pairEnv = pairEnvelope(mailbox, a0, "vector-pair-0001", nonce);
  const reqEnv = requestEnvelope(bob.publicKey, alice.publicKey, a0, "vector-request-0001", eph);
  const envelopes = [
    {
      name: "pair",
      from_step: { transcript: "alice-bob", label: "a0" },
      sender: "alice",
      recipient: "bob",
      epoch: 0,
      nonce_hex: hex(nonce),
      body_hex: hex(fromBase64(pairEnv.body)!),
      envelope_json: serializeEnvelopeV2(pairEnv),
      send_frame: JSON.stringify({ v: 2, type: "send", envelope: pairEnv }),
    },
    {
      name: "request",
      from_step: { transcript: "alice-bob", label: "a0" },
      sender: "alice",
      recipient: "bob",
      ephemeral_secret_hex: hex(eph.secretKey),
      sealed_plaintext_hex: hex(concat(Uint8Array.of(2), alice.publicKey, a0)),
      body_hex: hex(fromBase64(reqEnv.body)!),
      envelope_json: serializeEnvelopeV2(reqEnv),
      send_frame: JSON.stringify({
        v: 2,
        type: "send",
        envelope: reqEnv,
        key: toBase64(bob.publicKey),
      }),
    },
  ];
  const challenge = toBase64(Uint8Array.from({ length: 32 }, (_, i) => 0x40 + i));
  return {
    description:
      "chat-p2p protocol v2 golden vectors, produced by protocol/_vectors_v2.ts, checked by " +
      "protocol/vectors_v2_test.ts and recomputed independently (libsodium via PyNaCl, hashlib) " +
      "by docs/vectors_check.py. Byte strings are lower-case hex (*_hex) or standard padded " +
      "base64 (*_base64); text is UTF-8. docs/PROTOCOL.md says what each construct is.",
    protocol_version: 2,
    identities: names.map((n) => {
      const k = identity(n);
      return {
        name: n,
        seed_hex: VECTOR_SEEDS[n],
        public_key_hex: hex(k.publicKey),
        public_key_base64: toBase64(k.publicKey),
        x25519_public_key_hex: hex(toX25519PublicKey(k.publicKey)),
        x25519_secret_key_hex: hex(toX25519SecretKey(k.secretKey)),
      };
    }),
    labels: LABELS,
    pairs: pairs(),
    inboxes: names.map((n) => ({
      identity: n,
      inbox_id_hex: hex(inboxId(identity(n).publicKey)),
      inbox_id_base64: toBase64(inboxId(identity(n).publicKey)),
    })),
    local_storage_keys: names.map((n) => ({
      identity: n,
      key_hex: hex(localStorageKey(fromHex(VECTOR_SEEDS[n])!)),
    })),
    ...primitives(),
    padding: padding(),
    relay_urls: relayUrls(),
    open_signatures: await openSignatures(challenge),
    payloads: payloads(),
    ...frames(
      envelopes[0].envelope_json,
      toBase64(mailbox.authKeyPair.publicKey),
      mailbox.idText,
      challenge,
    ),
    ratchet: {
      rng: "Each party's random draws, in order: draw i of party P is the first n bytes of " +
        "SHA-256('chat-p2p/2 vector rng ' || P || u32(i)), P = '<transcript>/<name>'; all " +
        "draws here are 32-byte X25519 secrets (new ratchet keys and session ephemerals).",
      transcripts: [t1, t2],
    },
    envelopes,
  };
}
