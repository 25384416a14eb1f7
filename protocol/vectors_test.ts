/**
 * Checks every golden vector in vectors.json against the code. The same file is checked against
 * libsodium by docs/vectors_check.py; other implementations should check it too.
 */
import assert from "node:assert/strict";
import vectors from "./vectors.json" with { type: "json" };
import {
  fingerprint,
  fromBase64,
  keyPairFromSeed,
  open,
  sealWithNonce,
  sharedKey,
  sign,
  toBase64,
  toHex,
  toX25519PublicKey,
  toX25519SecretKey,
  verify,
} from "./mod.ts";
import { openEnvelope, sealEnvelope } from "./mod.ts";
import {
  authMessage,
  normalizeRelayUrl,
  parseClientFrame,
  type Parsed,
  parseEnvelope,
  parsePayload,
  parseServerFrame,
  type Payload,
  PROTOCOL_VERSION,
} from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function fromHex(hex: string): Uint8Array {
  assert.match(hex, /^(?:[0-9a-f]{2})*$/);
  return new Uint8Array((hex.match(/../g) ?? []).map((h) => parseInt(h, 16)));
}

const keys = new Map(
  vectors.identities.map((i) => [i.name, keyPairFromSeed(fromHex(i.seed_hex))]),
);
function kp(name: string) {
  const k = keys.get(name);
  assert.ok(k, `no identity ${name}`);
  return k;
}

function expectFail<T>(p: Parsed<T>, code: string, name: string): void {
  assert.equal(p.ok, false, `${name}: expected ${code}, parsed ok`);
  assert.equal(!p.ok && p.code, code, `${name}: ${!p.ok && p.message}`);
}

Deno.test("vectors: file shape", () => {
  assert.equal(vectors.protocol_version, PROTOCOL_VERSION);
  assert.ok(vectors.identities.length >= 3);
  assert.ok(vectors.boxes.length >= 3);
  assert.ok(vectors.auth.length >= 2);
  assert.ok(vectors.client_frames.invalid.length > 20);
  assert.ok(vectors.server_frames.invalid.length > 10);
});

Deno.test("vectors: identities (seed -> key, fingerprint, X25519 conversion)", () => {
  for (const id of vectors.identities) {
    const k = kp(id.name);
    assert.equal(toHex(k.publicKey), id.public_key_hex, id.name);
    assert.equal(toBase64(k.publicKey), id.public_key_base64, id.name);
    assert.deepEqual(fromBase64(id.public_key_base64), fromHex(id.public_key_hex), id.name);
    assert.equal(fingerprint(k.publicKey), id.fingerprint, id.name);
    assert.equal(toHex(toX25519PublicKey(k.publicKey)), id.x25519_public_key_hex, id.name);
    assert.equal(toHex(toX25519SecretKey(k.secretKey)), id.x25519_secret_key_hex, id.name);
  }
});

Deno.test("vectors: shared keys, from both sides", () => {
  for (const s of vectors.shared_keys) {
    assert.equal(toHex(sharedKey(kp(s.a).secretKey, kp(s.b).publicKey)), s.shared_key_hex);
    assert.equal(toHex(sharedKey(kp(s.b).secretKey, kp(s.a).publicKey)), s.shared_key_hex);
  }
});

Deno.test("vectors: sealed boxes with fixed nonces", () => {
  for (const box of vectors.boxes) {
    const sender = kp(box.sender);
    const recipient = kp(box.recipient);
    const plain = enc.encode(box.payload_json);
    assert.equal(toHex(plain), box.payload_utf8_hex, box.id);
    const nonce = fromHex(box.nonce_hex);
    assert.equal(toBase64(nonce), box.nonce_base64, box.id);
    const sealed = sealWithNonce(plain, nonce, recipient.publicKey, sender.secretKey);
    assert.equal(toHex(sealed.ciphertext), box.ciphertext_hex, box.id);
    assert.equal(toBase64(sealed.ciphertext), box.ciphertext_base64, box.id);
    assert.equal(sealed.ciphertext.length, plain.length + 16, box.id);
    const opened = open(
      { nonce, ciphertext: fromHex(box.ciphertext_hex) },
      sender.publicKey,
      recipient.secretKey,
    );
    assert.equal(opened && dec.decode(opened), box.payload_json, box.id);
  }
});

