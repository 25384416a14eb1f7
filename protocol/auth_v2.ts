/**
 * Opening a mailbox in protocol v2: the exact bytes an `open` frame signs, and signing and
 * checking such a frame. The signature binds the relay's canonical URL (scheme included), the
 * socket's challenge, the mailbox kind and the auth key, so it is worth nothing at another relay,
 * on another socket, or for another mailbox.
 *
 * @module
 */
import { type KeyPair, signAsync, verifyAsync } from "./crypto.ts";
import { fromBase64, toBase64 } from "./encoding.ts";
import type { OpenFrame } from "./frames_v2.ts";
import { mailboxIdFor, type MailboxKind } from "./kdf.ts";

/**
 * The bytes an `open` signs: UTF-8 of
 * `"chat-p2p-open/2\n" + relayUrl + "\n" + challenge + "\n" + kind + "\n" + key`, where
 * `relayUrl` is canonical ({@linkcode parseRelayUrl}), `challenge` the base64 text of the
 * `hello` frame and `key` the base64 auth public key.
 */
export function openMessage(
  relayUrl: string,
  challenge: string,
  kind: MailboxKind,
  key: string,
): Uint8Array {
  return new TextEncoder().encode(`chat-p2p-open/2\n${relayUrl}\n${challenge}\n${kind}\n${key}`);
}

/**
 * The `open` frame for a mailbox: `authKeyPair` is the identity for `inbox`, the mailbox's
 * auth key pair ({@linkcode pairMailbox}) for `pair`.
 *
 * @example Open Bob's request inbox at a relay
 * ```ts
 * import { generateKeyPair, openFrame } from "@chat-p2p/protocol";
 *
 * const bob = generateKeyPair();
 * const challenge = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";
 * const frame = await openFrame("wss://relay.example/ws", challenge, "inbox", bob);
 * console.log(JSON.stringify(frame));
 * ```
 */
export async function openFrame(
  relayUrl: string,
  challenge: string,
  kind: MailboxKind,
  authKeyPair: KeyPair,
): Promise<OpenFrame> {
  const key = toBase64(authKeyPair.publicKey);
  const signature = await signAsync(
    openMessage(relayUrl, challenge, kind, key),
    authKeyPair.secretKey,
  );
  return { v: 2, type: "open", kind, key, signature: toBase64(signature) };
}

/**
 * What a relay does with a parsed `open` frame: verifies the signature for one of its own
 * canonical URLs (never one derived from request headers) and this socket's challenge, and
 * returns the base64 mailbox id the key certifies, or `undefined` (`auth_failed`).
 */
export async function verifyOpenFrame(
  frame: OpenFrame,
  relayUrl: string,
  challenge: string,
): Promise<string | undefined> {
  const key = fromBase64(frame.key);
  const signature = fromBase64(frame.signature);
  if (!key || !signature) return undefined;
  const message = openMessage(relayUrl, challenge, frame.kind, frame.key);
  if (!(await verifyAsync(message, signature, key))) return undefined;
  return toBase64(mailboxIdFor(frame.kind, key));
}
