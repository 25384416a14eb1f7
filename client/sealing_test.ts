import assert from "node:assert/strict";
import { generateKeyPair, type PayloadV2, toBase64 } from "@chat-p2p/protocol";
import { profileSealer, sendFrameBytes } from "./sealing.ts";
import { openStore } from "./store/profile_store.ts";

Deno.test("sealing: sendFrameBytes is the size of a real request frame with a 64-character envelope id", async () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-p2p-sealing-" });
  try {
    const me = generateKeyPair();
    const peer = toBase64(generateKeyPair().publicKey);
    const store = openStore((n) => (n === "HOME" ? home : undefined), "default", () => {});
    store.saveIdentity(me);
    const sealer = profileSealer(store, me);
    for (const text of ["", "hi", "é".repeat(700), "x".repeat(20_000)]) {
      const payload: PayloadV2 = {
        v: 2,
        kind: "message",
        id: "0".repeat(32),
        text,
        sent_at: "2026-11-30T08:00:00.000Z",
      };
      const wire = sealer.encrypt(peer, payload);
      const out = await sealer.requestEnvelope(peer, wire, "e".repeat(64));
      const frame = JSON.stringify({ v: 2, type: "send", envelope: out.envelope, key: out.key });
      const predicted = frame.length + (64 - out.envelope.id.length);
      assert.equal(sendFrameBytes(payload), predicted, `text of ${text.length}`);
      const pair = await sealer.pairEnvelope(peer, wire, "e".repeat(64));
      assert.ok(JSON.stringify({ v: 2, type: "send", envelope: pair.envelope }).length < predicted);
    }
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
