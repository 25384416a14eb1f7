/**
 * Relay configuration as one declarative table: each setting's flag, environment variable,
 * default, meaning and parser sit in one row ({@linkcode SETTINGS}). The help text, the README's
 * table (checked by tests/docs_test.ts) and the typed {@linkcode RelayConfig} are all produced
 * from it; a flag wins over the environment. Components receive typed slices (`config.http`,
 * `config.session`, ...), never the whole table.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { MAX_FRAME_BYTES_V2, parseRelayUrl } from "@chat-p2p/protocol";
import type { MailboxLimits } from "./ports/mailbox.ts";
import { isLevel, type Level } from "./infra/log.ts";
import type { RateSpec } from "./core/rate_limit.ts";
import { errorMessage } from "./ports/errors.ts";

/** A configuration problem: the relay prints it with the usage and exits 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Turns the text of a setting into its value; throws a plain Error saying what is wrong. */
type Parser<T> = (text: string) => T;

/** One row of the table. */
export interface Setting<T> {
  /** Command-line flag, e.g. `--port`. */
  readonly flag: string;
  /** Environment variable, e.g. `RELAY_PORT`. */
  readonly env: string;
  /** Default as text (parsed like a given value), or `undefined` for "not set". */
  readonly default: string | undefined;
  /** How the default is shown in help and the README when it is not a literal value. */
  readonly shown?: string;
  /** One line for the help and the README. */
  readonly meaning: string;
  /** Parses the text (the given value or the default). */
  readonly parse: Parser<T>;
}

function whole(
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  what = "a whole number",
): Parser<number> {
  return (text) => {
    const t = text.trim();
    if (!/^\d+$/.test(t)) throw new Error(`not ${what}`);
    const n = Number(t);
    if (n < min) throw new Error(`must be at least ${min}`);
    if (n > max) throw new Error(`must be at most ${max}`);
    return n;
  };
}

const text: Parser<string> = (t) => t;

const list: Parser<string[]> = (t) => t.split(",").map((x) => x.trim()).filter(Boolean);

/** Relay URLs by the protocol's grammar, canonical (what clients sign in `open`). */
const relayUrls: Parser<string[]> = (t) =>
  list(t).map((u) => {
    const n = parseRelayUrl(u);
    if (!n.ok) throw new Error(`'${u}': ${n.message}`);
    return n.value;
  });

const yesNo: Parser<boolean> = (text) => {
  const t = text.trim().toLowerCase();
  if (t === "true" || t === "1") return true;
  if (t === "false" || t === "0") return false;
  throw new Error("not one of true, false, 1, 0");
};

const level: Parser<Level> = (t) => {
  if (!isLevel(t)) throw new Error("not one of debug, info, warn, error");
  return t;
};

/** A row, keeping whether its default is set in the type (settings without one may be unset). */
function row<T, D extends string | undefined>(
  s: Setting<T> & { default: D },
): Setting<T> & { default: D } {
  return s;
}

