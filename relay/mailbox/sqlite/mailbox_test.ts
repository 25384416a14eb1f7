import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteMailbox } from "./mailbox.ts";
import { mailboxContract } from "../contract.ts";
import { DEFAULT_MAILBOX_LIMITS } from "../../ports/mailbox.ts";

mailboxContract("sqlite", async (limits) => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  return new SqliteMailbox(join(dir, "mailbox.db"), limits);
});

Deno.test("sqlite mailbox: envelopes survive close and reopen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const path = join(dir, "mailbox.db");
  const a = new SqliteMailbox(path, DEFAULT_MAILBOX_LIMITS);
  await a.put("alice", { id: "id-000001", raw: '{"id":"id-000001"}' });
  await a.put("alice", { id: "id-000002", raw: '{"id":"id-000002"}' });
  await a.ack("alice", ["id-000001"]);
  await a.close();
  const b = new SqliteMailbox(path, DEFAULT_MAILBOX_LIMITS);
  try {
    assert.deepEqual(await b.totals(), { count: 1, bytes: '{"id":"id-000002"}'.length });
    const got = await b.pending("alice");
    assert.deepEqual(got.map((e) => e.id), ["id-000002"]);
    assert.deepEqual(await b.depth("alice"), { count: 1, bytes: '{"id":"id-000002"}'.length });
  } finally {
    await b.close();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sqlite mailbox: a put after close is refused, not lost silently", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const m = new SqliteMailbox(join(dir, "mailbox.db"));
  await m.close();
  await assert.rejects(m.put("alice", { id: "id-000001", raw: "{}" }), /closed/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("sqlite mailbox: a writer that dies before it starts fails every call, not hangs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sqlite-" });
  const m = new SqliteMailbox(
    join(dir, "mailbox.db"),
    DEFAULT_MAILBOX_LIMITS,
    new URL("./testdata/failing_writer.ts", import.meta.url),
  );
  const within = <T>(p: Promise<T>) =>
    Promise.race([
      p,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("hung")), 5000)),
    ]);
  try {
    await assert.rejects(within(m.put("alice", { id: "id-000001", raw: "{}" })), /writer failed/);
    await assert.rejects(within(m.ack("alice", ["id-000001"])), /writer failed/);
    assert.equal((await within(m.check())).ok, false);
    await within(m.totals());
  } finally {
    await within(m.close());
  }
  await Deno.remove(dir, { recursive: true });
});
