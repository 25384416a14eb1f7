import assert from "node:assert/strict";
import { generateKeyPair, toBase64 } from "./mod.ts";
import {
  authMessage,
  CHALLENGE_BYTES,
  CLOSE_CODES,
  DEFAULT_MAX_FRAME_BYTES,
  encodePayload,
  type Envelope,
  ERROR_CODES,
  errorFrame,
  isValidId,
  mailboxIdOf,
  MAX_ACK_IDS,
  MAX_CIPHERTEXT_BYTES,
  MAX_TEXT_CHARS,
  newId,
  normalizeRelayUrl,
  parseClientFrame,
  type Parsed,
  parseEnvelope,
  parsePayload,
  parseServerFrame,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
  serializeEnvelope,
} from "./mod.ts";

const enc = new TextEncoder();
const ALICE = toBase64(generateKeyPair().publicKey);
const BOB = toBase64(generateKeyPair().publicKey);
const SIG = toBase64(new Uint8Array(64).fill(7));
const CHALLENGE = toBase64(new Uint8Array(32).fill(1));

function envelope(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    v: 1,
    id: "env-00000001",
    from: ALICE,
    to: BOB,
    nonce: toBase64(new Uint8Array(24).fill(2)),
    ciphertext: toBase64(new Uint8Array(40).fill(3)),
    ...over,
  };
}

function without(o: Record<string, unknown>, field: string): Record<string, unknown> {
  const copy = { ...o };
  delete copy[field];
  return copy;
}

function assertFail<T>(p: Parsed<T>, code: string, message?: RegExp | string): void {
  assert.equal(p.ok, false, `expected ${code}, got ${JSON.stringify(p)}`);
  if (p.ok) return;
  assert.equal(p.code, code, p.message);
  if (typeof message === "string") assert.equal(p.message, message);
  else if (message) assert.match(p.message, message);
}

function assertOk<T>(p: Parsed<T>): T {
  if (!p.ok) assert.fail(`expected ok, got ${p.code}: ${p.message}`);
  return p.value;
}

const client = (o: unknown) => parseClientFrame(JSON.stringify(o));
const server = (o: unknown) => parseServerFrame(JSON.stringify(o));

/** Every valid frame of each side, as sent on the wire. */
const CLIENT_FRAMES: Record<string, Record<string, unknown>> = {
  auth: { v: 1, type: "auth", key: ALICE, relay: "ws://localhost:8080/ws", signature: SIG },
  send: { v: 1, type: "send", envelope: envelope() },
  ack: { v: 1, type: "ack", ids: ["env-00000001", "env-00000002"] },
  ping: { v: 1, type: "ping", nonce: "p1" },
  pong: { v: 1, type: "pong", nonce: "p1" },
};
const SERVER_FRAMES: Record<string, Record<string, unknown>> = {
  challenge: { v: 1, type: "challenge", challenge: CHALLENGE, expires_in_ms: 10_000 },
  ready: { v: 1, type: "ready", key: ALICE },
  deliver: { v: 1, type: "deliver", envelope: envelope() },
  synced: { v: 1, type: "synced", count: 2 },
  accepted: { v: 1, type: "accepted", id: "env-00000001" },
  error: { v: 1, type: "error", code: "mailbox_full", message: "full", id: "env-00000001" },
  ping: { v: 1, type: "ping", nonce: "p1" },
  pong: { v: 1, type: "pong", nonce: "p1" },
};
/** The fields whose absence each frame type must reject. */
const CLIENT_REQUIRED: Record<string, string[]> = {
  auth: ["v", "type", "key", "relay", "signature"],
  send: ["v", "type", "envelope"],
  ack: ["v", "type", "ids"],
  ping: ["v", "type"],
  pong: ["v", "type"],
};
const SERVER_REQUIRED: Record<string, string[]> = {
  challenge: ["v", "type", "challenge", "expires_in_ms"],
  ready: ["v", "type", "key"],
  deliver: ["v", "type", "envelope"],
  synced: ["v", "type", "count"],
  accepted: ["v", "type", "id"],
  error: ["v", "type", "code", "message"],
  ping: ["v", "type"],
  pong: ["v", "type"],
};

// --- constants ------------------------------------------------------------------------------

