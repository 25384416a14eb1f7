/**
 * The chat-p2p protocol: frames and their strict parsers, envelopes, payloads, and the crypto,
 * with golden vectors. Nothing here touches sockets, files or the process: the relay and the
 * client library both build on it. docs/PROTOCOL.md is the prose form.
 *
 * Protocol v2 (what the client and relay move to), one small module each:
 *
 * - `kdf.ts`: SHA-256/HMAC/HKDF, X25519, labels, pair secret, mailbox keys and ids, inbox ids,
 *   the ratchet KDFs and the local-storage key.
 * - `aead.ts` (XChaCha20-Poly1305), `sealed_box.ts` (libsodium `crypto_box_seal`),
 *   `padding.ts` (size buckets).
 * - `ratchet.ts` (one Double Ratchet session) and `peer_sessions.ts` (all sessions with a peer
 *   and the rule that picks one): pure functions over JSON-friendly state.
 * - `payload_v2.ts`, `frames_v2.ts` (envelopes, frames, parsers), `auth_v2.ts` (`open`
 *   signatures), `bodies.ts` (pair and request bodies, envelopes), `relay_url.ts` (the URL
 *   grammar); vectors in `vectors_v2.json`.
 *
 * Protocol v1 (`frames.ts`, `payload.ts`, `auth.ts`, `crypto.ts`, `envelope.ts`) stays until
 * the client and relay have switched; `crypto.ts` and `encoding.ts` (identities, base64) serve
 * both.
 *
 * @example v2: Alice writes to Bob through their pair mailbox
 * ```ts
 * import {
 *   generateKeyPair, newMessageId, newPeerSessions, openPairEnvelope, padPayloadV2, pairEnvelope,
 *   pairMailbox, peerDecrypt, peerEncrypt, unpadPayloadV2,
 * } from "@chat-p2p/protocol";
 *
 * const alice = generateKeyPair();
 * const bob = generateKeyPair();
 * const plaintext = padPayloadV2({
 *   v: 2, kind: "message", id: newMessageId(), text: "hi bob", sent_at: new Date().toISOString(),
 * });
 * const sent = peerEncrypt(newPeerSessions(alice.publicKey, bob.publicKey), plaintext, alice);
 * // persist sent.state and the ratchet message, then send the envelope (retries re-wrap it)
 * const envelope = pairEnvelope(pairMailbox(alice, bob.publicKey, "send", 0), sent.message);
 *
 * const inner = openPairEnvelope(pairMailbox(bob, alice.publicKey, "receive", 0), envelope);
 * const got = inner && peerDecrypt(newPeerSessions(bob.publicKey, alice.publicKey), inner, bob);
 * if (got && got.ok) {
 *   const payload = unpadPayloadV2(got.plaintext);
 *   if (payload.ok && payload.value.kind === "message") console.log(payload.value.text);
 * }
 * ```
 *
 * @example v1: seal a message for a contact and open it on the other side
 * ```ts
 * import { generateKeyPair, openEnvelope, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
 *
 * const alice = generateKeyPair();
 * const bob = generateKeyPair();
 * const envelope = sealEnvelope(
 *   { v: 1, kind: "message", text: "hi bob", sent_at: new Date().toISOString() },
 *   alice,
 *   toBase64(bob.publicKey),
 * );
 * const opened = openEnvelope(envelope, bob);
 * if (opened.ok && opened.value.kind === "message") console.log(opened.value.text);
 * ```
 *
 * @example Parse a frame a relay sent
 * ```ts
 * import { parseServerFrame } from "@chat-p2p/protocol";
 *
 * const p = parseServerFrame('{"v":1,"type":"accepted","id":"0123456789abcdef"}');
 * if (p.ok) console.log(p.value.type); // "accepted"
 * else console.error(p.code, p.message);
 * ```
 *
 * @module
 */
export * from "./encoding.ts";
export * from "./errors.ts";
export * from "./frames.ts";
export * from "./payload.ts";
export * from "./auth.ts";
export * from "./crypto.ts";
export * from "./envelope.ts";
// Protocol v2 (docs/PROTOCOL.md); the v1 exports above go once the client and relay use these.
export * from "./kdf.ts";
export * from "./aead.ts";
export * from "./sealed_box.ts";
export * from "./padding.ts";
export * from "./ratchet.ts";
export * from "./peer_sessions.ts";
export * from "./relay_url.ts";
export * from "./payload_v2.ts";
export * from "./frames_v2.ts";
export * from "./auth_v2.ts";
export * from "./bodies.ts";
