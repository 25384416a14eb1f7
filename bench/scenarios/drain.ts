/**
 * Offline drain: `count` envelopes queued for one offline recipient, then one sync (deliveries
 * acked in batches of 500 as they arrive, a ping after the last ack, then a fresh sync must find
 * the mailbox empty). References: raw SQLite (same pragmas) and redis-benchmark running the
 * relay's own Lua scripts.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { Gen } from "../lib/gen.ts";
import { Hist } from "../lib/hist.ts";
import { cpuSeconds, ROOT, run, type Server } from "../lib/proc.ts";

/** Result of one drain. */
export interface DrainOut {
  count: number;
  accepted: number;
  errors: number;
  errorCodes: Record<string, number>;
  /** ms to queue `count` (sent pipelined, until every accepted). */
  fillMs: number;
  delivered: number;
  /** ms from the open (v1: auth) to the last deliver. */
  lastDeliverMs: number;
  /** ms from the open to the pong after the last ack (the target's "drained and acked"). */
  ackedMs: number;
  verifiedEmpty: boolean;
  verifyAttempts: number;
  relayCpuSec: number;
  /** Per-message delivery time counted from the open (the "offline then drain" latency). */
  lat: { p50: number; p99: number; p999: number; max: number };
}

/** Runs one drain against `server`. */
export async function drain(server: Server, name: string, count: number): Promise<DrainOut> {
  const [g] = Gen.startMany(1, `${name}-drain`);
  try {
    const cpu0 = cpuSeconds(server.pid);
    const r = await g.call("drain", { url: server.url, count }, 300_000);
    const s = Hist.fromJSON(r.lat).summaryMs();
    return {
      count,
      accepted: r.accepted,
      errors: r.errors,
      errorCodes: r.errorCodes,
      fillMs: Math.round(r.fillMs),
      delivered: r.delivered,
      lastDeliverMs: Math.round(r.lastDeliverMs),
      ackedMs: Math.round(r.ackedMs),
      verifiedEmpty: r.verifiedEmpty,
      verifyAttempts: r.verifyAttempts,
      relayCpuSec: Math.round((cpuSeconds(server.pid) - cpu0) * 100) / 100,
      lat: { p50: s.p50, p99: s.p99, p999: s.p999, max: s.max },
    };
  } finally {
    await g.exit();
  }
}

/** Raw SQLite on the same pragmas as the relay (WAL, synchronous=FULL). */
export interface SqliteRef {
  /** Rows/s inserting `count` rows in one transaction. */
  insertBatchPerSec: number;
  /** Rows/s with one transaction (one fsync) per row. */
  insertTxnPerSec: number;
  /** ms to read `count` rows in 500-row pages and delete them in 500-id transactions. */
  drainMs: number;
}

/** Measures the SQLite reference in a temp dir. */
export function sqliteReference(dir: string, count: number): SqliteRef {
  const path = join(dir, "ref.db");
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
    db.exec(
      "CREATE TABLE e (seq INTEGER PRIMARY KEY AUTOINCREMENT, mailbox TEXT NOT NULL, " +
        "id TEXT NOT NULL, raw TEXT NOT NULL, UNIQUE (mailbox, id));" +
        "CREATE INDEX e_mb ON e (mailbox, seq);",
    );
    const ins = db.prepare("INSERT INTO e (mailbox, id, raw) VALUES (?, ?, ?)");
    const raw = "x".repeat(300);
    const mb = "m".repeat(44);
    let t = performance.now();
    db.exec("BEGIN IMMEDIATE");
    for (let i = 0; i < count; i++) ins.run(mb, `id${i}`, raw);
    db.exec("COMMIT");
    const insertBatchPerSec = count / ((performance.now() - t) / 1000);
    const single = 300;
    t = performance.now();
    for (let i = 0; i < single; i++) {
      db.exec("BEGIN IMMEDIATE");
      ins.run("other", `id${i}`, raw);
      db.exec("COMMIT");
    }
    const insertTxnPerSec = single / ((performance.now() - t) / 1000);
    const page = db.prepare(
      "SELECT id, raw, seq FROM e WHERE mailbox = ? AND seq > ? ORDER BY seq LIMIT 500",
    );
    const del = db.prepare("DELETE FROM e WHERE mailbox = ? AND id = ?");
    t = performance.now();
    let after = 0;
    for (;;) {
      const rows = page.all(mb, after) as Array<{ id: string; seq: number }>;
      if (rows.length === 0) break;
      after = Number(rows[rows.length - 1].seq);
      db.exec("BEGIN IMMEDIATE");
      for (const r of rows) del.run(mb, r.id);
      db.exec("COMMIT");
    }
    const drainMs = performance.now() - t;
    return {
      insertBatchPerSec: Math.round(insertBatchPerSec),
      insertTxnPerSec: Math.round(insertTxnPerSec),
      drainMs: Math.round(drainMs),
    };
  } finally {
    db.close();
  }
}

/** redis-benchmark figures for the relay's own scripts. */
export interface RedisRef {
  putPerSec: number;
  putPipelinedPerSec: number;
  pendingPagePerSec: number;
  ack500PerSec: number;
  /** Floor for draining `count`: count/500 pending pages + count/500 ack batches, serial. */
  drainFloorMs: number;
}