Deno.test("vectors: box envelopes parse and open to the payload", () => {
  for (const box of vectors.boxes) {
    const env = parseEnvelope(box.envelope);
    assert.ok(env.ok, box.id);
    assert.deepEqual(env.value, {
      v: 1,
      id: box.id,
      from: toBase64(kp(box.sender).publicKey),
      to: toBase64(kp(box.recipient).publicKey),
      nonce: box.nonce_base64,
      ciphertext: box.ciphertext_base64,
    });
    const opened = openEnvelope(env.value, kp(box.recipient));
    const payload = parsePayload(enc.encode(box.payload_json));
    assert.ok(payload.ok, box.id);
    assert.deepEqual(opened, { ok: true, value: payload.value }, box.id);
    // sealEnvelope of the same payload opens to the same thing (with a random nonce).
    const again = sealEnvelope(
      payload.value as Payload,
      kp(box.sender),
      env.value.to,
      box.id,
    );
    assert.deepEqual(openEnvelope(again, kp(box.recipient)), opened, box.id);
  }
});

Deno.test("vectors: auth messages and signatures", () => {
  for (const a of vectors.auth) {
    const k = kp(a.identity);
    assert.equal(normalizeRelayUrl(a.relay_url_input), a.relay_url);
    assert.equal(a.key, toBase64(k.publicKey));
    const msg = authMessage(a.relay_url, a.challenge, a.key);
    assert.equal(dec.decode(msg), a.message_utf8);
    assert.equal(toHex(msg), a.message_hex);
    assert.equal(a.message_utf8, `chat-p2p-auth/1\n${a.relay_url}\n${a.challenge}\n${a.key}`);
    const sig = sign(msg, k.secretKey);
    assert.equal(toBase64(sig), a.signature_base64);
    assert.equal(verify(msg, fromBase64(a.signature_base64)!, k.publicKey), true);
    const frame = parseClientFrame(a.frame);
    assert.deepEqual(frame, {
      ok: true,
      value: { v: 1, type: "auth", key: a.key, relay: a.relay_url, signature: a.signature_base64 },
    });
  }
});

Deno.test("vectors: relay URL normalisation", () => {
  for (const u of vectors.relay_urls) {
    assert.equal(normalizeRelayUrl(u.input), u.normalized ?? undefined, u.input);
  }
});

Deno.test("vectors: base64", () => {
  for (const b of vectors.base64.valid) {
    assert.equal(toHex(fromBase64(b.text)!), b.hex, b.text);
    assert.equal(toBase64(fromHex(b.hex)), b.text, b.text);
  }
  for (const b of vectors.base64.invalid) {
    assert.equal(fromBase64(b.text), undefined, `${JSON.stringify(b.text)}: ${b.why}`);
  }
});

Deno.test("vectors: client frames", () => {
  for (const f of vectors.client_frames.valid) {
    const p = parseClientFrame(f.json);
    assert.ok(p.ok, `${f.name}: ${!p.ok && p.message}`);
  }
  for (const f of vectors.client_frames.invalid) {
    expectFail(parseClientFrame(f.json), f.code, f.name);
  }
});

Deno.test("vectors: server frames", () => {
  for (const f of vectors.server_frames.valid) {
    const p = parseServerFrame(f.json);
    assert.ok(p.ok, `${f.name}: ${!p.ok && p.message}`);
    // Valid frames round-trip (known fields only are present in these samples).
    assert.deepEqual(p.value, JSON.parse(f.json), f.name);
  }
  for (const f of vectors.server_frames.invalid) {
    expectFail(parseServerFrame(f.json), f.code, f.name);
  }
});

Deno.test("vectors: payloads", () => {
  for (const f of vectors.payloads.valid) {
    const p = parsePayload(enc.encode(f.json));
    assert.ok(p.ok, `${f.name}: ${!p.ok && p.message}`);
    assert.deepEqual(p.value, JSON.parse(f.json), f.name);
  }
  for (const f of vectors.payloads.invalid) {
    expectFail(parsePayload(enc.encode(f.json)), f.code, f.name);
  }
});
