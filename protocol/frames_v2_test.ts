import assert from "node:assert/strict";
import {
  BODY_SIZES,
  deliverFrameText,
  type EnvelopeV2,
  errorFrameV2,
  generateKeyPair,
  MAX_FRAME_BYTES_V2,
  PADDED_SIZES,
  parseClientFrameV2,
  type Parsed,
  parseEnvelopeV2,
  parseServerFrameV2,
  REQUEST_BODY_OVERHEAD,
  serializeEnvelopeV2,
  toBase64,
} from "./mod.ts";

const KEY = toBase64(generateKeyPair().publicKey);
const MAILBOX = toBase64(new Uint8Array(32).fill(3));
const SIG = toBase64(new Uint8Array(64).fill(7));
const CHALLENGE = toBase64(new Uint8Array(32).fill(1));
const BODY = toBase64(new Uint8Array(512 + 97).fill(9));
const ENV: EnvelopeV2 = { v: 2, id: "env-00000001", to: MAILBOX, body: BODY };

const client = (o: unknown) => parseClientFrameV2(typeof o === "string" ? o : JSON.stringify(o));
const server = (o: unknown) => parseServerFrameV2(typeof o === "string" ? o : JSON.stringify(o));

function fails<T>(p: Parsed<T>, code: string, message: string | RegExp, id?: string): void {
  if (p.ok) assert.fail(`expected ${code}, parsed ${JSON.stringify(p.value)}`);
  assert.equal(p.code, code, p.message);
  if (typeof message === "string") assert.equal(p.message, message);
  else assert.match(p.message, message);
  assert.equal(p.id, id);
}

Deno.test("frames v2: every valid frame parses to itself", () => {
  const clientFrames = [
    { v: 2, type: "send", envelope: ENV },
    { v: 2, type: "send", envelope: ENV, key: KEY },
    { v: 2, type: "open", kind: "inbox", key: KEY, signature: SIG },
    { v: 2, type: "open", kind: "pair", key: KEY, signature: SIG },
    { v: 2, type: "ack", mailbox: MAILBOX, ids: ["env-00000001"] },
    { v: 2, type: "ping", nonce: "n" },
    { v: 2, type: "pong" },
  ];
  for (const f of clientFrames) assert.deepEqual(client(f), { ok: true, value: f });
  const serverFrames = [
    { v: 2, type: "hello", challenge: CHALLENGE },
    { v: 2, type: "opened", mailbox: MAILBOX },
    { v: 2, type: "deliver", envelope: ENV },
    { v: 2, type: "synced", mailbox: MAILBOX, count: 0 },
    { v: 2, type: "accepted", id: "env-00000001" },
    errorFrameV2("unknown_mailbox", "no such mailbox", { id: "env-00000001" }),
    errorFrameV2("not_open", "open it first", { mailbox: MAILBOX }),
    errorFrameV2("rate_limited", "slow down", { retry_after_ms: 250 }),
    { v: 2, type: "ping" },
    { v: 2, type: "pong", nonce: "n" },
  ];
  for (const f of serverFrames) assert.deepEqual(server(f), { ok: true, value: f });
});

Deno.test("frames v2: the canonical envelope and deliver text", () => {
  const text = serializeEnvelopeV2({ body: BODY, to: MAILBOX, id: "env-00000001", v: 2 });
  assert.equal(text, `{"v":2,"id":"env-00000001","to":"${MAILBOX}","body":"${BODY}"}`);
  assert.deepEqual(server(deliverFrameText(text)), {
    ok: true,
    value: { v: 2, type: "deliver", envelope: ENV },
  });
  const extra = parseEnvelopeV2({ ...ENV, from: KEY });
  assert.deepEqual(extra, { ok: true, value: ENV }, "unknown fields are dropped");
});

Deno.test("frames v2: body sizes are exactly the padded sizes plus a body overhead", () => {
  assert.equal(BODY_SIZES.length, 16);
  for (const size of PADDED_SIZES) {
    for (const overhead of [97, REQUEST_BODY_OVERHEAD]) {
      assert.ok(BODY_SIZES.includes(size + overhead));
      const body = toBase64(new Uint8Array(size + overhead));
      assert.ok(parseEnvelopeV2({ ...ENV, body }).ok);
      assert.equal(
        parseEnvelopeV2({ ...ENV, body: toBase64(new Uint8Array(size + overhead + 1)) }).ok,
        false,
      );
    }
  }
  // The largest send frame fits the default frame limit.
  const largest = JSON.stringify({
    v: 2,
    type: "send",
    envelope: {
      ...ENV,
      id: "x".repeat(64),
      body: toBase64(new Uint8Array(65536 + REQUEST_BODY_OVERHEAD)),
    },
    key: KEY,
  });
  assert.ok(new TextEncoder().encode(largest).length < MAX_FRAME_BYTES_V2);
});

Deno.test("frames v2: a v1 frame is unsupported_version with an upgrade hint", () => {
  fails(
    client({ v: 1, type: "auth", key: KEY }),
    "unsupported_version",
    "Cannot parse frame: version 1 is not supported (this side speaks 2); " +
      "this relay speaks protocol 2: upgrade chat-p2p to use it",
  );
  fails(
    server({ v: 1, type: "challenge" }),
    "unsupported_version",
    /this relay speaks protocol 1: use a relay that speaks 2, or upgrade this one$/,
  );
  fails(
    client({ v: 3, type: "ping" }),
    "unsupported_version",
    "Cannot parse frame: version 3 is not supported (this side speaks 2)",
  );
});

