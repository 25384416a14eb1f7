/**
 * Redis `Mailbox` for scaled mode: every relay behind the load balancer shares the mailboxes.
 *
 * Keys for mailbox `<M>` under prefix `<P>` (default `chat:`), documented in docs/SERVICES.md;
 * everything of protocol v2 is under `<P>v2:`:
 *
 * - `<P>v2:mb:<M>:env`  HASH  envelope id -> raw envelope JSON (the only user data stored)
 * - `<P>v2:mb:<M>:seq`  ZSET  envelope id scored by seq (delivery order, `afterSeq` paging)
 * - `<P>v2:mb:<M>:age`  ZSET  envelope id scored by the hour it arrived (age limit, sweep)
 * - `<P>v2:mb:<M>:meta` HASH  `seq` (last seq handed out in this mailbox), `bytes` (sum of raws)
 * - `<P>v2:mb:<M>:reg`  STRING the mailbox's kind (`pair` / `inbox`) once it was opened
 * - `<P>v2:mb:<M>:early` LIST acked ids that were not stored yet (their put, through another relay,
 *   still on its way): that put then stores nothing; the last 64, for one to two minutes
 * - `<P>v2:index`       ZSET  mailbox id scored by its oldest envelope's hour (sweep's work list)
 * - `<P>v2:registry`    ZSET  registered mailbox id scored by the day of its last open
 * - `<P>v2:relays[:<bus>]` ZSET  token of each running relay on that bus (the Kafka topic) scored
 *   by the end of its lease (ms, by Redis's clock): a relay alone skips the bus (no mailbox in it)
 *
 * Every mutation is one Lua script, so a put is atomic: the registration check, the duplicate
 * check, both limits and all writes happen together or not at all. Keys expire on their own at
 * a time rounded to the hour (envelopes: the newest one's expiry) or the day (registrations), so
 * an abandoned mailbox vanishes by itself and no TTL reveals when to the millisecond.
 *
 * A put the router marks `live` (a relay alone pushed the envelope to a reader of its own) is held
 * `holdMs` (20 ms) before it is written; that reader's ack meanwhile withdraws it, so a message
 * read live costs Redis no write (docs/ARCHITECTURE.md, "Relays that share a store").
 *
 * Keys a protocol-v1 relay wrote (`<P>mb:<key>:*`, `<P>index`) name identity keys; `connect`
 * removes them (one log line with the count of envelopes dropped).
 *
 * Connection handling: no offline queue (a command while disconnected fails at once instead of
 * waiting), bounded per-command retries and timeout, reconnection forever with capped backoff.
 * Every Redis failure surfaces as {@linkcode BackendUnavailableError}; the client's `error` events
 * are always handled, so a lost Redis never crashes the process.
 *
 * Deployment: one Redis (optionally with replicas), not Redis Cluster (the index keys live
 * outside the mailbox's slot). Durability follows the server's AOF setting (docs/SERVICES.md).
 *
 * @module
 */
import { Redis, type RedisOptions } from "ioredis";
import {
  DAY_MS,
  DEFAULT_MAILBOX_LIMITS,
  envelopeCutoff,
  HOUR_MS,
  type Mailbox,
  type MailboxKind,
  type MailboxLimits,
  type PutOptions,
  registrationCutoff,
  roundDown,
  type StoredEnvelope,
  type Swept,
} from "../ports/mailbox.ts";
import {
  type BackendStatus,
  BackendUnavailableError,
  errorMessage,
  fullMessage,
  MailboxFullError,
  UnknownMailboxError,
} from "../ports/errors.ts";
import type { AdapterLogger } from "../infra/log.ts";

/** Where the adapter reports trouble. */
export type RedisMailboxLogger = AdapterLogger;

/** Options for {@linkcode RedisMailbox}. */
export interface RedisMailboxOptions {
  /** Key prefix; default `chat:`. Tests use a unique one per run. */
  prefix?: string;
  /** Connection trouble goes here (default: JSON lines on stderr). */
  logger?: RedisMailboxLogger;
  /** Per-command timeout in ms (default 5000). */
  commandTimeoutMs?: number;
  /** Connect timeout in ms (default 3000). */
  connectTimeoutMs?: number;
  /**
   * The bus the relays sharing this store announce on (the Kafka topic): leases are kept per
   * bus (`<P>v2:relays:<bus>`), so relays on another topic are not counted.
   */
  bus?: string;
  /**
   * How long a `live` put ({@linkcode PutOptions.live}) waits before it is written, so that its
   * reader's ack withdraws it (default {@linkcode HOLD_MS}; 0: every put is written at once).
   */
  holdMs?: number;
}

/** Default of `holdMs`: the same 20 ms as the SQLite store's group-commit spacing. */
export const HOLD_MS = 20;