Deno.test("protocol constants", () => {
  assert.equal(PROTOCOL_VERSION, 1);
  assert.equal(PROTOCOL_NAME, "chat-p2p");
  assert.equal(CHALLENGE_BYTES, 32);
  assert.equal(DEFAULT_MAX_FRAME_BYTES, 65536);
  assert.equal(MAX_ACK_IDS, 1000);
  assert.equal(MAX_CIPHERTEXT_BYTES, 1048576);
  assert.equal(MAX_TEXT_CHARS, 16384);
});

Deno.test("ERROR_CODES and CLOSE_CODES are the documented sets", () => {
  assert.deepEqual(Object.keys(ERROR_CODES).sort(), [
    "already_authenticated",
    "auth_failed",
    "auth_timeout",
    "bad_frame",
    "bad_json",
    "binary_frame",
    "frame_too_large",
    "internal",
    "mailbox_full",
    "not_authenticated",
    "not_open",
    "rate_limited",
    "spoofed_sender",
    "too_many_mailboxes",
    "unavailable",
    "unknown_mailbox",
    "unknown_type",
    "unsupported_version",
  ]);
  for (const text of Object.values(ERROR_CODES)) assert.ok(text.length > 10);
  assert.deepEqual({ ...CLOSE_CODES }, {
    goingAway: 1001,
    unsupportedData: 1003,
    policy: 1008,
    tooBig: 1009,
    internal: 1011,
    tryAgainLater: 1013,
  });
});

// --- ids ------------------------------------------------------------------------------------

Deno.test("isValidId: 8 to 64 of A-Z a-z 0-9 _ -", () => {
  for (const id of ["abcdefgh", "A".repeat(64), "a-b_c-d_0123", newId()]) {
    assert.equal(isValidId(id), true, id);
  }
  for (
    const id of [
      "abcdefg",
      "A".repeat(65),
      "",
      "has space",
      "dots.are.bad",
      "slash/id1",
      "plus+id12",
      "ünïcode12",
      "abcdefgh\n",
      12345678,
      null,
      undefined,
    ]
  ) {
    assert.equal(isValidId(id), false, JSON.stringify(id));
  }
});

Deno.test("newId: 32 lower-case hex characters, valid and unique", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const id = newId();
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(isValidId(id), true);
    seen.add(id);
  }
  assert.equal(seen.size, 200);
});

// --- envelopes ------------------------------------------------------------------------------

Deno.test("parseEnvelope accepts a valid envelope and drops unknown fields", () => {
  const e = assertOk(parseEnvelope({ ...envelope(), extra: "ignored", sealed_sender: 1 }));
  assert.deepEqual(e, envelope());
});

Deno.test("parseEnvelope rejects non-objects", () => {
  for (const x of [null, undefined, 1, "s", true, [], [envelope()]]) {
    assertFail(parseEnvelope(x), "bad_frame", "Cannot parse envelope: not a JSON object");
  }
});

Deno.test("parseEnvelope: each missing field is bad_frame naming the field", () => {
  for (const f of ["v", "id", "from", "to", "nonce", "ciphertext"]) {
    const p = parseEnvelope(without(envelope(), f));
    assertFail(p, "bad_frame", `Cannot parse envelope: missing field '${f}'`);
    if (!p.ok && f !== "id") assert.equal(p.id, "env-00000001", `id carried when ${f} missing`);
  }
});

Deno.test("parseEnvelope: each wrongly typed field is rejected", () => {
  for (const f of ["id", "from", "to", "nonce", "ciphertext"]) {
    for (const bad of [1, null, true, [], {}]) {
      assertFail(
        parseEnvelope(envelope({ [f]: bad })),
        "bad_frame",
        `Cannot parse envelope: field '${f}' must be a string`,
      );
    }
  }
  for (const bad of ["1", 1.5, 0, null, true, [1]]) {
    assertFail(parseEnvelope(envelope({ v: bad })), "unsupported_version");
  }
});

Deno.test("parseEnvelope: unknown version is unsupported_version and names the id", () => {
  const p = parseEnvelope(envelope({ v: 2 }));
  assertFail(p, "unsupported_version", /version 2 is not supported/);
  assert.equal(!p.ok && p.id, "env-00000001");
  const q = parseEnvelope(envelope({ v: 2, id: "bad id" }));
  assertFail(q, "unsupported_version");
  assert.equal(!q.ok && q.id, undefined);
});

