/**
 * Centrifugo as a reference server: finds the binary, checks it is the pinned version, and runs
 * nodes with the memory engine or the Redis engine (a redis-server of its own, default
 * persistence), configured for the bench's connection tokens.
 *
 * @module
 */
import { join } from "node:path";
import { run, type Server, sleep, spawn } from "./proc.ts";

/** The version the issue measured and the bench pins. */
export const CENTRIFUGO_VERSION = "v6.9.1";
const INSTALL = `go install github.com/centrifugal/centrifugo/v6@${CENTRIFUGO_VERSION}`;

/** Where Centrifugo is, or why it cannot run. */
export type CentrifugoFound = { bin: string; version: string } | { missing: string };

async function which(cmd: string): Promise<string | undefined> {
  const r = await run("bash", ["-c", `command -v ${cmd}`]).catch(() => undefined);
  return r?.code === 0 ? r.stdout.trim() : undefined;
}

/**
 * `CENTRIFUGO_BIN`, `centrifugo` on PATH, or `$(go env GOPATH)/bin/centrifugo`. Binaries built by
 * `go install` report v0.0.0 as their version, so the module version is read with `go version -m`.
 */
export async function findCentrifugo(): Promise<CentrifugoFound> {
  const home = Deno.env.get("HOME") ?? "/root";
  const go = await which("go");
  const gopath = go ? (await run(go, ["env", "GOPATH"])).stdout.trim() : join(home, "go");
  const candidates = [
    Deno.env.get("CENTRIFUGO_BIN"),
    await which("centrifugo"),
    join(gopath || join(home, "go"), "bin", "centrifugo"),
  ].filter((c): c is string => !!c);
  const bin = candidates.find((c) => {
    try {
      return Deno.statSync(c).isFile;
    } catch {
      return false;
    }
  });
  if (!bin) {
    return {
      missing: go
        ? `Centrifugo is not installed (${INSTALL})`
        : `Go and Centrifugo are missing: install Go, then ${INSTALL}`,
    };
  }
  let version = "unknown";
  if (go) {
    const m = /\bmod\s+github\.com\/centrifugal\/centrifugo\/v6\s+(\S+)/.exec(
      (await run(go, ["version", "-m", bin])).stdout,
    );
    if (m) version = m[1];
  }
  if (version === "unknown") {
    version = /v?\d+\.\d+\.\d+/.exec((await run(bin, ["version"])).stdout)?.[0] ?? "unknown";
  }
  return { bin, version };
}

/** A free TCP port on 127.0.0.1 (closed again before it is used). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitPort(port: number, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (performance.now() > end) throw new Error(`${what} did not listen on ${port}`);
      await sleep(50);
    }
  }
}

/**
 * A redis-server with Redis's default persistence (no config file: RDB snapshots, no AOF, so no
 * fsync per write), as Centrifugo's Redis engine would usually run, in `dir`.
 */
export async function startPlainRedis(dir: string): Promise<Server> {
  await Deno.mkdir(dir, { recursive: true });
  const port = freePort();
  const child = spawn("redis-centrifugo", "redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
  ]);
  await waitPort(port, 10_000, "redis-server");
  return {
    child,
    port,
    pid: child.pid,
    url: `redis://127.0.0.1:${port}`,
    stop: () => child.stop(),
  };
}

/** Options of one Centrifugo node. */
export interface CentrifugoNodeOptions {
  bin: string;
  dir: string;
  name: string;
  /** HMAC secret for connection tokens (the generators sign with it). */
  secret: string;
  /** Redis engine at this URL; memory engine when unset. */
  redisUrl?: string;
}

/**
 * What every channel has: clients may subscribe and publish (the generators' senders publish
 * into their receiver's channel, as our senders send to a mailbox), and a history of 100
 * publications kept 5 minutes, so every publication is written to the engine (Redis: a stream
 * per channel) before it is broadcast, the nearest Centrifugo has to our store-then-deliver.
 */
export const CENTRIFUGO_CHANNEL = {
  allow_subscribe_for_client: true,
  allow_publish_for_client: true,
  history_size: 100,
  history_ttl: "300s",
  force_recovery: true,
};

/** Starts one Centrifugo node; resolves once its WebSocket endpoint listens. */
export async function startCentrifugo(o: CentrifugoNodeOptions): Promise<Server> {
  await Deno.mkdir(o.dir, { recursive: true });
  const port = freePort();
  const config = {
    http_server: { address: "127.0.0.1", port },
    log: { level: "error" },
    client: { token: { hmac_secret_key: o.secret } },
    channel: { without_namespace: CENTRIFUGO_CHANNEL },
    engine: o.redisUrl
      ? { type: "redis", redis: { address: [o.redisUrl], prefix: `bench-${o.secret.slice(0, 8)}` } }
      : { type: "memory" },
    usage_stats: { disabled: true },
  };
  const file = join(o.dir, `${o.name}.json`);
  await Deno.writeTextFile(file, JSON.stringify(config, null, 2));
  const child = spawn(o.name, o.bin, ["-c", file], { raiseFdLimit: true });
  await Promise.race([
    waitPort(port, 20_000, o.name),
    child.exited.then((s) => {
      throw new Error(`${o.name} exited (${s.code}): ${child.lines.slice(-5).join("\n")}`);
    }),
  ]);
  return {
    child,
    port,
    pid: child.pid,
    url: `ws://127.0.0.1:${port}/connection/websocket`,
    stop: () => child.stop(),
  };
}