Deno.test("frames v2: client frame rejections with exact codes and messages", () => {
  fails(client("nope"), "bad_json", "Cannot parse frame: not valid JSON");
  fails(client("[1]"), "bad_frame", "Cannot parse frame: not a JSON object");
  fails(client({ type: "ping" }), "bad_frame", "Cannot parse frame: missing field 'v'");
  fails(client({ v: 2 }), "bad_frame", "Cannot parse frame: missing field 'type'");
  fails(
    client({ v: 2, type: "deliver" }),
    "unknown_type",
    'Cannot parse frame: unknown type "deliver"',
  );
  fails(
    client({ v: 2, type: "send" }),
    "bad_frame",
    "Cannot parse send frame: missing field 'envelope'",
  );
  fails(
    client({ v: 2, type: "send", envelope: { ...ENV, to: KEY.slice(0, 40) } }),
    "bad_frame",
    "Cannot parse envelope: field 'to' is not base64 of 32 bytes",
    "env-00000001",
  );
  fails(
    client({ v: 2, type: "send", envelope: { ...ENV, body: toBase64(new Uint8Array(600)) } }),
    "bad_frame",
    /^Cannot parse envelope: field 'body' is not base64 of a padded body \(609, 650, 1121, /,
    "env-00000001",
  );
  fails(
    client({ v: 2, type: "send", envelope: { ...ENV, id: "short" } }),
    "bad_frame",
    "Cannot parse envelope: field 'id' must be 8-64 of A-Z a-z 0-9 _ -",
  );
  fails(
    client({ v: 2, type: "send", envelope: { ...ENV, v: 1 } }),
    "unsupported_version",
    "Cannot parse envelope: version 1 is not supported (this side speaks 2); " +
      "v1 envelopes cannot be delivered to v2 clients",
    "env-00000001",
  );
  fails(
    client({ v: 2, type: "send", envelope: { ...ENV, body: undefined } }),
    "bad_frame",
    "Cannot parse envelope: missing field 'body'",
    "env-00000001",
  );
  fails(
    client({ v: 2, type: "send", envelope: ENV, key: "AAAA" }),
    "bad_frame",
    "Cannot parse send frame: field 'key' is not a base64 Ed25519 public key",
    "env-00000001",
  );
  fails(
    client({ v: 2, type: "open", kind: "outbox", key: KEY, signature: SIG }),
    "bad_frame",
    'Cannot parse open frame: field \'kind\' must be "inbox" or "pair"',
  );
  fails(
    client({ v: 2, type: "open", kind: "pair", signature: SIG }),
    "bad_frame",
    "Cannot parse open frame: missing field 'key'",
  );
  fails(
    client({ v: 2, type: "open", kind: "pair", key: toBase64(new Uint8Array(32)), signature: SIG }),
    "bad_frame",
    "Cannot parse open frame: field 'key' is not a base64 Ed25519 key",
  );
  fails(
    client({ v: 2, type: "open", kind: "pair", key: KEY, signature: CHALLENGE }),
    "bad_frame",
    "Cannot parse open frame: field 'signature' is not base64 of 64 bytes",
  );
  fails(
    client({ v: 2, type: "ack", ids: ["env-00000001"] }),
    "bad_frame",
    "Cannot parse ack frame: missing field 'mailbox'",
  );
  fails(
    client({ v: 2, type: "ack", mailbox: MAILBOX, ids: [] }),
    "bad_frame",
    "Cannot parse ack frame: field 'ids' must be an array of 1 to 1000 ids",
  );
  fails(
    client({ v: 2, type: "ack", mailbox: MAILBOX, ids: ["bad id!"] }),
    "bad_frame",
    "Cannot parse ack frame: every id must be 8-64 of A-Z a-z 0-9 _ -",
  );
  fails(
    client({ v: 2, type: "ping", nonce: "x".repeat(65) }),
    "bad_frame",
    "Cannot parse ping frame: field 'nonce' must be a short string",
  );
});

Deno.test("frames v2: server frame rejections with exact codes and messages", () => {
  fails(server({ v: 2, type: "send" }), "unknown_type", 'Cannot parse frame: unknown type "send"');
  fails(
    server({ v: 2, type: "hello", challenge: SIG }),
    "bad_frame",
    "Cannot parse hello frame: 'challenge' is not base64 of 32 bytes",
  );
  fails(
    server({ v: 2, type: "synced", mailbox: MAILBOX, count: -1 }),
    "bad_frame",
    "Cannot parse synced frame: field 'count' must be a whole number >= 0",
  );
  fails(
    server({ v: 2, type: "opened", mailbox: "x" }),
    "bad_frame",
    "Cannot parse opened frame: field 'mailbox' is not base64 of 32 bytes",
  );
  fails(
    server({ v: 2, type: "error", code: "x", message: "m", mailbox: "y" }),
    "bad_frame",
    "Cannot parse error frame: field 'mailbox' is not base64 of 32 bytes",
  );
  fails(
    server({ v: 2, type: "error", code: "x", message: "m", retry_after_ms: -5 }),
    "bad_frame",
    "Cannot parse error frame: field 'retry_after_ms' must be a number >= 0",
  );
  assert.ok(server({ v: 2, type: "error", code: "from_the_future", message: "m" }).ok);
});