Deno.test("parseEnvelope: invalid id, keys, nonce and ciphertext", () => {
  assertFail(parseEnvelope(envelope({ id: "short" })), "bad_frame", /field 'id'/);
  assertFail(parseEnvelope(envelope({ id: "x".repeat(65) })), "bad_frame", /field 'id'/);
  const cases: [string, unknown, RegExp][] = [
    ["from", "alice", /field 'from'/],
    ["from", toBase64(new Uint8Array(31)), /field 'from'/],
    ["from", ALICE.slice(0, -1), /field 'from'/],
    ["to", toBase64(new Uint8Array(33)), /field 'to'/],
    ["to", ` ${BOB}`, /field 'to'/],
    ["nonce", toBase64(new Uint8Array(23)), /field 'nonce'/],
    ["nonce", toBase64(new Uint8Array(25)), /field 'nonce'/],
    ["nonce", "not base64!", /field 'nonce'/],
    ["ciphertext", toBase64(new Uint8Array(15)), /field 'ciphertext'/],
    ["ciphertext", "", /field 'ciphertext'/],
    ["ciphertext", toBase64(new Uint8Array(MAX_CIPHERTEXT_BYTES + 1)), /field 'ciphertext'/],
    ["ciphertext", "AAAA AAAA", /field 'ciphertext'/],
  ];
  for (const [field, value, re] of cases) {
    const p = parseEnvelope(envelope({ [field]: value }));
    assertFail(p, "bad_frame", re);
    assert.equal(!p.ok && p.id, "env-00000001", `id carried for bad ${field}`);
  }
  assertOk(parseEnvelope(envelope({ ciphertext: toBase64(new Uint8Array(16)) })));
  assertOk(parseEnvelope(envelope({ ciphertext: toBase64(new Uint8Array(MAX_CIPHERTEXT_BYTES)) })));
});

Deno.test("serializeEnvelope: canonical field order, known fields only, parses back", () => {
  const e = { ...envelope(), extra: 1 } as unknown as Envelope;
  const text = serializeEnvelope(e);
  assert.equal(
    text,
    `{"v":1,"id":"env-00000001","from":"${ALICE}","to":"${BOB}","nonce":"${e.nonce}",` +
      `"ciphertext":"${e.ciphertext}"}`,
  );
  assert.deepEqual(assertOk(parseEnvelope(JSON.parse(text))), envelope());
});

Deno.test("mailboxIdOf is the recipient key in v1", () => {
  assert.equal(mailboxIdOf(envelope() as unknown as Envelope), BOB);
});

// --- frames: shared head --------------------------------------------------------------------

const SIDES: [string, (text: string) => Parsed<unknown>][] = [
  ["client", parseClientFrame],
  ["server", parseServerFrame],
];
for (const [side, parse] of SIDES) {
  Deno.test(`${side} frames: not JSON is bad_json`, () => {
    for (const t of ["", "{", "{v:1}", "{'v':1}", "nope", '{"v":1,}', "\u0000", "undefined"]) {
      assertFail(parse(t), "bad_json", "Cannot parse frame: not valid JSON");
    }
  });

  Deno.test(`${side} frames: JSON that is not an object is bad_frame`, () => {
    for (const t of ["[]", "[{}]", "null", "1", "-0.5", '"ping"', "true", "false"]) {
      assertFail(parse(t), "bad_frame", "Cannot parse frame: not a JSON object");
    }
  });

  Deno.test(`${side} frames: version is checked before type`, () => {
    assertFail(parse("{}"), "bad_frame", "Cannot parse frame: missing field 'v'");
    assertFail(parse('{"type":"ping"}'), "bad_frame", "Cannot parse frame: missing field 'v'");
    for (const v of [0, 2, 1.1, -1, "1", null, true, [1], { v: 1 }]) {
      const p = parse(JSON.stringify({ v, type: "ping" }));
      assertFail(p, "unsupported_version", /is not supported \(this side speaks 1\)/);
    }
    assertFail(parse('{"v":2,"type":"nonsense"}'), "unsupported_version");
  });

  Deno.test(`${side} frames: type missing, mistyped or unknown`, () => {
    assertFail(parse('{"v":1}'), "bad_frame", "Cannot parse frame: missing field 'type'");
    for (const type of [1, null, true, [], {}]) {
      assertFail(
        parse(JSON.stringify({ v: 1, type })),
        "bad_frame",
        "Cannot parse frame: field 'type' must be a string",
      );
    }
    for (const type of ["", "PING", "subscribe", "auth ", "__proto__", "constructor"]) {
      assertFail(parse(JSON.stringify({ v: 1, type })), "unknown_type", /unknown type/);
    }
  });

  Deno.test(`${side} frames: ping/pong with and without nonce`, () => {
    for (const type of ["ping", "pong"]) {
      assert.deepEqual(assertOk(parse(JSON.stringify({ v: 1, type }))), { v: 1, type });
      assert.deepEqual(assertOk(parse(JSON.stringify({ v: 1, type, nonce: "x".repeat(64) }))), {
        v: 1,
        type,
        nonce: "x".repeat(64),
      });
      for (const nonce of [1, null, true, [], {}, "x".repeat(65)]) {
        assertFail(parse(JSON.stringify({ v: 1, type, nonce })), "bad_frame", /field 'nonce'/);
      }
    }
  });
}

