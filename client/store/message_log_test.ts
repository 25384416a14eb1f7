import assert from "node:assert/strict";
import { join } from "node:path";
import { ClientError } from "../errors.ts";
import { foldRecords, type LogRecord, MessageLog, readLog } from "./message_log.ts";

function tmpFile(): { dir: string; path: string } {
  const dir = Deno.makeTempDirSync();
  return { dir, path: join(dir, "peer.jsonl") };
}

const msg = (id: string, dir: "in" | "out" = "out", text = `text ${id}`) => ({
  id,
  dir,
  text,
  sent_at: "2025-01-01T10:00:00.000Z",
  at: "2025-01-01T10:00:01.000Z",
});

Deno.test("MessageLog: append, reopen and fold states", () => {
  const { dir, path } = tmpFile();
  try {
    const log = MessageLog.open(path);
    assert.equal(log.appendMessage(msg("aaaaaaaa1")), true);
    assert.equal(log.appendState("aaaaaaaa1", "accepted", "t1"), true);
    assert.equal(log.appendMessage(msg("bbbbbbbb2", "in")), true);
    assert.equal(log.appendState("aaaaaaaa1", "delivered", "t2"), true);
    const again = MessageLog.open(path);
    assert.deepEqual(
      again.entries().map((e) => [e.id, e.dir, e.state]),
      [["aaaaaaaa1", "out", "delivered"], ["bbbbbbbb2", "in", "received"]],
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("MessageLog: a repeated id is stored once, also across reopen", () => {
  const { dir, path } = tmpFile();
  try {
    const log = MessageLog.open(path);
    assert.equal(log.appendMessage(msg("dupdupdup", "in")), true);
    assert.equal(log.appendMessage(msg("dupdupdup", "in", "other text")), false);
    const again = MessageLog.open(path);
    assert.equal(again.appendMessage(msg("dupdupdup", "in")), false);
    const lines = Deno.readTextFileSync(path).trimEnd().split("\n");
    assert.equal(lines.length, 1);
    assert.equal(again.entries()[0].text, "text dupdupdup");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("MessageLog: states only move forward and need a known outgoing message", () => {
  const { dir, path } = tmpFile();
  try {
    const log = MessageLog.open(path);
    log.appendMessage(msg("outoutout"));
    log.appendMessage(msg("inininin", "in"));
    assert.equal(log.appendState("outoutout", "delivered", "t"), true);
    assert.equal(log.appendState("outoutout", "accepted", "t"), false); // would go backwards
    assert.equal(log.appendState("outoutout", "delivered", "t"), false); // repeated receipt
    assert.equal(log.appendState("inininin", "delivered", "t"), false); // not mine
    assert.equal(log.appendState("unknown1", "delivered", "t"), false);
    assert.equal(Deno.readTextFileSync(path).trimEnd().split("\n").length, 3);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("MessageLog: appending never rewrites earlier bytes", () => {
  const { dir, path } = tmpFile();
  try {
    const log = MessageLog.open(path);
    log.appendMessage(msg("first111"));
    const before = Deno.readFileSync(path);
    const inode = Deno.statSync(path).ino;
    log.appendState("first111", "accepted", "t");
    log.appendMessage(msg("second22", "in"));
    const after = Deno.readFileSync(path);
    assert.ok(after.length > before.length);
    assert.deepEqual(after.subarray(0, before.length), before);
    assert.equal(Deno.statSync(path).ino, inode, "same file, not replaced");
    assert.equal((Deno.statSync(path).mode ?? 0) & 0o777, 0o600);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("MessageLog: a torn last line is skipped and the next append starts a new line", () => {
  const { dir, path } = tmpFile();
  try {
    const good = JSON.stringify({ t: "msg", ...msg("goodgood", "in") });
    Deno.writeTextFileSync(path, good + "\n" + good.slice(0, 25)); // crash mid-write
    const contents = readLog(path);
    assert.equal(contents.records.length, 1);
    assert.equal(contents.tornTail, true);
    const log = MessageLog.open(path);
    assert.deepEqual(log.entries().map((e) => e.id), ["goodgood"]);
    log.appendMessage(msg("afterafter", "in"));
    const text = Deno.readTextFileSync(path);
    assert.ok(
      text.startsWith(good + "\n" + good.slice(0, 25) + "\n"),
      "torn bytes kept, newline added",
    );
    assert.deepEqual(MessageLog.open(path).entries().map((e) => e.id), ["goodgood", "afterafter"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("MessageLog: a complete last record without its newline is kept", () => {
  const { dir, path } = tmpFile();
  try {
    Deno.writeTextFileSync(path, JSON.stringify({ t: "msg", ...msg("nonewline", "in") }));
    const log = MessageLog.open(path);
    assert.equal(log.has("nonewline"), true);
    log.appendMessage(msg("nextone1", "in"));
    assert.equal(Deno.readTextFileSync(path).split("\n").filter((l) => l).length, 2);
    assert.equal(MessageLog.open(path).entries().length, 2);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("readLog: garbage lines in the middle are skipped and counted", () => {
  const { dir, path } = tmpFile();
  try {
    const a = JSON.stringify({ t: "msg", ...msg("aaaaaaaa", "in") });
    const b = JSON.stringify({ t: "msg", ...msg("bbbbbbbb", "in") });
    Deno.writeTextFileSync(path, `${a}\nnot json\n{"t":"msg"}\n\n${b}\n`);
    const c = readLog(path);
    assert.equal(c.records.length, 2);
    assert.equal(c.skipped, 2);
    assert.equal(c.tornTail, false);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("foldRecords: first copy of an id wins, best state wins, strays ignored", () => {
  const recs: LogRecord[] = [
    { t: "state", id: "early000", state: "delivered", at: "t0" }, // before its message: ignored
    { t: "msg", ...msg("early000") },
    { t: "msg", ...msg("xxxxxxxx") },
    { t: "state", id: "xxxxxxxx", state: "failed", at: "t1" },
    { t: "state", id: "xxxxxxxx", state: "accepted", at: "t2" },
    { t: "msg", ...msg("xxxxxxxx", "out", "copy") },
    { t: "msg", ...msg("inin0000", "in") },
    { t: "state", id: "inin0000", state: "delivered", at: "t3" },
    { t: "state", id: "zzzzzzzz", state: "delivered", at: "t4" },
  ];
  assert.deepEqual(
    foldRecords(recs).map((e) => [e.id, e.state, e.text]),
    [
      ["early000", "sending", "text early000"],
      ["xxxxxxxx", "accepted", "text xxxxxxxx"],
      ["inin0000", "received", "text inin0000"],
    ],
  );
});

Deno.test("MessageLog.appendBatch: one append for many records, duplicates and stale states skipped", async () => {
  const { dir, path } = tmpFile();
  try {
    const log = MessageLog.open(path);
    log.appendMessage(msg("outgoing1"));
    const flags = await log.appendBatch([
      { t: "msg", ...msg("incoming1", "in") },
      { t: "msg", ...msg("incoming1", "in", "again") }, // same id twice in one batch
      { t: "msg", ...msg("outgoing1") }, // already stored
      { t: "state", id: "outgoing1", state: "delivered", at: "t" },
      { t: "state", id: "outgoing1", state: "accepted", at: "t" }, // would go backwards
      { t: "msg", ...msg("incoming2", "in") },
    ]);
    assert.deepEqual(flags, [true, false, false, true, false, true]);
    const lines = Deno.readTextFileSync(path).trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => [l.t, l.id]), [
      ["msg", "outgoing1"],
      ["msg", "incoming1"],
      ["state", "outgoing1"],
      ["msg", "incoming2"],
    ]);
    assert.deepEqual(
      MessageLog.open(path).entries().map((e) => [e.id, e.state]),
      log.entries().map((e) => [e.id, e.state]),
    );
    assert.deepEqual(await log.appendBatch([{ t: "msg", ...msg("incoming2", "in") }]), [false]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("MessageLog.appendBatch: a failed write takes the records back out and rejects", async () => {
  const { dir, path } = tmpFile();
  try {
    const bad = MessageLog.open(path);
    Deno.mkdirSync(path); // a directory where the file should be: the open for append fails
    await assert.rejects(
      () => bad.appendBatch([{ t: "msg", ...msg("lostlost1", "in") }]),
      (e: unknown) => e instanceof ClientError && e.code === "io" && /cannot write/.test(e.message),
    );
    assert.equal(bad.has("lostlost1"), false, "not shown as stored");
    assert.deepEqual(bad.entries(), []);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("MessageLog: a sending record puts a failed message back in the queue, nothing else", () => {
  const { dir, path } = tmpFile();
  try {
    const log = MessageLog.open(path);
    log.appendMessage(msg("failedone"));
    log.appendMessage(msg("acceptedo"));
    assert.equal(log.appendState("failedone", "sending", "t"), false, "already queued");
    assert.equal(log.appendState("failedone", "failed", "t1"), true);
    assert.equal(log.appendState("acceptedo", "accepted", "t1"), true);
    assert.equal(log.appendState("failedone", "sending", "t2"), true);
    assert.equal(log.appendState("acceptedo", "sending", "t2"), false, "accepted stays accepted");
    assert.equal(log.get("failedone")?.state, "sending");
    assert.equal(MessageLog.open(path).get("failedone")?.state, "sending");
    assert.equal(log.appendState("failedone", "accepted", "t3"), true);
    assert.equal(MessageLog.open(path).get("failedone")?.state, "accepted");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