/** A live put held back (see {@linkcode RedisMailboxOptions.holdMs}). */
interface HeldPut {
  mailboxId: string;
  envelope: { id: string; raw: string };
  options: PutOptions;
  /** When it is written (performance.now() ms). */
  due: number;
  resolve: (r: "stored" | "duplicate") => void;
  reject: (e: unknown) => void;
  /** Written or withdrawn: no longer held. */
  gone: boolean;
}

/**
 * Acked ids a mailbox remembers when their envelope was not there (its put, through another relay,
 * not applied yet), so that put stores nothing: the last this many, for one to two minutes.
 */
const EARLY_ACKS = 64;

// KEYS: env, seq, age, meta, index, reg, relays, early. ARGV: id, raw, hour, maxCount, maxBytes,
// inboxMaxCount, inboxMaxBytes, expireAt, mailboxId, inbox ("1" for a request-inbox send),
// member (this relay's token, or "" / absent: then others is -1).
// Returns {0, others} duplicate (or acked already: see ACK_LUA), {1, seq, others} stored,
// {-1, count, limit} count limit, {-2, bytes, limit} byte limit, {-3} not registered; others is
// how many other relays' leases in `relays` run at Redis's own clock (the relays sharing the
// store; see JOIN_LUA).
// The index keeps each mailbox's oldest arrival hour (ZADD LT only ever lowers it). The keys'
// expiry (a whole hour) is set again only when it changes (meta `exp`, once an hour) or the
// mailbox was empty (its envelope keys are new): five PEXPIREATs on every put were a third of
// the script's calls.
const PUT_LUA = `
local kind = 'inbox'
if ARGV[10] ~= '1' then kind = redis.call('GET', KEYS[6]) end
if not kind then return {-3} end
local others = -1
if KEYS[7] and ARGV[11] and ARGV[11] ~= '' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  -- now has 13 digits: Lua's %.14g writes it exactly
  others = redis.call('ZCOUNT', KEYS[7], '(' .. now, '+inf')
  local mine = redis.call('ZSCORE', KEYS[7], ARGV[11])
  if mine and tonumber(mine) > now then others = others - 1 end
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {0, others} end
-- Its reader acked it already (through another relay, before this put was applied): not stored.
-- Looked up before anything is written: a script's first write is where Redis refuses it at
-- maxmemory, and LREM (which frees) would let the writes after it through.
if redis.call('LPOS', KEYS[8], ARGV[1]) then
  redis.call('LREM', KEYS[8], 1, ARGV[1])
  return {0, others}
end
local maxCount, maxBytes = tonumber(ARGV[4]), tonumber(ARGV[5])
if kind == 'inbox' then maxCount, maxBytes = tonumber(ARGV[6]), tonumber(ARGV[7]) end
local count = redis.call('HLEN', KEYS[1])
if count + 1 > maxCount then return {-1, count, maxCount} end
local meta = redis.call('HMGET', KEYS[4], 'bytes', 'exp')
local bytes = tonumber(meta[1] or '0')
local size = string.len(ARGV[2])
if bytes + size > maxBytes then return {-2, bytes, maxBytes} end
local seq = redis.call('HINCRBY', KEYS[4], 'seq', 1)
redis.call('HINCRBY', KEYS[4], 'bytes', size)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[5], 'LT', ARGV[3], ARGV[9])
if count == 0 or meta[2] ~= ARGV[8] then
  redis.call('HSET', KEYS[4], 'exp', ARGV[8])
  for i = 1, 5 do redis.call('PEXPIREAT', KEYS[i], ARGV[8]) end
end
return {1, seq, others}
`;