/** Every setting, in help order. */
export const SETTINGS = {
  port: row({
    flag: "--port",
    env: "RELAY_PORT",
    default: "8080",
    meaning: "TCP port (0 picks a free one)",
    parse: whole(0, 65535, "a port number"),
  }),
  host: row({
    flag: "--host",
    env: "RELAY_HOST",
    default: "0.0.0.0",
    meaning: "address to listen on",
    parse: text,
  }),
  dataDir: row({
    flag: "--data-dir",
    env: "RELAY_DATA_DIR",
    default: "./relay-data",
    meaning: "embedded store directory (SQLite, WAL)",
    parse: text,
  }),
  diskReserveBytes: row({
    flag: "--disk-reserve-bytes",
    env: "RELAY_DISK_RESERVE_BYTES",
    default: "8388608",
    meaning: "kept free so acks drain a full disk (0 = none)",
    parse: whole(0),
  }),
  publicUrls: row({
    flag: "--public-url",
    env: "RELAY_PUBLIC_URL",
    default: undefined,
    shown: "(none)",
    meaning: "comma-separated URLs clients sign in open",
    parse: relayUrls,
  }),
  maxFrameBytes: row({
    flag: "--max-frame-bytes",
    env: "RELAY_MAX_FRAME_BYTES",
    default: String(MAX_FRAME_BYTES_V2),
    meaning: "largest frame accepted (fits the largest message)",
    parse: whole(1024),
  }),
  mailboxMaxCount: row({
    flag: "--mailbox-max-count",
    env: "RELAY_MAILBOX_MAX_COUNT",
    default: "10000",
    meaning: "envelopes held per pair mailbox",
    parse: whole(1),
  }),
  mailboxMaxBytes: row({
    flag: "--mailbox-max-bytes",
    env: "RELAY_MAILBOX_MAX_BYTES",
    default: "67108864",
    meaning: "bytes held per pair mailbox",
    parse: whole(1024),
  }),
  inboxMaxCount: row({
    flag: "--inbox-max-count",
    env: "RELAY_INBOX_MAX_COUNT",
    default: "1000",
    meaning: "envelopes held per request inbox",
    parse: whole(1),
  }),
  inboxMaxBytes: row({
    flag: "--inbox-max-bytes",
    env: "RELAY_INBOX_MAX_BYTES",
    default: "16777216",
    meaning: "bytes held per request inbox",
    parse: whole(1024),
  }),
  maxAgeSeconds: row({
    flag: "--max-age-seconds",
    env: "RELAY_MAX_AGE_SECONDS",
    default: "2592000",
    meaning: "envelopes older are dropped (30 d)",
    parse: whole(1),
  }),
  maxBufferedBytes: row({
    flag: "--max-buffered-bytes",
    env: "RELAY_MAX_BUFFERED_BYTES",
    default: "4194304",
    meaning: "slow-consumer bound per socket",
    parse: whole(65536),
  }),
  idleTimeoutMs: row({
    flag: "--idle-timeout-ms",
    env: "RELAY_IDLE_TIMEOUT_MS",
    default: "60000",
    meaning: "ping idle sockets; close without pong",
    parse: whole(0),
  }),
  maxMailboxesPerSocket: row({
    flag: "--max-mailboxes-per-socket",
    env: "RELAY_MAX_MAILBOXES_PER_SOCKET",
    default: "4096",
    meaning: "mailboxes one connection may open",
    parse: whole(1),
  }),
  frameRate: row({
    flag: "--frame-rate",
    env: "RELAY_FRAME_RATE",
    default: "100",
    meaning: "frames/s per connection (0 = unlimited)",
    parse: whole(0),
  }),
  frameBurst: row({
    flag: "--frame-burst",
    env: "RELAY_FRAME_BURST",
    default: "200",
    meaning: "burst of frames per connection",
    parse: whole(1),
  }),
  sendRate: row({
    flag: "--send-rate",
    env: "RELAY_SEND_RATE",
    default: "50",
    meaning: "sends/s per pair mailbox (0 = unlimited)",
    parse: whole(0),
  }),
  sendBurst: row({
    flag: "--send-burst",
    env: "RELAY_SEND_BURST",
    default: "100",
    meaning: "burst of sends per pair mailbox",
    parse: whole(1),
  }),
  inboxSendRate: row({
    flag: "--inbox-send-rate",
    env: "RELAY_INBOX_SEND_RATE",
    default: "60",
    meaning: "request-inbox sends/min per IP (0 = unlimited)",
    parse: whole(0),
  }),
  inboxSendBurst: row({
    flag: "--inbox-send-burst",
    env: "RELAY_INBOX_SEND_BURST",
    default: "60",
    meaning: "burst of request-inbox sends per IP",
    parse: whole(1),
  }),
  maxConnectionsPerIp: row({
    flag: "--max-connections-per-ip",
    env: "RELAY_MAX_CONNECTIONS_PER_IP",
    default: "64",
    meaning: "connections per IP, idle ones too (0 = unlimited)",
    parse: whole(0),
  }),
  maxConnections: row({
    flag: "--max-connections",
    env: "RELAY_MAX_CONNECTIONS",
    default: undefined,
    shown: "(auto)",
    meaning: "open connections before new ones are refused",
    parse: whole(1),
  }),
  requestHeaderTimeoutMs: row({
    flag: "--request-header-timeout-ms",
    env: "RELAY_REQUEST_HEADER_TIMEOUT_MS",
    default: "10000",
    meaning: "close connections that send no request",
    parse: whole(100),
  }),
  listenRetryMs: row({
    flag: "--listen-retry-ms",
    env: "RELAY_LISTEN_RETRY_MS",
    default: "30000",
    meaning: "exit 1 if the listener stays down so long",
    parse: whole(100),
  }),
  kafkaBrokers: row({
    flag: "--kafka-brokers",
    env: "KAFKA_BROKERS",
    default: undefined,
    shown: "(none)",
    meaning: "comma-separated brokers; enables the Kafka bus",
    parse: list,
  }),
  kafkaTopic: row({
    flag: "--kafka-topic",
    env: "KAFKA_TOPIC",
    default: "chat-envelopes",
    meaning: "topic for envelope announcements",
    parse: text,
  }),
  kafkaPartitions: row({
    flag: "--kafka-partitions",
    env: "KAFKA_PARTITIONS",
    default: "1",
    meaning: "partitions when the relay creates the topic",
    parse: whole(1),
  }),
  kafkaLingerMs: row({
    flag: "--kafka-linger-ms",
    env: "KAFKA_LINGER_MS",
    default: "0",
    meaning: "wait so long to batch announcements (fewer Kafka requests, later pushes)",
    parse: whole(0),
  }),
  publishAlone: row({
    flag: "--publish-alone",
    env: "RELAY_PUBLISH_ALONE",
    default: "false",
    meaning: "publish on Kafka even when no other relay holds a lease (upgrades from older relays)",
    parse: yesNo,
  }),
  redisUrl: row({
    flag: "--redis-url",
    env: "REDIS_URL",
    default: undefined,
    shown: "(none)",
    meaning: "redis://host:port; enables Redis mailboxes",
    parse: text,
  }),
  redisHoldMs: row({
    flag: "--redis-hold-ms",
    env: "REDIS_HOLD_MS",
    default: "20",
    meaning:
      "a relay alone holds a put for a reader on it so long; acked meanwhile, it is never written",
    parse: whole(0),
  }),
  logLevel: row({
    flag: "--log-level",
    env: "RELAY_LOG_LEVEL",
    default: "info",
    meaning: "debug, info, warn or error",
    parse: level,
  }),
  instanceId: row({
    flag: "--instance-id",
    env: "RELAY_INSTANCE_ID",
    default: undefined,
    shown: "(random)",
    meaning: "names this relay to Kafka (its client id)",
    parse: text,
  }),
};