// --- client frames --------------------------------------------------------------------------

Deno.test("parseClientFrame accepts every client frame type", () => {
  for (const [type, frame] of Object.entries(CLIENT_FRAMES)) {
    assert.deepEqual(assertOk(client(frame)), frame, type);
  }
});

Deno.test("parseClientFrame drops unknown fields", () => {
  const auth = assertOk(client({ ...CLIENT_FRAMES.auth, extra: true }));
  assert.deepEqual(auth, CLIENT_FRAMES.auth);
});

Deno.test("parseClientFrame: each required field missing is rejected", () => {
  for (const [type, fields] of Object.entries(CLIENT_REQUIRED)) {
    for (const f of fields) {
      const p = client(without(CLIENT_FRAMES[type], f));
      assertFail(p, "bad_frame", new RegExp(`missing field '${f}'`));
    }
  }
});

Deno.test("parseClientFrame: each wrongly typed field is rejected", () => {
  for (const f of ["key", "relay", "signature"]) {
    for (const bad of [1, null, true, [], {}]) {
      assertFail(
        client({ ...CLIENT_FRAMES.auth, [f]: bad }),
        "bad_frame",
        `Cannot parse auth frame: field '${f}' must be a string`,
      );
    }
  }
  for (const bad of [1, "text", null, true, []]) {
    const p = client({ ...CLIENT_FRAMES.send, envelope: bad });
    assertFail(p, "bad_frame", /envelope/);
  }
  for (const bad of [1, "env-00000001", null, true, {}]) {
    assertFail(client({ ...CLIENT_FRAMES.ack, ids: bad }), "bad_frame", /field 'ids'/);
  }
});

Deno.test("parseClientFrame auth: key, signature and relay constraints", () => {
  const auth = CLIENT_FRAMES.auth;
  for (const key of ["", "alice", toBase64(new Uint8Array(31)), ALICE.replace("=", "")]) {
    assertFail(client({ ...auth, key }), "bad_frame", /field 'key' is not a base64 32-byte key/);
  }
  for (const signature of ["", toBase64(new Uint8Array(63)), toBase64(new Uint8Array(65)), "x"]) {
    assertFail(client({ ...auth, signature }), "bad_frame", /field 'signature' is not 64 bytes/);
  }
  assertOk(client({ ...auth, relay: "ws://h/" + "a".repeat(2041) }));
  assertFail(client({ ...auth, relay: "ws://h/" + "a".repeat(2042) }), "bad_frame", /too long/);
});

Deno.test("parseClientFrame send: envelope errors come through, with the id", () => {
  const p = client({ v: 1, type: "send", envelope: envelope({ nonce: "AAAA" }) });
  assertFail(p, "bad_frame", /field 'nonce'/);
  assert.equal(!p.ok && p.id, "env-00000001");
  const q = client({ v: 1, type: "send", envelope: envelope({ v: 2 }) });
  assertFail(q, "unsupported_version");
  assert.equal(!q.ok && q.id, "env-00000001");
  const r = client({ v: 1, type: "send", envelope: without(envelope(), "to") });
  assertFail(r, "bad_frame", "Cannot parse envelope: missing field 'to'");
});

