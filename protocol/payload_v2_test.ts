import assert from "node:assert/strict";
import {
  encodePayloadV2,
  isMessageId,
  newMessageId,
  padPayloadV2,
  type Parsed,
  parsePayloadV2,
  type PayloadV2,
  unpadPayloadV2,
} from "./mod.ts";

const enc = new TextEncoder();
const ID = "00112233445566778899aabbccddeeff";
const AT = "2026-11-30T08:00:00.000Z";
const parse = (o: unknown) =>
  parsePayloadV2(enc.encode(typeof o === "string" ? o : JSON.stringify(o)));

function fails<T>(p: Parsed<T>, code: string, message: string): void {
  assert.deepEqual(p.ok ? p : { code: p.code, message: p.message }, { code, message });
}

Deno.test("payload v2: every kind round-trips through its canonical encoding", () => {
  const all: PayloadV2[] = [
    { v: 2, kind: "message", id: ID, text: "hi", sent_at: AT },
    {
      v: 2,
      kind: "message",
      id: ID,
      text: "",
      sent_at: "2026-11-30T08:00:00+01:00",
      receipts: [ID],
    },
    { v: 2, kind: "receipt", ids: [ID, ID] },
    { v: 2, kind: "rotate", epoch: 4294967295 },
  ];
  for (const p of all) {
    assert.deepEqual(parsePayloadV2(encodePayloadV2(p)), { ok: true, value: p });
    assert.deepEqual(unpadPayloadV2(padPayloadV2(p)), { ok: true, value: p });
  }
  assert.equal(
    new TextDecoder().decode(
      encodePayloadV2({ sent_at: AT, text: "x", id: ID, kind: "message", v: 2 }),
    ),
    `{"v":2,"kind":"message","id":"${ID}","text":"x","sent_at":"${AT}"}`,
  );
  const noEmpty = encodePayloadV2({
    v: 2,
    kind: "message",
    id: ID,
    text: "x",
    sent_at: AT,
    receipts: [],
  });
  assert.ok(!new TextDecoder().decode(noEmpty).includes("receipts"));
});

Deno.test("payload v2: unknown fields are ignored", () => {
  assert.deepEqual(parse({ v: 2, kind: "receipt", ids: [ID], extra: 1 }), {
    ok: true,
    value: { v: 2, kind: "receipt", ids: [ID] },
  });
});

Deno.test("payload v2: rejections with exact codes and messages", () => {
  fails(parsePayloadV2(Uint8Array.of(0xff)), "bad_frame", "Cannot parse payload: not UTF-8");
  fails(parse("{"), "bad_json", "Cannot parse payload: not valid JSON");
  fails(parse("[]"), "bad_frame", "Cannot parse payload: not a JSON object");
  fails(parse({ kind: "receipt" }), "bad_frame", "Cannot parse payload: missing field 'v'");
  fails(
    parse({ v: 1, kind: "message", text: "x", sent_at: AT }),
    "unsupported_version",
    "Cannot parse payload: version 1 is not supported (this side speaks 2)",
  );
  fails(parse({ v: 2, kind: "poll" }), "unknown_type", 'Cannot parse payload: unknown kind "poll"');
  fails(parse({ v: 2 }), "unknown_type", "Cannot parse payload: unknown kind undefined");
  const msg = { v: 2, kind: "message", id: ID, text: "x", sent_at: AT };
  fails(
    parse({ ...msg, id: ID.toUpperCase() }),
    "bad_frame",
    "Cannot parse message payload: field 'id' must be 32 lower-case hex digits",
  );
  fails(
    parse({ ...msg, text: 5 }),
    "bad_frame",
    "Cannot parse message payload: field 'text' must be a string",
  );
  fails(
    parse({ ...msg, sent_at: "yesterday" }),
    "bad_frame",
    "Cannot parse message payload: field 'sent_at' is not an ISO 8601 time",
  );
  const listMessage = (where: string, field: string) =>
    `Cannot parse ${where}: field '${field}' must be a list of 1 to 1000 message ids ` +
    "(32 lower-case hex digits)";
  for (const receipts of [[], ["x"], new Array(1001).fill(ID), "x"]) {
    fails(parse({ ...msg, receipts }), "bad_frame", listMessage("message payload", "receipts"));
  }
  for (const ids of [undefined, [], [ID, "env-00000001"], new Array(1001).fill(ID)]) {
    fails(
      parse({ v: 2, kind: "receipt", ids }),
      "bad_frame",
      listMessage("receipt payload", "ids"),
    );
  }
  for (const epoch of [-1, 1.5, 2 ** 32, "1"]) {
    fails(
      parse({ v: 2, kind: "rotate", epoch }),
      "bad_frame",
      "Cannot parse rotate payload: field 'epoch' must be a whole number 0 to 4294967295",
    );
  }
  const padded = padPayloadV2(msg as PayloadV2);
  padded[511] = 1;
  fails(unpadPayloadV2(padded), "bad_frame", "Cannot unpad: a padding byte is not zero");
});

Deno.test("payload v2: message ids are 32 random lower-case hex digits", () => {
  const a = newMessageId();
  assert.ok(isMessageId(a));
  assert.notEqual(a, newMessageId());
  assert.equal(isMessageId("env-00000001"), false);
});
