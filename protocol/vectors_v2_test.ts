/**
 * Checks vectors_v2.json against the code: the file must equal what the code computes now (so
 * any change to a v2 byte shows up here), and the vectors must mean what docs/PROTOCOL.md says,
 * checked through the public API. docs/vectors_check.py recomputes them with libsodium.
 */
import assert from "node:assert/strict";
import vectors from "./vectors_v2.json" with { type: "json" };
import { buildVectorsV2, VECTOR_SEEDS } from "./_vectors_v2.ts";
import {
  fromBase64,
  fromHex,
  keyPairFromSeed,
  normalizeRelayUrlV2,
  type OpenFrame,
  openPairEnvelope,
  openRequestEnvelope,
  pairMailbox,
  parseClientFrameV2,
  parseEnvelopeV2,
  parsePayloadV2,
  parseServerFrameV2,
  PROTOCOL_VERSION_V2,
  toHex,
  verifyOpenFrame,
} from "./mod.ts";

const enc = new TextEncoder();
const kp = (name: string) => keyPairFromSeed(fromHex(VECTOR_SEEDS[name])!);

Deno.test("vectors v2: the file is exactly what the code computes", async () => {
  assert.deepEqual(await buildVectorsV2(), vectors);
  assert.equal(vectors.protocol_version, PROTOCOL_VERSION_V2);
});

Deno.test("vectors v2: each direction's mailbox is derived alike by its two parties", () => {
  for (const pair of vectors.pairs) {
    for (const m of pair.mailboxes) {
      const r = pairMailbox(kp(m.recipient), kp(m.sender).publicKey, "receive", m.epoch);
      assert.equal(r.idText, m.mailbox_id_base64);
      assert.equal(toHex(r.boxKey), m.box_key_hex);
    }
  }
});

Deno.test("vectors v2: the transcripts open every message once and converge", () => {
  for (const t of vectors.ratchet.transcripts) {
    const sent = new Map<string, string>();
    for (const s of t.steps) {
      if (s.op === "send") sent.set(s.label, s.payload_json!);
      else if (s.result === "ok") assert.equal(s.payload_json, sent.get(s.label), s.label);
    }
    const last = new Map(
      t.steps.filter((s) => s.sending_session_after_hex).map((s) => [
        s.party,
        s.sending_session_after_hex,
      ]),
    );
    assert.equal(new Set(last.values()).size, 1, `${t.name}: both sides send on one session`);
  }
  const results = vectors.ratchet.transcripts[0].steps.map((s) => s.result ?? "sent");
  assert.deepEqual(results.filter((r) => r !== "sent" && r !== "ok"), [
    "replay",
    "auth_failed",
    "replay",
  ]);
});

Deno.test("vectors v2: envelopes parse and open for their recipient", () => {
  const [pair, request] = vectors.envelopes;
  const pe = parseEnvelopeV2(JSON.parse(pair.envelope_json));
  const re = parseEnvelopeV2(JSON.parse(request.envelope_json));
  assert.ok(pe.ok && re.ok);
  const a0 = vectors.ratchet.transcripts[0].steps[0].message_hex;
  const inbox = pairMailbox(kp("bob"), kp("alice").publicKey, "receive", 0);
  assert.equal(toHex(openPairEnvelope(inbox, pe.value)!), a0);
  const opened = openRequestEnvelope(kp("bob"), re.value);
  assert.ok(opened.ok);
  assert.equal(toHex(opened.message), a0);
  assert.equal(toHex(opened.sender), toHex(kp("alice").publicKey));
  for (const e of vectors.envelopes) assert.ok(parseClientFrameV2(e.send_frame).ok, e.name);
});

Deno.test("vectors v2: open signatures verify for the mailbox they name", async () => {
  for (const o of vectors.open_signatures) {
    const f = parseClientFrameV2(o.frame);
    assert.ok(f.ok && f.value.type === "open");
    const id = await verifyOpenFrame(f.value as OpenFrame, o.relay_url, o.challenge);
    assert.equal(id, o.mailbox_id_base64);
  }
});

Deno.test("vectors v2: relay URLs, payloads and frames", () => {
  for (const u of vectors.relay_urls) {
    assert.equal(normalizeRelayUrlV2(u.input), u.normalized ?? undefined, u.input);
  }
  for (const p of vectors.payloads.valid) {
    assert.deepEqual(parsePayloadV2(enc.encode(p.json)), { ok: true, value: JSON.parse(p.json) });
  }
  for (
    const [parse, set] of [
      [parseClientFrameV2, vectors.client_frames],
      [parseServerFrameV2, vectors.server_frames],
    ] as const
  ) {
    for (const f of set.valid) assert.ok(parse(f.json).ok, f.name);
    for (const f of set.invalid) {
      const p = parse(f.json);
      assert.deepEqual(p.ok ? "ok" : [p.code, p.message], [f.code, f.message], f.name);
    }
  }
  assert.ok(vectors.envelopes.every((e) => fromBase64(JSON.parse(e.envelope_json).body)));
});