Deno.test("parseClientFrame ack: 1 to 1000 valid ids", () => {
  const ids = (n: number) =>
    Array.from({ length: n }, (_, i) => `ack-${String(i).padStart(8, "0")}`);
  assert.deepEqual(assertOk(client({ v: 1, type: "ack", ids: ids(1) })), {
    v: 1,
    type: "ack",
    ids: ids(1),
  });
  assertOk(client({ v: 1, type: "ack", ids: ids(MAX_ACK_IDS) }));
  assertFail(client({ v: 1, type: "ack", ids: ids(MAX_ACK_IDS + 1) }), "bad_frame", /1 to 1000/);
  assertFail(client({ v: 1, type: "ack", ids: [] }), "bad_frame", /1 to 1000/);
  for (const bad of ["short", "bad id!!", 12345678, null, "x".repeat(65)]) {
    assertFail(
      client({ v: 1, type: "ack", ids: ["env-00000001", bad] }),
      "bad_frame",
      /every id must be/,
    );
  }
});

Deno.test("parseClientFrame rejects relay-only frame types", () => {
  for (const type of ["challenge", "ready", "deliver", "synced", "accepted", "error"]) {
    assertFail(
      client(SERVER_FRAMES[type]),
      "unknown_type",
      `Cannot parse frame: unknown type "${type}"`,
    );
  }
});

// --- server frames --------------------------------------------------------------------------

Deno.test("parseServerFrame accepts every server frame type", () => {
  for (const [type, frame] of Object.entries(SERVER_FRAMES)) {
    assert.deepEqual(assertOk(server(frame)), frame, type);
  }
  assert.deepEqual(
    assertOk(
      server({ v: 1, type: "error", code: "rate_limited", message: "m", retry_after_ms: 5 }),
    ),
    { v: 1, type: "error", code: "rate_limited", message: "m", retry_after_ms: 5 },
  );
});

Deno.test("parseServerFrame: each required field missing is rejected", () => {
  for (const [type, fields] of Object.entries(SERVER_REQUIRED)) {
    for (const f of fields) {
      const p = server(without(SERVER_FRAMES[type], f));
      // A synced frame without count says "must be a whole number"; the rest say "missing".
      const want = type === "synced" || type === "challenge" && f === "expires_in_ms"
        ? new RegExp(`'${f}'`)
        : new RegExp(`missing field '${f}'`);
      assertFail(p, "bad_frame", want);
    }
  }
});

Deno.test("parseServerFrame: each wrongly typed field is rejected", () => {
  const cases: [string, string][] = [
    ["challenge", "challenge"],
    ["ready", "key"],
    ["accepted", "id"],
    ["error", "code"],
    ["error", "message"],
  ];
  for (const [type, f] of cases) {
    for (const bad of [1, null, true, [], {}]) {
      assertFail(server({ ...SERVER_FRAMES[type], [f]: bad }), "bad_frame", /must be a string/);
    }
  }
  for (const bad of ["2", null, true, [], {}]) {
    assertFail(
      server({ ...SERVER_FRAMES.synced, count: bad }),
      "bad_frame",
      "Cannot parse synced frame: field 'count' must be a whole number >= 0",
    );
  }
  for (const bad of [1, "text", null, []]) {
    assertFail(server({ ...SERVER_FRAMES.deliver, envelope: bad }), "bad_frame", /envelope/);
  }
});

Deno.test("parseServerFrame challenge: must be base64 of 32 bytes", () => {
  for (const challenge of ["", "abc", toBase64(new Uint8Array(31)), toBase64(new Uint8Array(33))]) {
    assertFail(
      server({ ...SERVER_FRAMES.challenge, challenge }),
      "bad_frame",
      "Cannot parse challenge frame: 'challenge' is not 32 bytes",
    );
  }
});

Deno.test("parseServerFrame deliver: envelope is validated like a sent one", () => {
  assertFail(server({ v: 1, type: "deliver", envelope: envelope({ from: "x" }) }), "bad_frame");
  assertFail(
    server({ v: 1, type: "deliver", envelope: envelope({ v: 2 }) }),
    "unsupported_version",
  );
});

Deno.test("parseServerFrame error: optional id and retry_after_ms", () => {
  const e = assertOk(server({ v: 1, type: "error", code: "internal", message: "m" }));
  assert.deepEqual(e, { v: 1, type: "error", code: "internal", message: "m" });
});

