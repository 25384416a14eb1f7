/**
 * Starts an embedded relay in this process on a free port, for tests that need a real server and
 * real sockets but not a subprocess.
 *
 * @module
 */
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
 * environment variables, e.g. `{ RELAY_AUTH_TIMEOUT_MS: "200" }`); a temporary data directory
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
