/**
 * Builds a running relay from a configuration: adapters, router, app, HTTP server, sweeper and
 * graceful shutdown. `main.ts` and the tests both use it. The Kafka and Redis adapters are loaded
 * only when configured, so the embedded relay never loads their clients.
 *
 * @module
 */
import { join } from "node:path";
import type { RelayConfig } from "./config.ts";
import type { Bus } from "./ports/bus.ts";
import { MemoryBus } from "./bus/memory.ts";
import { createApp } from "./http/app.ts";
import { ConnectionGuard } from "./http/guard.ts";
import { listen } from "./http/listener.ts";
import type { Logger } from "./infra/log.ts";
import type { Mailbox } from "./ports/mailbox.ts";
import { SqliteMailbox } from "./mailbox/sqlite/mailbox.ts";
import { Metrics } from "./infra/metrics.ts";
import { DataDirLock } from "./infra/data_dir_lock.ts";
import { LEASE, Router } from "./core/router.ts";
import { relayUrlsFor, type Session } from "./core/session.ts";
import { errorMessage } from "./ports/errors.ts";
import { retry } from "@chat-p2p/protocol/async";

/** A running relay. */
export interface RunningRelay {
  /** The port it listens on (useful with port 0). */
  port: number;
  /** ws:// URL of its WebSocket endpoint on 127.0.0.1. */
  url: string;
  router: Router;
  metrics: Metrics;
  sessions: Set<Session>;
  /** Graceful stop: refuse new connections, close sockets with 1001, flush and close stores. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped; rejects when it cannot listen any more. */
  finished: Promise<void>;
}

/** Builds the mailbox the configuration asks for. */
export async function makeMailbox(config: RelayConfig, log: Logger): Promise<Mailbox> {
  const { redisUrl, redisHoldMs, dataDir, limits, diskReserveBytes } = config.storage;
  if (redisUrl) {
    const { RedisMailbox } = await import("./mailbox/redis.ts");
    const bus = config.kafka.brokers.length > 0 ? config.kafka.topic : undefined;
    return await RedisMailbox.connect(redisUrl, limits, { logger: log, bus, holdMs: redisHoldMs });
  }
  return new SqliteMailbox(join(dataDir, "mailbox.db"), limits, {
    reserveBytes: diskReserveBytes,
    logger: log,
  });
}

/** Builds the bus the configuration asks for. */
export async function makeBus(config: RelayConfig, log: Logger): Promise<Bus> {
  if (config.kafka.brokers.length > 0) {
    const { KafkaBus } = await import("./bus/kafka/bus.ts");
    const { lingerMs, publishAlone: _, ...options } = config.kafka;
    return await KafkaBus.connect({ ...options, logger: log }, { lingerMs });
  }
  return new MemoryBus();
}

/**
 * Runs `make` until it succeeds or `ms` have passed, with capped backoff: a relay started beside
 * Kafka or Redis (compose, a topic just created, a broker still electing leaders) waits for them
 * instead of exiting. Throws the last attempt's error.
 */
async function withStartupRetry<T>(
  what: string,
  log: Logger,
  make: () => Promise<T>,
  ms = 60_000,
): Promise<T> {
  let last: unknown;
  const giveUp = new AbortController();
  const timer = setTimeout(() => giveUp.abort(), ms);
  try {
    return await retry(async () => {
      try {
        return await make();
      } catch (err) {
        last = err;
        log.warn(`waiting for ${what}`, { err: errorMessage(err) });
        throw err;
      }
    }, {
      maxAttempts: Infinity,
      minTimeout: 250,
      maxTimeout: 5000,
      jitter: 0,
      signal: giveUp.signal,
    });
  } catch (err) {
    throw last ?? err;
  } finally {
    clearTimeout(timer);
  }
}

/** Adapters to use instead of the ones the configuration asks for (tests). */
export interface Adapters {
  mailbox?: Mailbox;
  bus?: Bus;
}

/** Starts a relay. */
export async function startRelay(
  config: RelayConfig,
  log: Logger,
  adapters: Adapters = {},
): Promise<RunningRelay> {
  const metrics = new Metrics();
  const dataDirLock = config.storage.redisUrl
    ? null
    : await DataDirLock.acquire(config.storage.dataDir);
  // Only the network backends are waited for: a SQLite file that cannot be opened (a wrong
  // --data-dir, no permission) will not fix itself, so it fails at once.
  const mailbox = adapters.mailbox ??
    (config.storage.redisUrl
      ? await withStartupRetry("Redis", log, () => makeMailbox(config, log))
      : await makeMailbox(config, log));
  const bus = adapters.bus ??
    (config.kafka.brokers.length > 0
      ? await withStartupRetry("Kafka", log, () => makeBus(config, log))
      : await makeBus(config, log));
  log.info("backends", {
    mailbox: mailbox.kind,
    bus: bus.kind,
    ...(mailbox instanceof SqliteMailbox ? { data_dir: config.storage.dataDir } : {}),
  });
  const router = new Router(mailbox, bus, log, metrics, {
    ...LEASE,
    skipAlone: !config.kafka.publishAlone,
  });
  await (config.kafka.brokers.length > 0 || config.storage.redisUrl
    ? withStartupRetry("the bus subscription and the relay's lease", log, () => router.start())
    : router.start());
  const sessions = new Set<Session>();
  const relayUrls = new Set<string>();
  const guard = new ConnectionGuard(config.http, log, metrics);
  const app = createApp({
    router,
    log,
    metrics,
    sessions,
    http: config.http,
    session: config.session,
    relayUrls,
    guard,
  });
  const server = await listen(
    {
      hostname: config.http.hostname,
      port: config.http.port,
      retryMs: config.http.listenRetryMs,
      onFailure: () => guard.scan(performance.now(), true),
    },
    app.fetch,
    log,
    metrics,
  );
  const port = server.port;
  guard.start(port, config.http.hostname);
  const url = `ws://127.0.0.1:${port}/ws`;
  const { publicUrls } = config.session;
  for (const u of relayUrlsFor({ publicUrls, hostname: config.http.hostname, port })) {
    relayUrls.add(u);
  }
  log.info("listening", {
    port,
    url,
    host: config.http.hostname,
    relay_urls: [...relayUrls],
    max_connections: guard.capacity,
  });
  if (publicUrls.length === 0) {
    log.info("opens are accepted only for the relay_urls above", {
      hint: "set RELAY_PUBLIC_URL to the URL clients on other machines or behind a proxy use",
    });
  }

  const sweeper = setInterval(() => {
    mailbox.sweep().then((n) => {
      if (n.envelopes > 0) log.info("expired envelopes dropped", { count: n.envelopes });
      if (n.mailboxes > 0) {
        log.info("lapsed mailbox registrations forgotten", { count: n.mailboxes });
      }
    }).catch((err) => log.warn("sweep failed", { err: errorMessage(err) }));
  }, 60_000);

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    stopping ??= (async () => {
      clearInterval(sweeper);
      guard.stop();
      log.info("shutting down", { sessions: sessions.size });
      const serverDone = server.shutdown(); // stop accepting; waits for open requests
      for (const s of sessions) s.shutdown();
      await serverDone;
      await router.stop();
      await bus.close();
      await mailbox.close();
      dataDirLock?.release();
      log.info("stopped");
    })();

  return { port, url, router, metrics, sessions, shutdown, finished: server.finished };
}
