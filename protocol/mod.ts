/**
 * The chat-p2p protocol: frames and their strict parser, envelopes, the payload inside the box,
 * relay authentication, and the crypto (Ed25519 identities, `crypto_box`), with golden vectors in
 * `vectors.json`. Nothing here touches sockets, files or the process: the relay and the client
 * library both build on it. docs/PROTOCOL.md is the prose form.
 *
 * @example Seal a message for a contact and open it on the other side
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
