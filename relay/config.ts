/**
 * Relay configuration: every setting from a flag or an environment variable (flag wins), with
 * defaults that make `deno task relay` work with no configuration at all.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DEFAULT_MAX_FRAME_BYTES, normalizeRelayUrl } from "@chat-p2p/protocol";
import { DEFAULT_MAILBOX_LIMITS, type MailboxLimits } from "./ports/mailbox.ts";
import { isLevel, type Level } from "./infra/log.ts";
import type { RateSpec } from "./core/rate_limit.ts";

/** Everything the relay can be told. */
export interface RelayConfig {
  port: number;
  hostname: string;
  dataDir: string;
  /** Public URLs clients sign in auth; empty = accept the URL whose host matches the request. */
  publicUrls: string[];
  maxFrameBytes: number;
  mailbox: MailboxLimits;
  authTimeoutMs: number;
  /** A socket whose unsent bytes pass this is closed as a slow consumer (1013). */
  maxBufferedBytes: number;
  /** Idle sockets are pinged after this long and closed if no pong follows. 0 = never. */
  idleTimeoutMs: number;
  /** Per-connection budget for every frame (token bucket). Rate 0 = unlimited. */
  frameRate: RateSpec;
  /** Per-key budget for sends, across that key's sockets on this relay. Rate 0 = unlimited. */
  sendRate: RateSpec;
  /** Most simultaneous sockets from one IP address. 0 = unlimited. */
  maxConnectionsPerIp: number;
  kafkaBrokers: string[];
  kafkaTopic: string;
  kafkaPartitions: number;
  redisUrl?: string;
  logLevel: Level;
  /** Unique per relay process; names its Kafka consumer group. */
  instanceId: string;
}

/** A configuration problem: the relay prints it with the usage and exits 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** One row per setting: flag, environment variable, default, meaning (README reads the same). */
export const SETTINGS = [
  ["--port", "RELAY_PORT", "8080", "TCP port (0 picks a free one)"],
  ["--host", "RELAY_HOST", "0.0.0.0", "address to listen on"],
  ["--data-dir", "RELAY_DATA_DIR", "./relay-data", "embedded store directory (SQLite, WAL)"],
  ["--public-url", "RELAY_PUBLIC_URL", "(none)", "comma-separated URLs clients sign in auth"],
  ["--max-frame-bytes", "RELAY_MAX_FRAME_BYTES", "65536", "largest frame accepted"],
  ["--mailbox-max-count", "RELAY_MAILBOX_MAX_COUNT", "10000", "envelopes held per recipient"],
  ["--mailbox-max-bytes", "RELAY_MAILBOX_MAX_BYTES", "67108864", "bytes held per recipient"],
  ["--max-age-seconds", "RELAY_MAX_AGE_SECONDS", "2592000", "envelopes older are dropped (30 d)"],
  ["--auth-timeout-ms", "RELAY_AUTH_TIMEOUT_MS", "10000", "unauthenticated socket lifetime"],
  ["--max-buffered-bytes", "RELAY_MAX_BUFFERED_BYTES", "4194304", "slow-consumer bound per socket"],
  ["--idle-timeout-ms", "RELAY_IDLE_TIMEOUT_MS", "60000", "ping idle sockets; close without pong"],
  ["--frame-rate", "RELAY_FRAME_RATE", "100", "frames/s per connection (0 = unlimited)"],
  ["--frame-burst", "RELAY_FRAME_BURST", "200", "burst of frames per connection"],
  ["--send-rate", "RELAY_SEND_RATE", "50", "sends/s per key (0 = unlimited)"],
  ["--send-burst", "RELAY_SEND_BURST", "100", "burst of sends per key"],
  [
    "--max-connections-per-ip",
    "RELAY_MAX_CONNECTIONS_PER_IP",
    "64",
    "sockets per IP (0 = unlimited)",
  ],
  ["--kafka-brokers", "KAFKA_BROKERS", "(none)", "comma-separated brokers; enables the Kafka bus"],
  ["--kafka-topic", "KAFKA_TOPIC", "chat-envelopes", "topic for envelope announcements"],
  ["--kafka-partitions", "KAFKA_PARTITIONS", "12", "partitions when the relay creates the topic"],
  ["--redis-url", "REDIS_URL", "(none)", "redis://host:port; enables Redis mailboxes"],
  ["--log-level", "RELAY_LOG_LEVEL", "info", "debug, info, warn or error"],
  ["--instance-id", "RELAY_INSTANCE_ID", "(random)", "names this relay's Kafka consumer group"],
] as const;

