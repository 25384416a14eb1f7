/**
 * Starts an embedded relay in this process on a free port, for tests that need a real server and
 * real sockets but not a subprocess.
 *
 * @module
 */
import { join } from "node:path";
import { toBase64, toHex } from "@chat-p2p/protocol";
import { parseConfig } from "../relay/config.ts";
import { createLogger, type Logger } from "../relay/infra/log.ts";
import { type Adapters, type RunningRelay, startRelay } from "../relay/server.ts";

/** A relay plus its temp data dir; `await using` stops it and removes the dir. */
export interface TestRelay extends RunningRelay, AsyncDisposable {
  dataDir: string;
  logs: string[];
}

/**
 * Starts a relay on 127.0.0.1 with a free port, configured as `env` says (the relay's own
 * environment variables, e.g. `{ RELAY_FRAME_RATE: "0" }`); a temporary data directory
 * unless `RELAY_DATA_DIR` is given. `adapters` replace the backends the configuration names.
 */
export async function startTestRelay(
  env: Record<string, string> = {},
  adapters: Adapters = {},
): Promise<TestRelay> {
  const ownDir = env.RELAY_DATA_DIR === undefined;
  const dataDir = env.RELAY_DATA_DIR ?? await Deno.makeTempDir({ prefix: "chat-relay-" });
  const config = parseConfig([], {
    RELAY_PORT: "0",
    RELAY_HOST: "127.0.0.1",
    RELAY_DATA_DIR: dataDir,
    ...env,
  });
  const logs: string[] = [];
  const log: Logger = createLogger("debug", (line) => logs.push(line));
  const relay = await startRelay(config, log, adapters);
  return {
    ...relay,
    dataDir,
    logs,
    async [Symbol.asyncDispose]() {
      await relay.shutdown();
      await relay.finished;
      if (ownDir) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    },
  };
}

const latin1 = new TextDecoder("latin1");

/** Every byte of every file under `dir` (what a relay wrote there), as latin1 text to search. */
export function readTree(dir: string): Promise<string> {
  return readTreeSince(dir, new Map());
}

/** The size of every file under `dir`, by path: a mark for {@linkcode readTreeSince}. */
export async function treeSizes(dir: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for await (const e of Deno.readDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) { for (const [q, n] of await treeSizes(p)) sizes.set(q, n); }
    else if (e.isFile) sizes.set(p, (await Deno.stat(p)).size);
  }
  return sizes;
}

/**
 * What was appended under `dir` since `mark` ({@linkcode treeSizes}), as {@linkcode readTree}
 * reads it: a file's bytes past its marked size, a new file whole. For an append-only store that
 * other tests and benchmarks share (Redis's AOF grows to hundreds of MB, past the longest string
 * V8 can hold), this is everything a test's own flow can have written there. Not handled: Redis
 * rewriting its AOF during the test (the flow's writes would then sit in a new base file, in RDB
 * encoding).
 */
export async function readTreeSince(dir: string, mark: Map<string, number>): Promise<string> {
  let all = "";
  for (const [p, size] of await treeSizes(dir)) {
    const from = mark.get(p) ?? 0;
    if (size <= from) continue;
    using f = await Deno.open(p);
    await f.seek(from, Deno.SeekMode.Start);
    const bytes = new Uint8Array(size - from);
    let got = 0;
    while (got < bytes.length) {
      const n = await f.read(bytes.subarray(got));
      if (n === null) break;
      got += n;
    }
    all += latin1.decode(bytes.subarray(0, got));
  }
  return all;
}

/**
 * Every way a careless store could write `bytes` (a key): base64, base64url with and without
 * padding, hex in either case, and the raw bytes as {@linkcode readTree} decodes them (the same
 * latin1 decoder, which maps 0x80-0x9f as windows-1252 does: `String.fromCharCode` would not
 * match).
 */
export function encodings(bytes: Uint8Array): string[] {
  const b64 = toBase64(bytes);
  const url = b64.replaceAll("+", "-").replaceAll("/", "_");
  const hex = toHex(bytes);
  return [latin1.decode(bytes), b64, url, url.replace(/=+$/, ""), hex, hex.toUpperCase()];
}