function luaScripts(): Record<string, string> {
  const src = Deno.readTextFileSync(join(ROOT, "relay/mailbox/redis.ts"));
  const out: Record<string, string> = {};
  for (const name of ["PUT_LUA", "PENDING_LUA", "SETTLE_LUA"]) {
    const m = new RegExp(`const ${name} = \`([\\s\\S]*?)\`;`).exec(src);
    if (m) out[name] = m[1];
  }
  const ack = /const ACK_LUA = SETTLE_LUA \+ `([\s\S]*?)`;/.exec(src);
  if (ack && out.SETTLE_LUA) out.ACK_LUA = out.SETTLE_LUA + ack[1];
  return out;
}

function rpsOf(csv: string): number {
  // "test","rps",... then one row per test
  const lines = csv.trim().split("\n").filter((l) => l.startsWith('"'));
  const row = lines.find((l) => !l.startsWith('"test"'));
  return row ? Math.round(Number(row.split(",")[1].replaceAll('"', ""))) : NaN;
}

/** Runs redis-benchmark on EVALSHA of the relay's PUT, PENDING and ACK scripts. */
export async function redisReference(redisUrl: string, count: number): Promise<RedisRef> {
  const u = new URL(redisUrl);
  const host = u.hostname;
  const port = u.port || "6379";
  const cli = (args: string[]) =>
    run("redis-cli", ["-h", host, "-p", port, ...args], { timeoutMs: 30_000 });
  const lua = luaScripts();
  if (!lua.PUT_LUA || !lua.PENDING_LUA || !lua.ACK_LUA) {
    throw new Error("could not find PUT_LUA/PENDING_LUA/ACK_LUA in relay/mailbox/redis.ts");
  }
  const sha: Record<string, string> = {};
  for (const k of ["PUT_LUA", "PENDING_LUA", "ACK_LUA"]) {
    const r = await cli(["SCRIPT", "LOAD", lua[k]]);
    if (r.code !== 0) throw new Error(`redis-cli SCRIPT LOAD failed: ${r.stderr}`);
    sha[k] = r.stdout.trim();
  }
  const p = `bench:rb:${Date.now().toString(36)}:`;
  const mb = "M".repeat(43) + "=";
  const keys = [
    `${p}v2:mb:${mb}:env`,
    `${p}v2:mb:${mb}:seq`,
    `${p}v2:mb:${mb}:age`,
    `${p}v2:mb:${mb}:meta`,
    `${p}v2:index`,
  ];
  const reg = `${p}v2:mb:${mb}:reg`;
  await cli(["SET", reg, "pair"]); // registered, as an opened pair mailbox is
  const raw = "x".repeat(812); // a v2 envelope's body of the smallest size
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const bench = async (n: number, pipeline: number, args: string[]) => {
    const r = await run("redis-benchmark", [
      "-h",
      host,
      "-p",
      port,
      "-n",
      String(n),
      "-c",
      "1",
      "-P",
      String(pipeline),
      "-r",
      "1000000000",
      "--csv",
      ...args,
    ], { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`redis-benchmark failed: ${r.stderr.slice(0, 300)}`);
    return rpsOf(r.stdout);
  };
  const putArgs = (id: string) => [
    "EVALSHA",
    sha.PUT_LUA,
    "7",
    ...keys,
    reg,
    `${p}v2:relays`, // the relay's put counts the other relays' leases too
    id,
    raw,
    String(hour),
    "100000000",
    "100000000000",
    "100000000",
    "100000000000",
    String(hour + 2592000000 + 7_200_000),
    mb,
    "0",
    "bench-relay",
  ];
  try {
    const putPerSec = await bench(Math.min(count, 5000), 1, putArgs("a__rand_int__"));
    const putPipelinedPerSec = await bench(count, 32, putArgs("b__rand_int__"));
    const pendingPagePerSec = await bench(200, 1, [
      "EVALSHA",
      sha.PENDING_LUA,
      "3",
      keys[0],
      keys[1],
      keys[2],
      "0",
      "500",
      "0",
    ]);
    // 500 ids per ack, as the client sends them; the ids are random, so HGET mostly misses
    // (the real ack also deletes; this is a lower bound on its cost).
    const ids = Array.from({ length: 500 }, (_, i) => `c${i}__rand_int__`);
    // KEYS: index, then env/seq/age/meta of each mailbox acked; ARGV: mailbox, id count, ids.
    const ack500PerSec = await bench(200, 1, [
      "EVALSHA",
      sha.ACK_LUA,
      "5",
      keys[4],
      ...keys.slice(0, 4),
      mb,
      String(ids.length),
      ...ids,
    ]);
    const pages = Math.ceil(count / 500);
    return {
      putPerSec,
      putPipelinedPerSec,
      pendingPagePerSec,
      ack500PerSec,
      drainFloorMs: Math.round(pages * 1000 / pendingPagePerSec + pages * 1000 / ack500PerSec),
    };
  } finally {
    await cli(["DEL", ...keys, reg]);
  }
}