// KEYS: relays (ZSET member token -> lease end, ms at Redis's clock). ARGV: member, leaseMs.
// Drops lapsed leases, (re)starts this one; returns 1 when it was still running, else 0.
const JOIN_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
if ends and tonumber(ends) > now then return 1 end
return 0
`;

// KEYS: reg, registry. ARGV: kind, day, expireAt, mailboxId.
const REGISTER_LUA = `
if not redis.call('GET', KEYS[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
local day = redis.call('ZSCORE', KEYS[2], ARGV[4])
if (not day) or tonumber(day) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 0
`;

// KEYS: registry. ARGV: cutoff (a last-opened day before it is forgotten), key prefix of
// mailboxes. Forgets up to 100; returns how many.
const FORGET_LUA = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 100)
for _, id in ipairs(ids) do
  redis.call('DEL', ARGV[2] .. id .. ':reg')
  redis.call('ZREM', KEYS[1], id)
end
return #ids
`;

// Shared tail of ack/expire: fix the byte counter and the index entry of a mailbox.
const SETTLE_LUA = `
local function settle(age, meta, index, mailbox, freed)
  if freed > 0 then redis.call('HINCRBY', meta, 'bytes', -freed) end
  local first = redis.call('ZRANGE', age, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', index, mailbox)
    if redis.call('EXISTS', meta) == 1 then redis.call('HSET', meta, 'bytes', 0) end
  else
    redis.call('ZADD', index, first[2], mailbox)
  end
end
`;

// Acks of several calls at once. KEYS: index, then env, seq, age, meta, early of each call's
// mailbox. ARGV: for each call: mailboxId, number of ids, how many of them count, the ids (those
// that count first; the others were counted already, as withdrawn puts). Returns how many each
// call removed. A counted id that is not there may be one whose put, through another relay, Redis
// has not applied yet: it is remembered in early (the last EARLY_ACKS, until the minute after
// next), and that put then stores nothing.
const ACK_LUA = SETTLE_LUA + `
local out, a = {}, 1
for c = 0, (#KEYS - 1) / 5 - 1 do
  local env, seq, age, meta = KEYS[2 + c * 5], KEYS[3 + c * 5], KEYS[4 + c * 5], KEYS[5 + c * 5]
  local early = KEYS[6 + c * 5]
  local mailbox, ids, counted = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local n, freed, missing, seen = 0, 0, 0, {}
  for i = a + 3, a + 2 + ids do
    local id = ARGV[i]
    -- An id named again in this call was deleted or remembered already.
    if not seen[id] then
      seen[id] = true
      local raw = redis.call('HGET', env, id)
      if raw then
        freed = freed + string.len(raw)
        if i < a + 3 + counted then n = n + 1 end
        redis.call('HDEL', env, id)
        redis.call('ZREM', seq, id)
        redis.call('ZREM', age, id)
      elseif i < a + 3 + counted then
        redis.call('LPUSH', early, id)
        missing = missing + 1
      end
    end
  end
  if missing > 0 then
    redis.call('LTRIM', early, 0, ${EARLY_ACKS - 1})
    local t = redis.call('TIME')
    redis.call('PEXPIREAT', early, (math.floor(tonumber(t[1]) / 60) + 2) * 60000)
  end
  if n > 0 then settle(age, meta, KEYS[1], mailbox, freed) end
  out[#out + 1] = n
  a = a + 3 + ids
end
return out
`;

// KEYS: env, seq, age, meta, index. ARGV: mailboxId, cutoff (receivedAt < cutoff is expired).
const EXPIRE_LUA = SETTLE_LUA + `
local ids = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[2])
local freed = 0
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[1], id)
  if raw then freed = freed + string.len(raw) end
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
if #ids > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[2]) end
settle(KEYS[3], KEYS[4], KEYS[5], ARGV[1], freed)
return #ids
`;

// KEYS: env, seq, age. ARGV: afterSeq, limit, cutoff. Returns flat {id, raw, seq, at, ...}.
const PENDING_LUA = `
local out, got = {}, 0
local limit, cutoff = tonumber(ARGV[2]), tonumber(ARGV[3])
local start = '(' .. ARGV[1]
while got < limit do
  local chunk = redis.call('ZRANGEBYSCORE', KEYS[2], start, '+inf', 'WITHSCORES', 'LIMIT', 0, limit - got + 16)
  if #chunk == 0 then break end
  for i = 1, #chunk, 2 do
    local id, seq = chunk[i], chunk[i + 1]
    start = '(' .. seq
    local at = redis.call('ZSCORE', KEYS[3], id)
    if at and tonumber(at) >= cutoff then
      local raw = redis.call('HGET', KEYS[1], id)
      if raw then
        out[#out + 1] = id
        out[#out + 1] = raw
        out[#out + 1] = seq
        out[#out + 1] = at
        got = got + 1
        if got >= limit then break end
      end
    end
  end
end
return out
`;

interface ScriptClient {
  chatPut(...args: (string | number)[]): Promise<[number, number?, number?]>;
  chatRegister(...args: (string | number)[]): Promise<number>;
  chatJoin(...args: (string | number)[]): Promise<number>;
  chatForget(...args: (string | number)[]): Promise<number>;
  chatAck(...args: (string | number)[]): Promise<number[]>;
  chatExpire(...args: (string | number)[]): Promise<number>;
  chatPending(...args: (string | number)[]): Promise<string[]>;
}

const stderrLogger: RedisMailboxLogger = {
  warn: (msg, fields) => console.error(JSON.stringify({ level: "warn", msg, ...fields })),
  error: (msg, fields) => console.error(JSON.stringify({ level: "error", msg, ...fields })),
};

/** Acks wait this long for others to share their script call (see {@linkcode RedisMailbox.ack}). */
export const ACK_LINGER_MS = 5;
/** Most ack calls in one script call. */
const MAX_ACKS_PER_CALL = 200;

/**
 * ioredis options: fail fast while disconnected, reconnect forever with capped backoff. No
 * per-command timeout: ioredis would arm a timer for every command, a sixth of its CPU here; the
 * mailbox times its calls out itself, with one timer for all of them.
 */
export function redisClientOptions(
  opts: { connectTimeoutMs?: number } = {},
): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: opts.connectTimeoutMs ?? 3000,
    // 100 ms, 200 ms, ... capped at 2 s; never give up (a returned number means "retry").
    retryStrategy: (times) => Math.min(times * 100, 2000),
    // LOADING after a restart: reconnect rather than fail every command until the AOF is read.
    reconnectOnError: (err) => err.message.startsWith("LOADING"),
    enableReadyCheck: true,
    // Commands issued in one event-loop turn go out in one socket write. On Deno a write to a
    // node:net socket costs tens of microseconds of CPU (the loopback delivery included), and
    // was the Kafka+Redis relay's largest cost (bench/README.md).
    enableAutoPipelining: true,
  };
}