Deno.test("parseServerFrame rejects client-only frame types", () => {
  for (const type of ["auth", "send", "ack"]) {
    assertFail(server(CLIENT_FRAMES[type]), "unknown_type");
  }
});

Deno.test("errorFrame builds an error frame that parses back", () => {
  const f = errorFrame("mailbox_full", "full", { id: "env-00000001" });
  assert.deepEqual(f, {
    v: 1,
    type: "error",
    code: "mailbox_full",
    message: "full",
    id: "env-00000001",
  });
  assert.deepEqual(assertOk(parseServerFrame(JSON.stringify(f))), f);
  assert.deepEqual(errorFrame("bad_json", "m"), {
    v: 1,
    type: "error",
    code: "bad_json",
    message: "m",
  });
  const r = errorFrame("rate_limited", "m", { retry_after_ms: 100 });
  assert.equal(r.retry_after_ms, 100);
});

// --- relay URL and auth message -------------------------------------------------------------

Deno.test("normalizeRelayUrl", () => {
  const cases: [string, string | undefined][] = [
    ["ws://localhost:8080/ws", "ws://localhost:8080/ws"],
    ["ws://localhost:80/ws", "ws://localhost/ws"],
    ["ws://localhost:443/ws", "ws://localhost:443/ws"],
    ["wss://relay.example:443/ws", "wss://relay.example/ws"],
    ["wss://relay.example:80/ws", "wss://relay.example:80/ws"],
    ["http://relay.example", "ws://relay.example/ws"],
    ["http://relay.example:80/", "ws://relay.example/ws"],
    ["https://relay.example/", "wss://relay.example/ws"],
    ["https://relay.example:8443/x", "wss://relay.example:8443/x"],
    ["ws://localhost", "ws://localhost/ws"],
    ["ws://localhost/", "ws://localhost/ws"],
    ["ws://localhost/chat/ws/", "ws://localhost/chat/ws/"],
    ["WS://Relay.EXAMPLE:9000/WS", "ws://relay.example:9000/WS"],
    ["ws://relay.example/ws?token=1", "ws://relay.example/ws"],
    ["ws://relay.example/ws#frag", "ws://relay.example/ws"],
    ["ws://relay.example?x=1", "ws://relay.example/ws"],
    ["ws://127.0.0.1:8080", "ws://127.0.0.1:8080/ws"],
    ["ws://[::1]:8080/ws", "ws://[::1]:8080/ws"],
    ["ftp://relay.example/ws", undefined],
    ["file:///ws", undefined],
    ["mailto:relay@example.com", undefined],
    ["ws://user:pass@relay.example/ws", undefined],
    ["ws://user@relay.example/ws", undefined],
    ["ws://:pass@relay.example/ws", undefined],
    ["relay.example:8080/ws", undefined],
    ["localhost", undefined],
    ["", undefined],
    ["ws://", undefined],
  ];
  for (const [input, want] of cases) assert.equal(normalizeRelayUrl(input), want, input);
  // Normalising is idempotent.
  for (const [, want] of cases) if (want) assert.equal(normalizeRelayUrl(want), want);
});

Deno.test("authMessage: exact bytes", () => {
  const bytes = authMessage("ws://localhost:8080/ws", CHALLENGE, ALICE);
  assert.equal(
    new TextDecoder().decode(bytes),
    `chat-p2p-auth/1\nws://localhost:8080/ws\n${CHALLENGE}\n${ALICE}`,
  );
  const fixed = authMessage("ws://h/ws", "Y2g=", "a2V5");
  assert.deepEqual(
    Array.from(fixed),
    Array.from(enc.encode("chat-p2p-auth/1\nws://h/ws\nY2g=\na2V5")),
  );
  assert.equal(fixed.length, 35);
  assert.equal(fixed[15], 0x0a);
  // UTF-8, not UTF-16 or Latin-1.
  assert.deepEqual(
    Array.from(authMessage("ws://é/ws", "c", "k").subarray(21, 23)),
    [0xc3, 0xa9],
  );
});

// --- payloads -------------------------------------------------------------------------------

const payload = (o: unknown) => parsePayload(enc.encode(JSON.stringify(o)));
const MSG = { v: 1, kind: "message", text: "hi ✓", sent_at: "2025-01-01T00:00:00.000Z" };
const RCPT = {
  v: 1,
  kind: "receipt",
  status: "delivered",
  ids: ["env-00000001"],
  sent_at: "2025-01-01T00:00:01.000Z",
};