/** The name of a setting (a key of {@linkcode SETTINGS}). */
export type SettingName = keyof typeof SETTINGS;

/** Every setting's parsed value; `undefined` only for settings without a default. */
export type SettingValues = {
  [K in SettingName]: typeof SETTINGS[K] extends Setting<infer T>
    ? typeof SETTINGS[K]["default"] extends string ? T : T | undefined
    : never;
};

/** Everything the relay can be told, grouped by the component that uses it. */
export interface RelayConfig {
  /** The listener and what happens before a WebSocket exists. */
  http: {
    port: number;
    hostname: string;
    /** Most simultaneous connections from one IP address, idle ones included. 0 = unlimited. */
    maxConnectionsPerIp: number;
    /** Most open connections; 0 = the descriptor limit minus a reserve (relay/http/guard.ts). */
    maxConnections: number;
    /** A connection that starts no request within this is closed. */
    requestHeaderTimeoutMs: number;
    /** The relay exits 1 when its listener cannot be opened again within this. */
    listenRetryMs: number;
    /** Idle sockets are pinged after this long and closed if no pong follows. 0 = never. */
    idleTimeoutMs: number;
  };
  /** One socket's protocol. */
  session: {
    maxFrameBytes: number;
    /** A socket whose unsent bytes pass this is closed as a slow consumer (1013). */
    maxBufferedBytes: number;
    /** Canonical public URLs clients sign in `open`; empty = only this relay's own loopback URLs. */
    publicUrls: string[];
    /** Mailboxes one socket may hold open; each costs the relay a subscription and memory. */
    maxMailboxes: number;
    /** Per-connection budget for every frame (token bucket). Rate 0 = unlimited. */
    frameRate: RateSpec;
    /** Per-pair-mailbox budget for sends, over this relay's sockets. Rate 0 = unlimited. */
    sendRate: RateSpec;
    /** Per-IP budget for request-inbox sends, over this relay's sockets. Rate 0 = unlimited. */
    inboxSendRate: RateSpec;
  };
  /** Where envelopes wait: SQLite in `dataDir`, or Redis when `redisUrl` is set. */
  storage: {
    dataDir: string;
    redisUrl: string | undefined;
    /** Redis: how long a put for a live reader here waits for its ack (0: written at once). */
    redisHoldMs: number;
    limits: MailboxLimits;
    /** Embedded store: bytes held in a reserve file, given back when the disk fills up. */
    diskReserveBytes: number;
  };
  /** The bus between relays: Kafka when `brokers` is not empty, else in-process. */
  kafka: {
    brokers: string[];
    topic: string;
    partitions: number;
    /** Producer linger (ms): 0 sends each event-loop turn's announcements at once. */
    lingerMs: number;
    /**
     * Publish even when the last put counted no other relay's lease: while relays from before
     * leases (which take none) still share the store.
     */
    publishAlone: boolean;
    instanceId: string;
  };
  logLevel: Level;
}