/** Mailboxes in Redis, shared by every relay that points at the same Redis and prefix. */
export class RedisMailbox implements Mailbox {
  readonly kind = "redis";
  readonly prefix: string;
  /** Where protocol v2 keeps everything: `<prefix>v2:`; and its two shared keys. */
  #v2: string;
  #indexKey: string;
  #registryKey: string;
  #relaysKey: string;
  #client: Redis;
  #owned: boolean;
  #limits: MailboxLimits;
  #log: RedisMailboxLogger;
  #closed = false;
  #closing = false;
  #down = false;
  #timeoutMs: number;
  /** Calls waiting for Redis, with when they started; the watchdog fails the overdue ones. */
  #inflight = new Set<{ at: number; fail: (e: Error) => void }>();
  #watchdog?: ReturnType<typeof setInterval>;
  /** Acks waiting to go out together, and the timer that sends them. */
  #acks: Array<{
    mailboxId: string;
    ids: readonly string[];
    /** Ids of puts this ack withdrew: counted already, still deleted (a resend's copy). */
    withdrawn: readonly string[];
    done: (n: number | Error) => void;
  }> = [];
  #ackTimer?: ReturnType<typeof setTimeout>;
  #connecting: Promise<void> | undefined;
  /** The last put was refused because Redis is at maxmemory (cleared by a put that lands). */
  #oom = false;
  #holdMs: number;
  /**
   * Live puts held back, each for its own `holdMs` (not a Batcher's group: the last put of a group
   * would wait only until the group goes, and its reader's ack comes later; bench finding 12), by
   * mailbox and envelope id (nested maps: no key built per message), and
   * in the order they came (from `#heldFrom` on). An id held twice is listed once: the later copy,
   * which an ack withdraws; the earlier one is written when due, and an ack that came before it
   * leaves it for the next open, as with any resend.
   */
  #held = new Map<string, Map<string, HeldPut>>();
  #heldQueue: HeldPut[] = [];
  #heldFrom = 0;
  #holdTimer?: ReturnType<typeof setTimeout>;
  /** Puts withdrawn by an ack while held: never written. */
  readonly stats = { withdrawn: 0 };

  /**
   * @param redis a `redis://` URL (the adapter owns and closes the client) or an ioredis client
   *   (the caller owns it; it should use {@linkcode redisClientOptions}).
   */
  constructor(
    redis: string | Redis,
    limits: MailboxLimits = DEFAULT_MAILBOX_LIMITS,
    options: RedisMailboxOptions = {},
  ) {
    this.prefix = options.prefix ?? "chat:";
    // Built once: every put, ack and read names them.
    this.#v2 = `${this.prefix}v2:`;
    this.#indexKey = `${this.#v2}index`;
    this.#registryKey = `${this.#v2}registry`;
    this.#relaysKey = options.bus ? `${this.#v2}relays:${options.bus}` : `${this.#v2}relays`;
    this.#limits = limits;
    this.#log = options.logger ?? stderrLogger;
    this.#owned = typeof redis === "string";
    this.#client = typeof redis === "string"
      ? new Redis(redis, redisClientOptions(options))
      : redis;
    // Never unhandled: an 'error' event without a listener would crash the process.
    this.#client.on("error", (err: Error) => {
      if (this.#down) return; // report once per outage, not once per reconnect attempt
      this.#down = true;
      this.#log.warn("redis connection lost", { kind: "redis", err: err.message });
    });
    this.#client.on("ready", () => {
      if (this.#down) this.#log.warn("redis connection restored", { kind: "redis" });
      this.#down = false;
    });
    this.#timeoutMs = options.commandTimeoutMs ?? 5000;
    this.#holdMs = options.holdMs ?? HOLD_MS;
    this.#client.defineCommand("chatPut", { numberOfKeys: 8, lua: PUT_LUA });
    this.#client.defineCommand("chatJoin", { numberOfKeys: 1, lua: JOIN_LUA });
    this.#client.defineCommand("chatRegister", { numberOfKeys: 2, lua: REGISTER_LUA });
    this.#client.defineCommand("chatForget", { numberOfKeys: 1, lua: FORGET_LUA });
    this.#client.defineCommand("chatAck", { lua: ACK_LUA }); // key count varies: first argument
    this.#client.defineCommand("chatExpire", { numberOfKeys: 5, lua: EXPIRE_LUA });
    this.#client.defineCommand("chatPending", { numberOfKeys: 3, lua: PENDING_LUA });
  }

  /** Makes a mailbox and waits until Redis answers; throws BackendUnavailableError if it does not. */
  static async connect(
    url: string,
    limits: MailboxLimits = DEFAULT_MAILBOX_LIMITS,
    options: RedisMailboxOptions = {},
  ): Promise<RedisMailbox> {
    const m = new RedisMailbox(url, limits, options);
    try {
      await m.#run(() => m.#client.ping());
      await m.#dropV1();
    } catch (e) {
      await m.close();
      throw e;
    }
    return m;
  }

  /** env, seq, age, meta, index (the keys of the envelope scripts). */
  #keys(mailboxId: string): [string, string, string, string, string] {
    const b = `${this.#v2}mb:${mailboxId}:`;
    return [`${b}env`, `${b}seq`, `${b}age`, `${b}meta`, this.#indexKey];
  }

  #regKey(mailboxId: string): string {
    return `${this.#v2}mb:${mailboxId}:reg`;
  }

  #earlyKey(mailboxId: string): string {
    return `${this.#v2}mb:${mailboxId}:early`;
  }

  /**
   * Removes what a protocol-v1 relay left under this prefix (`<P>mb:<identity key>:*` and
   * `<P>index`): envelopes no v2 client can read, naming both identities. Reports how many
   * envelopes went, once, when there were any.
   */
  async #dropV1(): Promise<void> {
    let envelopes = 0, keys = 0;
    let cursor = "0";
    do {
      const [next, found] = await this.#run(() =>
        this.#client.scan(cursor, "MATCH", `${this.prefix}mb:*`, "COUNT", 1000)
      );
      cursor = next;
      if (found.length === 0) continue;
      const envKeys = found.filter((k) => k.endsWith(":env"));
      if (envKeys.length > 0) {
        const counts = await this.#run(() => Promise.all(envKeys.map((k) => this.#client.hlen(k))));
        envelopes += counts.reduce((a, b) => a + b, 0);
      }
      keys += await this.#run(() => this.#client.unlink(...found));
    } while (cursor !== "0");
    keys += await this.#run(() => this.#client.unlink(`${this.prefix}index`));
    if (keys > 0) {
      this.#log.warn("protocol v1 envelopes dropped: v2 clients cannot read them", {
        kind: "redis",
        count: envelopes,
      });
    }
  }

  get #scripts(): ScriptClient {
    return this.#client as unknown as ScriptClient;
  }

  /** Waits for the first connection (briefly); fails fast while reconnecting. */
  async #ready(): Promise<void> {
    if (this.#closed) throw new BackendUnavailableError("Redis mailbox is closed");
    const c = this.#client;
    // A getter, so TypeScript does not narrow the status across the awaits below.
    const status = (): string => c.status;
    if (status() === "ready") return;
    if (status() === "wait") {
      await c.connect().catch(() => {}); // the 'error' listener reports it
      if (status() === "ready") return;
    }
    if (status() === "connecting" || status() === "connect") {
      await this.#connectWait();
      if (status() === "ready") return;
    }
    throw new BackendUnavailableError(`Redis unavailable (connection ${status()})`);
  }

  /**
   * Resolves when the connection in progress is ready or failed, or after 1 s. One wait shared by
   * every caller: one listener each per wait, however many commands are waiting (a listener per
   * command passed Node's limit of 10 and printed a non-JSON MaxListenersExceededWarning).
   */
  #connectWait(): Promise<void> {
    this.#connecting ??= new Promise<void>((resolve) => {
      const c = this.#client;
      const done = () => {
        clearTimeout(timer);
        c.off("ready", done);
        c.off("error", done);
        c.off("end", done);
        this.#connecting = undefined;
        resolve();
      };
      const timer = setTimeout(done, 1000);
      c.once("ready", done);
      c.once("error", done);
      c.once("end", done);
    });
    return this.#connecting;
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    await this.#ready();
    let entry!: { at: number; fail: (e: Error) => void };
    const overdue = new Promise<never>((_, fail) => {
      entry = { at: performance.now(), fail };
    });
    this.#inflight.add(entry);
    this.#watchdog ??= setInterval(() => this.#failOverdue(), Math.min(1000, this.#timeoutMs / 4));
    try {
      return await Promise.race([op(), overdue]);
    } catch (e) {
      if (e instanceof MailboxFullError || e instanceof BackendUnavailableError) throw e;
      const msg = errorMessage(e);
      if (msg.startsWith("OOM")) {
        this.#oom = true;
        throw new BackendUnavailableError(`Redis is out of memory: ${msg}`, { cause: e });
      }
      throw new BackendUnavailableError(`Redis unavailable: ${msg}`, { cause: e });
    } finally {
      this.#inflight.delete(entry);
    }
  }

  /** Fails the calls that have waited longer than the command timeout (their outcome is unknown). */
  #failOverdue(): void {
    const limit = performance.now() - this.#timeoutMs;
    for (const e of this.#inflight) {
      if (e.at > limit) continue;
      this.#inflight.delete(e);
      e.fail(new BackendUnavailableError(`Redis did not answer within ${this.#timeoutMs} ms`));
    }
  }

  async register(mailboxId: string, kind: MailboxKind, now: number = Date.now()): Promise<void> {
    // The key outlives the registration by at most a day (the sweep forgets it on time); its
    // expiry, like the registry's score, says only the day.
    const expireAt = roundDown(Date.now(), DAY_MS) + this.#limits.maxAgeMs + 2 * DAY_MS;
    await this.#run(() =>
      this.#scripts.chatRegister(
        this.#regKey(mailboxId),
        this.#registryKey,
        kind,
        roundDown(now, DAY_MS),
        expireAt,
        mailboxId,
      )
    );
  }

  /**
   * Writes the envelope. A `live` put waits `holdMs` first (and an ack of it meanwhile withdraws
   * it); any other put of a mailbox with puts held writes those first, so a mailbox keeps the
   * order its envelopes came in.
   */
  async put(
    mailboxId: string,
    envelope: { id: string; raw: string },
    options: PutOptions = {},
  ): Promise<"stored" | "duplicate"> {
    if (options.live && this.#holdMs > 0 && !this.#closing) {
      return this.#hold(mailboxId, envelope, options);
    }
    if (this.#held.has(mailboxId)) await this.#writeHeld();
    return await this.#write(mailboxId, envelope, options);
  }

  #hold(
    mailboxId: string,
    envelope: { id: string; raw: string },
    options: PutOptions,
  ): Promise<"stored" | "duplicate"> {
    return new Promise((resolve, reject) => {
      const h: HeldPut = {
        mailboxId,
        envelope,
        options,
        due: performance.now() + this.#holdMs,
        resolve,
        reject,
        gone: false,
      };
      let byId = this.#held.get(mailboxId);
      if (!byId) this.#held.set(mailboxId, byId = new Map());
      byId.set(envelope.id, h);
      this.#heldQueue.push(h);
      this.#holdTimer ??= setTimeout(() => this.#release(false), this.#holdMs);
    });
  }

  /**
   * Writes the held puts that are due (with `all`, every one), in the order they came; resolves
   * when those writes are answered. One timer, armed for the oldest put still held.
   */
  #release(all: boolean): Promise<unknown> {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    // Deno's timers fire a millisecond or two late: what falls due by then goes now.
    const until = performance.now() + 2;
    const q = this.#heldQueue;
    const writes: Promise<void>[] = [];
    while (this.#heldFrom < q.length && (all || q[this.#heldFrom].due <= until)) {
      const h = q[this.#heldFrom++];
      if (h.gone) continue;
      h.gone = true;
      const byId = this.#held.get(h.mailboxId)!;
      if (byId.get(h.envelope.id) === h) byId.delete(h.envelope.id);
      if (byId.size === 0) this.#held.delete(h.mailboxId);
      writes.push(this.#write(h.mailboxId, h.envelope, h.options).then(h.resolve, h.reject));
    }
    if (this.#heldFrom === q.length) {
      q.length = 0;
      this.#heldFrom = 0;
    } else {
      if (this.#heldFrom > 1024) {
        q.splice(0, this.#heldFrom);
        this.#heldFrom = 0;
      }
      const wait = Math.max(1, q[this.#heldFrom].due - performance.now());
      this.#holdTimer = setTimeout(() => this.#release(false), wait);
    }
    return Promise.all(writes);
  }

  /** Writes every held put now (a read must see them); resolves once they are answered. */
  async #writeHeld(): Promise<void> {
    if (this.#heldFrom < this.#heldQueue.length) await this.#release(true);
  }

  /**
   * Before a read (`pending`, `depth`, `totals`, `sweep`): the held puts written, then the waiting
   * acks sent ahead of the read on the same connection, so the read sees both.
   */
  async #beforeRead(): Promise<void> {
    await this.#writeHeld();
    this.#sendAcks();
  }

  async #write(
    mailboxId: string,
    envelope: { id: string; raw: string },
    options: PutOptions,
  ): Promise<"stored" | "duplicate"> {
    const { maxCount, maxBytes, maxAgeMs, inbox } = this.#limits;
    // When the newest envelope expires (an hour granularity, as the stored times).
    const expireAt = roundDown(Date.now(), HOUR_MS) + maxAgeMs + 2 * HOUR_MS;
    const r = await this.#run(() =>
      this.#scripts.chatPut(
        ...this.#keys(mailboxId),
        this.#regKey(mailboxId),
        this.#relaysKey,
        this.#earlyKey(mailboxId),
        envelope.id,
        envelope.raw,
        roundDown(options.now ?? Date.now(), HOUR_MS),
        maxCount,
        maxBytes,
        inbox.maxCount,
        inbox.maxBytes,
        expireAt,
        mailboxId,
        options.inbox ? "1" : "0",
        options.member ?? "",
      )
    );
    this.#oom = false;
    switch (r[0]) {
      case 0:
        if (options.member !== undefined) options.peers?.(r[1]!);
        return "duplicate";
      case 1:
        if (options.member !== undefined) options.peers?.(r[2]!);
        return "stored";
      case -1:
        throw new MailboxFullError(fullMessage(r[1]!, r[2]!, "messages"));
      case -2:
        throw new MailboxFullError(fullMessage(r[1]!, r[2]!, "bytes"));
      default:
        throw new UnknownMailboxError("no such mailbox");
    }
  }

  async pending(
    mailboxId: string,
    opts: { afterSeq?: number; limit?: number; now?: number } = {},
  ): Promise<StoredEnvelope[]> {
    await this.#beforeRead();
    const limit = Math.floor(opts.limit ?? 500);
    if (limit <= 0) return [];
    const [env, seq, age] = this.#keys(mailboxId);
    const cutoff = envelopeCutoff(opts.now ?? Date.now(), this.#limits.maxAgeMs);
    const flat = await this.#run(() =>
      this.#scripts.chatPending(env, seq, age, opts.afterSeq ?? 0, limit, cutoff)
    );
    const out: StoredEnvelope[] = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      out.push({
        id: flat[i],
        raw: flat[i + 1],
        seq: Number(flat[i + 2]),
        receivedAt: Number(flat[i + 3]),
      });
    }
    return out;
  }

  /**
   * Acks are not waited for by anyone in a hurry (a lost one means a repeated delivery, which
   * clients drop), so they wait {@linkcode ACK_LINGER_MS} for others and go out together in one
   * script call: at 1,000 msg/s that is ~200 calls/s instead of 1,000. Reads (`pending`,
   * `depth`, `totals`, `sweep`) send the waiting acks first, so a read started after an ack sees
   * it. A put does not: a put of an id whose ack waits is a duplicate, as before the ack.
   *
   * An acked envelope whose put is still held (`live`) is never written: the put is withdrawn
   * and answered `stored`, since the reader acks only what it has durably stored itself, and it
   * counts as removed. The ids still go to Redis, where they delete a copy an earlier put of the
   * same id left (a resend), without counting it again.
   */
  ack(mailboxId: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return Promise.resolve(0);
    if (this.#closed) return Promise.reject(new BackendUnavailableError("Redis mailbox is closed"));
    const withdrawn = this.#held.size > 0 ? this.#withdraw(mailboxId, ids) : [];
    if (withdrawn.length > 0) {
      // Counted once, as withdrawn: Redis still deletes a resend's first copy, but does not count it.
      const gone = new Set(withdrawn);
      ids = ids.filter((id) => !gone.has(id));
    }
    return new Promise<number>((resolve, reject) => {
      this.#acks.push({
        mailboxId,
        ids,
        withdrawn,
        done: (n) => n instanceof Error ? reject(n) : resolve(n + withdrawn.length),
      });
      if (this.#acks.length >= MAX_ACKS_PER_CALL) this.#sendAcks();
      else this.#ackTimer ??= setTimeout(() => this.#sendAcks(), ACK_LINGER_MS);
    });
  }

  /** Withdraws the held puts of `ids`; returns their ids. */
  #withdraw(mailboxId: string, ids: readonly string[]): string[] {
    const byId = this.#held.get(mailboxId);
    if (!byId) return [];
    const withdrawn: string[] = [];
    for (const id of ids) {
      const h = byId.get(id);
      if (!h) continue;
      byId.delete(id);
      h.gone = true;
      h.resolve("stored");
      withdrawn.push(id);
    }
    if (byId.size === 0) this.#held.delete(mailboxId);
    this.stats.withdrawn += withdrawn.length;
    return withdrawn;
  }

  /**
   * Sends the waiting acks now, in one script call, issued before any call made after this one;
   * resolves when it is answered.
   */
  #sendAcks(): Promise<void> {
    clearTimeout(this.#ackTimer);
    this.#ackTimer = undefined;
    if (this.#acks.length === 0) return Promise.resolve();
    const batch = this.#acks.splice(0, MAX_ACKS_PER_CALL);
    if (this.#acks.length > 0) this.#ackTimer = setTimeout(() => this.#sendAcks(), 0);
    const keys: string[] = [this.#indexKey], args: (string | number)[] = [];
    for (const a of batch) {
      const [env, seq, age, meta] = this.#keys(a.mailboxId);
      keys.push(env, seq, age, meta, this.#earlyKey(a.mailboxId));
      args.push(a.mailboxId, a.ids.length + a.withdrawn.length, a.ids.length, ...a.ids);
      args.push(...a.withdrawn);
    }
    return this.#run(() => this.#scripts.chatAck(keys.length, ...keys, ...args)).then(
      (removed) => batch.forEach((a, i) => a.done(Number(removed[i] ?? 0))),
      (e: Error) => batch.forEach((a) => a.done(e)),
    );
  }

  async depth(mailboxId: string): Promise<{ count: number; bytes: number }> {
    await this.#beforeRead();
    const [env, , , meta] = this.#keys(mailboxId);
    const [count, bytes] = await this.#run(async () => {
      const r = await this.#client.multi().hlen(env).hget(meta, "bytes").exec();
      if (!r) throw new Error("transaction aborted");
      for (const [err] of r) if (err) throw err;
      return [Number(r[0][1]), Number(r[1][1] ?? 0)];
    });
    return { count, bytes: count === 0 ? 0 : bytes };
  }

  /**
   * Envelopes and bytes over every mailbox, for /metrics. Walks the index (mailboxes that hold
   * envelopes) 1,000 at a time with pipelined reads, so Redis is never blocked by one long call.
   */
  async totals(): Promise<{ count: number; bytes: number }> {
    await this.#beforeRead();
    const index = this.#indexKey;
    let count = 0, bytes = 0;
    for (let start = 0;; start += 1000) {
      const ids = await this.#run(() => this.#client.zrange(index, start, start + 999));
      if (ids.length === 0) break;
      const r = await this.#run(async () => {
        const p = this.#client.pipeline();
        for (const id of ids) {
          const [env, , , meta] = this.#keys(id);
          p.hlen(env).hget(meta, "bytes");
        }
        const out = await p.exec();
        if (!out) throw new Error("pipeline aborted");
        for (const [err] of out) if (err) throw err;
        return out.map(([, v]) => Number(v ?? 0));
      });
      for (let i = 0; i < r.length; i += 2) {
        count += r[i];
        bytes += r[i] === 0 ? 0 : r[i + 1];
      }
      if (ids.length < 1000) break;
    }
    return { count, bytes };
  }

  async sweep(now: number = Date.now()): Promise<Swept> {
    await this.#beforeRead();
    const cutoff = envelopeCutoff(now, this.#limits.maxAgeMs);
    const index = this.#indexKey;
    let envelopes = 0;
    for (;;) {
      // Mailboxes whose oldest envelope is expired; each expire raises or drops its index entry,
      // so the loop ends.
      const batch = await this.#run(() =>
        this.#client.zrangebyscore(index, "-inf", `(${cutoff}`, "LIMIT", 0, 100)
      );
      if (batch.length === 0) break;
      for (const mailboxId of batch) {
        envelopes += await this.#run(() =>
          this.#scripts.chatExpire(...this.#keys(mailboxId), mailboxId, cutoff)
        );
      }
    }
    const lapsed = registrationCutoff(now, this.#limits.maxAgeMs);
    let mailboxes = 0;
    for (;;) {
      const n = await this.#run(() =>
        this.#scripts.chatForget(this.#registryKey, lapsed, `${this.#v2}mb:`)
      );
      mailboxes += n;
      if (n === 0) return { envelopes, mailboxes };
    }
  }

  /** Takes or renews `member`'s lease (JOIN_LUA, Redis's clock); true if it was running. */
  async join(member: string, leaseMs: number): Promise<boolean> {
    const r = await this.#run(() =>
      this.#scripts.chatJoin(this.#relaysKey, member, Math.ceil(leaseMs))
    );
    return r === 1;
  }

  async leave(member: string): Promise<void> {
    await this.#run(() => this.#client.zrem(this.#relaysKey, member));
  }

  /**
   * Down when Redis does not answer, and when it would refuse a put: at `maxmemory` (with
   * `noeviction`, writes fail with OOM), or close to it (95%) right after a put was refused so.
   * One PING and one `INFO memory`.
   */
  async check(): Promise<BackendStatus> {
    try {
      const [pong, info] = await this.#run(() =>
        Promise.all([this.#client.ping(), this.#client.info("memory")])
      );
      if (pong !== "PONG") return { ok: false, detail: `PING answered ${pong}` };
      const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1]);
      const used = field("used_memory"), max = field("maxmemory");
      if (max > 0 && (used >= max || (this.#oom && used >= 0.95 * max))) {
        return {
          ok: false,
          detail: `Redis is at maxmemory (${used} of ${max} bytes used): new messages are refused`,
        };
      }
      return { ok: true, detail: "connected" };
    } catch (e) {
      return { ok: false, detail: errorMessage(e) };
    }
  }

  async close(): Promise<void> {
    if (this.#closed || this.#closing) return;
    // Held puts are written before closing (their senders wait for the answer); none is held
    // from here on.
    this.#closing = true;
    await this.#writeHeld();
    const lastAcks = this.#sendAcks(); // before closing: a lost ack would repeat a delivery
    this.#closed = true;
    await lastAcks;
    clearInterval(this.#watchdog);
    for (const a of this.#acks.splice(0)) {
      a.done(new BackendUnavailableError("Redis mailbox is closed"));
    }
    if (!this.#owned) return;
    try {
      if (this.#client.status === "ready") await this.#client.quit();
      else this.#client.disconnect();
    } catch {
      this.#client.disconnect();
    }
  }
}