/** Usage text for `--help` and configuration errors. */
export function usage(): string {
  const rows = SETTINGS.map(([flag, envName, def, what]) =>
    `  ${(flag + " <v>").padEnd(26)} ${envName.padEnd(26)} ${def.padEnd(16)} ${what}`
  );
  return [
    "Usage: deno task relay [options]",
    "",
    "Every option can also be set by its environment variable; a flag wins.",
    `  ${"flag".padEnd(26)} ${"environment".padEnd(26)} ${"default".padEnd(16)} meaning`,
    ...rows,
    "  --help                     show this help",
  ].join("\n");
}

function int(name: string, text: string, min: number): number {
  if (!/^\d+$/.test(text.trim())) {
    throw new ConfigError(`${name} must be a whole number, got '${text}'`);
  }
  const n = Number(text);
  if (n < min) throw new ConfigError(`${name} must be at least ${min}, got ${n}`);
  return n;
}

/** Reads the configuration from command-line arguments and the environment. */
export function parseConfig(
  args: string[],
  env: Record<string, string | undefined>,
): RelayConfig & { help: boolean } {
  const options: Record<string, { type: "string" }> = {};
  for (const [flag] of SETTINGS) options[flag.slice(2)] = { type: "string" };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      options: { ...options, help: { type: "boolean" } },
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  const get = (flag: string): string | undefined => {
    const row = SETTINGS.find(([f]) => f === flag)!;
    const v = values[flag.slice(2)];
    if (typeof v === "string") return v;
    const e = env[row[1]];
    return e === undefined || e === "" ? undefined : e;
  };
  const list = (s: string | undefined) => (s ?? "").split(",").map((x) => x.trim()).filter(Boolean);

  const publicUrls = list(get("--public-url")).map((u) => {
    const n = normalizeRelayUrl(u);
    if (!n) throw new ConfigError(`RELAY_PUBLIC_URL: '${u}' is not a ws:// or wss:// URL`);
    return n;
  });
  const logLevel = get("--log-level") ?? "info";
  if (!isLevel(logLevel)) {
    throw new ConfigError(`RELAY_LOG_LEVEL must be debug, info, warn or error`);
  }
  const port = int("RELAY_PORT", get("--port") ?? "8080", 0);
  if (port > 65535) throw new ConfigError(`RELAY_PORT must be at most 65535, got ${port}`);
  return {
    help: values.help === true,
    port,
    hostname: get("--host") ?? "0.0.0.0",
    dataDir: get("--data-dir") ?? "./relay-data",
    publicUrls,
    maxFrameBytes: int(
      "RELAY_MAX_FRAME_BYTES",
      get("--max-frame-bytes") ?? String(DEFAULT_MAX_FRAME_BYTES),
      1024,
    ),
    mailbox: {
      maxCount: int(
        "RELAY_MAILBOX_MAX_COUNT",
        get("--mailbox-max-count") ?? String(DEFAULT_MAILBOX_LIMITS.maxCount),
        1,
      ),
      maxBytes: int(
        "RELAY_MAILBOX_MAX_BYTES",
        get("--mailbox-max-bytes") ?? String(DEFAULT_MAILBOX_LIMITS.maxBytes),
        1024,
      ),
      maxAgeMs: 1000 *
        int(
          "RELAY_MAX_AGE_SECONDS",
          get("--max-age-seconds") ?? String(DEFAULT_MAILBOX_LIMITS.maxAgeMs / 1000),
          1,
        ),
    },
    authTimeoutMs: int("RELAY_AUTH_TIMEOUT_MS", get("--auth-timeout-ms") ?? "10000", 100),
    maxBufferedBytes: int(
      "RELAY_MAX_BUFFERED_BYTES",
      get("--max-buffered-bytes") ?? String(4 * 1024 * 1024),
      65536,
    ),
    idleTimeoutMs: int("RELAY_IDLE_TIMEOUT_MS", get("--idle-timeout-ms") ?? "60000", 0),
    frameRate: {
      ratePerSecond: int("RELAY_FRAME_RATE", get("--frame-rate") ?? "100", 0),
      burst: int("RELAY_FRAME_BURST", get("--frame-burst") ?? "200", 1),
    },
    sendRate: {
      ratePerSecond: int("RELAY_SEND_RATE", get("--send-rate") ?? "50", 0),
      burst: int("RELAY_SEND_BURST", get("--send-burst") ?? "100", 1),
    },
    maxConnectionsPerIp: int(
      "RELAY_MAX_CONNECTIONS_PER_IP",
      get("--max-connections-per-ip") ?? "64",
      0,
    ),
    kafkaBrokers: list(get("--kafka-brokers")),
    kafkaTopic: get("--kafka-topic") ?? "chat-envelopes",
    kafkaPartitions: int("KAFKA_PARTITIONS", get("--kafka-partitions") ?? "12", 1),
    redisUrl: get("--redis-url"),
    logLevel,
    instanceId: get("--instance-id") ?? crypto.randomUUID(),
  };
}