/** Usage text for `--help` and configuration errors, with the table aligned to its widest cell. */
export function usage(): string {
  const rows = Object.values(SETTINGS).map((s) => [
    `${s.flag} <v>`,
    s.env,
    s.shown ?? s.default ?? "",
    s.meaning,
  ]);
  const head = ["flag", "environment", "default", "meaning"];
  const widths = [0, 1, 2].map((i) => Math.max(head[i].length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => "  " + r.map((c, i) => i < 3 ? c.padEnd(widths[i]) : c).join("  ");
  return [
    "Usage: deno task relay [options]",
    "",
    "Every option can also be set by its environment variable; a flag wins.",
    line(head),
    ...rows.map(line),
    `  ${"--help".padEnd(widths[0])}  show this help`,
  ].join("\n");
}

/** Reads every setting from `args` (flags) and `env`, parsed; throws {@linkcode ConfigError}. */
export function readSettings(
  args: string[],
  env: Record<string, string | undefined>,
): SettingValues & { help: boolean } {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const s of Object.values(SETTINGS)) options[s.flag.slice(2)] = { type: "string" };
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new ConfigError(errorMessage(err));
  }
  const out: Record<string, unknown> = { help: flags.help === true };
  for (const [name, s] of Object.entries(SETTINGS) as [string, Setting<unknown>][]) {
    const given = flags[s.flag.slice(2)];
    const fromEnv = env[s.env] === "" ? undefined : env[s.env];
    const [source, value] = typeof given === "string"
      ? [s.flag, given]
      : fromEnv !== undefined
      ? [s.env, fromEnv]
      : ["default", s.default];
    if (value === undefined) {
      out[name] = undefined;
      continue;
    }
    try {
      out[name] = s.parse(value);
    } catch (err) {
      const what = source === s.flag
        ? `${s.flag} ${value}`
        : source === s.env
        ? `${s.env}=${value}`
        : `the default of ${s.flag} (${value})`;
      throw new ConfigError(`${what}: ${errorMessage(err)}`);
    }
  }
  return out as SettingValues & { help: boolean };
}

/** Reads the configuration from command-line arguments and the environment. */
export function parseConfig(
  args: string[],
  env: Record<string, string | undefined>,
): RelayConfig & { help: boolean } {
  const v = readSettings(args, env);
  return {
    help: v.help,
    http: {
      port: v.port,
      hostname: v.host,
      maxConnectionsPerIp: v.maxConnectionsPerIp,
      maxConnections: v.maxConnections ?? 0,
      requestHeaderTimeoutMs: v.requestHeaderTimeoutMs,
      listenRetryMs: v.listenRetryMs,
      idleTimeoutMs: v.idleTimeoutMs,
    },
    session: {
      maxFrameBytes: v.maxFrameBytes,
      maxBufferedBytes: v.maxBufferedBytes,
      publicUrls: v.publicUrls ?? [],
      maxMailboxes: v.maxMailboxesPerSocket,
      frameRate: { ratePerSecond: v.frameRate, burst: v.frameBurst },
      sendRate: { ratePerSecond: v.sendRate, burst: v.sendBurst },
      inboxSendRate: { ratePerSecond: v.inboxSendRate / 60, burst: v.inboxSendBurst },
    },
    storage: {
      dataDir: v.dataDir,
      redisUrl: v.redisUrl,
      redisHoldMs: v.redisHoldMs,
      diskReserveBytes: v.diskReserveBytes,
      limits: {
        maxCount: v.mailboxMaxCount,
        maxBytes: v.mailboxMaxBytes,
        maxAgeMs: v.maxAgeSeconds * 1000,
        inbox: { maxCount: v.inboxMaxCount, maxBytes: v.inboxMaxBytes },
      },
    },
    kafka: {
      brokers: v.kafkaBrokers ?? [],
      topic: v.kafkaTopic,
      partitions: v.kafkaPartitions,
      lingerMs: v.kafkaLingerMs,
      publishAlone: v.publishAlone,
      instanceId: v.instanceId ?? crypto.randomUUID(),
    },
    logLevel: v.logLevel,
  };
}
