import assert from "node:assert/strict";
import { ConfigError, parseConfig, readSettings, SETTINGS, usage } from "./config.ts";

Deno.test("config: defaults make a working embedded relay", () => {
  const c = parseConfig([], {});
  assert.equal(c.help, false);
  assert.deepEqual(c.http, {
    port: 8080,
    hostname: "0.0.0.0",
    maxConnectionsPerIp: 64,
    idleTimeoutMs: 60_000,
  });
  assert.equal(c.session.maxFrameBytes, 65536);
  assert.deepEqual(c.session.publicUrls, []);
  assert.deepEqual(c.session.frameRate, { ratePerSecond: 100, burst: 200 });
  assert.deepEqual(c.session.sendRate, { ratePerSecond: 50, burst: 100 });
  assert.deepEqual(c.storage, {
    dataDir: "./relay-data",
    redisUrl: undefined,
    limits: { maxCount: 10_000, maxBytes: 64 * 1024 * 1024, maxAgeMs: 30 * 24 * 3600 * 1000 },
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
    { RELAY_LOG_LEVEL: "loud" },
    "RELAY_LOG_LEVEL=loud: not one of debug, info, warn, error",
  );
  fails(
    ["--public-url", "ftp://x"],
    {},
    "--public-url ftp://x: 'ftp://x' is not a ws:// or wss:// URL",
  );
  assert.throws(() => parseConfig(["--nope"], {}), ConfigError);
  assert.throws(() => parseConfig(["stray"], {}), ConfigError);
});

Deno.test("config: public URLs are normalised; --help is read", () => {
  const c = parseConfig(["--public-url", "https://Relay.Example:443/, ws://x:80/ws"], {});
  assert.deepEqual(c.session.publicUrls, ["wss://relay.example/ws", "ws://x/ws"]);
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
