import assert from "node:assert/strict";
import { ConfigError, parseConfig, readSettings, SETTINGS, usage } from "./config.ts";

Deno.test("config: defaults make a working embedded relay", () => {
  const c = parseConfig([], {});
  assert.equal(c.help, false);
  assert.deepEqual(c.http, {
    port: 8080,
    hostname: "0.0.0.0",
    maxConnectionsPerIp: 64,
    maxConnections: 0,
    requestHeaderTimeoutMs: 10_000,
    listenRetryMs: 30_000,
    idleTimeoutMs: 60_000,
  });
  assert.equal(c.session.maxFrameBytes, 131072, "fits the largest padded message");
  assert.deepEqual(c.session.publicUrls, []);
  assert.deepEqual(c.session.frameRate, { ratePerSecond: 100, burst: 200 });
  assert.deepEqual(c.session.sendRate, { ratePerSecond: 50, burst: 100 });
  assert.deepEqual(c.session.inboxSendRate, { ratePerSecond: 1, burst: 60 });
  assert.deepEqual(c.storage, {
    dataDir: "./relay-data",
    redisUrl: undefined,
    redisHoldMs: 20,
    limits: {
      maxCount: 10_000,
      maxBytes: 64 * 1024 * 1024,
      maxAgeMs: 30 * 24 * 3600 * 1000,
      inbox: { maxCount: 1000, maxBytes: 16 * 1024 * 1024 },
    },
    diskReserveBytes: 8 * 1024 * 1024,
  });
  assert.deepEqual(c.kafka.brokers, []);
  assert.match(c.kafka.instanceId, /^[0-9a-f-]{36}$/, "a random instance id");
  assert.equal(c.logLevel, "info");
});

Deno.test("config: a flag wins over the environment; empty variables count as unset", () => {
  const c = parseConfig(["--port", "9000"], { RELAY_PORT: "7000", RELAY_HOST: "" });
  assert.equal(c.http.port, 9000);
  assert.equal(c.http.hostname, "0.0.0.0");
  assert.equal(parseConfig([], { RELAY_PORT: "7000" }).http.port, 7000);
  const k = parseConfig(["--kafka-brokers", "a:1, b:2,"], {});
  assert.deepEqual(k.kafka.brokers, ["a:1", "b:2"]);
  assert.equal(parseConfig([], { RELAY_MAX_AGE_SECONDS: "60" }).storage.limits.maxAgeMs, 60_000);
  assert.equal(parseConfig([], {}).kafka.publishAlone, false);
  assert.equal(parseConfig([], { RELAY_PUBLISH_ALONE: "TRUE" }).kafka.publishAlone, true);
  assert.equal(
    parseConfig(["--publish-alone", "0"], { RELAY_PUBLISH_ALONE: "1" }).kafka.publishAlone,
    false,
  );
  assert.equal(parseConfig(["--kafka-linger-ms", "3"], {}).kafka.lingerMs, 3);
  assert.equal(parseConfig([], { REDIS_HOLD_MS: "0" }).storage.redisHoldMs, 0);
  assert.throws(() => parseConfig(["--redis-hold-ms", "-1"], {}), ConfigError);
});

Deno.test("config: errors name what the user typed, flag or variable", () => {
  const fails = (args: string[], env: Record<string, string>, message: string) =>
    assert.throws(() => parseConfig(args, env), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message, message);
      return true;
    });
  fails(["--port", "abc"], {}, "--port abc: not a port number");
  fails([], { RELAY_PORT: "abc" }, "RELAY_PORT=abc: not a port number");
  fails(["--port", "70000"], {}, "--port 70000: must be at most 65535");
  fails(["--max-frame-bytes", "10"], {}, "--max-frame-bytes 10: must be at least 1024");
  fails(["--frame-rate=-1"], {}, "--frame-rate -1: not a whole number");
  fails(
    [],
    { RELAY_PUBLISH_ALONE: "yes" },
    "RELAY_PUBLISH_ALONE=yes: not one of true, false, 1, 0",
  );
  fails(
    [],
    { RELAY_LOG_LEVEL: "loud" },
    "RELAY_LOG_LEVEL=loud: not one of debug, info, warn, error",
  );
  fails(
    ["--public-url", "ftp://x"],
    {},
    "--public-url ftp://x: 'ftp://x': Not a relay URL: the scheme 'ftp' is not ws, wss, http or https",
  );
  fails(
    [],
    { RELAY_PUBLIC_URL: "wss://relay.example/ws?x=1" },
    "RELAY_PUBLIC_URL=wss://relay.example/ws?x=1: 'wss://relay.example/ws?x=1': " +
      "Not a relay URL: it has a query ('?')",
  );
  assert.throws(() => parseConfig(["--nope"], {}), ConfigError);
  assert.throws(() => parseConfig(["stray"], {}), ConfigError);
});

Deno.test("config: public URLs are canonical by the protocol's grammar; --help is read", () => {
  const c = parseConfig(["--public-url", "https://Relay.Example:443/, ws://x:80/ws"], {});
  assert.deepEqual(c.session.publicUrls, ["wss://relay.example/ws", "ws://x/ws"]);
  assert.deepEqual(
    parseConfig([], { RELAY_PUBLIC_URL: "ws://[0:0:0:0:0:0:0:1]:9000" }).session.publicUrls,
    ["ws://[::1]:9000/ws"],
  );
  assert.deepEqual(
    parseConfig([], { RELAY_INBOX_SEND_RATE: "30", RELAY_INBOX_MAX_COUNT: "5" }).session
      .inboxSendRate,
    { ratePerSecond: 0.5, burst: 60 },
  );
  assert.equal(readSettings(["--help"], {}).help, true);
});

Deno.test("config: every row has a flag, a variable and a meaning; usage lists them aligned", () => {
  const text = usage();
  const lines = text.split("\n");
  const header = lines.find((l) => l.trimStart().startsWith("flag "))!;
  const envColumn = header.indexOf("environment");
  const defaultColumn = header.indexOf("default");
  for (const s of Object.values(SETTINGS)) {
    assert.match(s.flag, /^--[a-z-]+$/);
    assert.match(s.env, /^[A-Z_]+$/);
    assert.ok(s.meaning.length > 0);
    const line = lines.find((l) => l.trimStart().startsWith(s.flag + " "));
    assert.ok(line, `usage lists ${s.flag}`);
    assert.equal(line.indexOf(s.env), envColumn, `${s.env} is in the environment column`);
    assert.equal(
      line.indexOf(s.shown ?? s.default ?? ""),
      defaultColumn,
      `${s.flag}'s default is in the default column`,
    );
    if (s.default !== undefined) s.parse(s.default); // every default parses
  }
});