Deno.test("parsePayload accepts message and receipt, drops unknown fields", () => {
  assert.deepEqual(assertOk(payload(MSG)), MSG);
  assert.deepEqual(assertOk(payload({ ...MSG, future: 1 })), MSG);
  assert.deepEqual(assertOk(payload(RCPT)), RCPT);
  assert.deepEqual(assertOk(payload({ ...RCPT, ids: [] })), { ...RCPT, ids: [] });
  assertOk(payload({ ...MSG, text: "" }));
  assertOk(payload({ ...MSG, text: "x".repeat(MAX_TEXT_CHARS) }));
});

Deno.test("parsePayload round-trips encodePayload", () => {
  for (const p of [MSG, RCPT]) {
    const bytes = encodePayload(p as Parameters<typeof encodePayload>[0]);
    assert.equal(new TextDecoder().decode(bytes), JSON.stringify(p));
    assert.deepEqual(assertOk(parsePayload(bytes)), p);
  }
});

Deno.test("parsePayload rejects bad bytes, JSON and shapes", () => {
  assertFail(
    parsePayload(new Uint8Array([0xff, 0xfe])),
    "bad_frame",
    "Cannot parse payload: not UTF-8",
  );
  assertFail(parsePayload(enc.encode("{")), "bad_json", "Cannot parse payload: not valid JSON");
  assertFail(parsePayload(new Uint8Array()), "bad_json");
  for (const t of ["[]", "null", "1", '"message"']) {
    assertFail(parsePayload(enc.encode(t)), "bad_frame", "Cannot parse payload: not a JSON object");
  }
  assertFail(payload(without(MSG, "v")), "bad_frame", "Cannot parse payload: missing field 'v'");
  assertFail(payload({ ...MSG, v: 2 }), "unsupported_version");
  assertFail(payload({ ...RCPT, v: 2 }), "unsupported_version");
  assertFail(payload(without(MSG, "sent_at")), "bad_frame", /missing field 'sent_at'/);
  assertFail(payload({ ...MSG, sent_at: 1 }), "bad_frame", /'sent_at' must be a string/);
  assertFail(payload(without(MSG, "text")), "bad_frame", /missing field 'text'/);
  assertFail(payload({ ...MSG, text: 5 }), "bad_frame", /'text' must be a string/);
  assertFail(payload({ ...MSG, text: "x".repeat(MAX_TEXT_CHARS + 1) }), "bad_frame", /too long/);
  assertFail(payload(without(RCPT, "status")), "bad_frame", /'status'/);
  assertFail(payload({ ...RCPT, status: "read" }), "bad_frame", /'status'/);
  assertFail(payload(without(RCPT, "ids")), "bad_frame", /'ids'/);
  assertFail(payload({ ...RCPT, ids: "env-00000001" }), "bad_frame", /'ids'/);
  assertFail(payload({ ...RCPT, ids: ["bad id"] }), "bad_frame", /'ids'/);
  const many = Array.from({ length: MAX_ACK_IDS + 1 }, (_, i) => `r-${String(i).padStart(8, "0")}`);
  assertFail(payload({ ...RCPT, ids: many }), "bad_frame", /'ids'/);
  assertFail(payload({ ...MSG, kind: "key_change" }), "unknown_type", /unknown kind "key_change"/);
  assertFail(payload(without(MSG, "kind")), "unknown_type", /unknown kind/);
});

Deno.test("parseServerFrame: values of the right type but out of range are rejected", () => {
  const bad: Array<[string, Record<string, unknown>]> = [
    ["synced", { count: -1 }],
    ["synced", { count: 1.5 }],
    ["challenge", { expires_in_ms: -5 }],
    ["challenge", { expires_in_ms: "10" }],
    ["ready", { key: "AAAA" }],
    ["accepted", { id: "no spaces allowed" }],
    ["error", { id: 7 }],
    ["error", { retry_after_ms: -1 }],
    ["error", { retry_after_ms: "soon" }],
  ];
  for (const [type, patch] of bad) {
    assertFail(server({ ...SERVER_FRAMES[type], ...patch }), "bad_frame");
  }
});
