/**
 * Relay entry point (`deno task relay`): reads configuration, starts the relay, stops it
 * gracefully on SIGINT/SIGTERM. The only module of the relay that exits the process.
 *
 * @module
 */
import { ConfigError, parseConfig, usage } from "./config.ts";
import { createLogger } from "./infra/log.ts";
import { startRelay } from "./server.ts";
import { errorMessage } from "./ports/errors.ts";

async function main(): Promise<number> {
  let config;
  try {
    config = parseConfig(Deno.args, Deno.env.toObject());
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`error: ${err.message}\n\n${usage()}`);
      return 2;
    }
    throw err;
  }
  if (config.help) {
    console.log(usage());
    return 0;
  }
  const log = createLogger(config.logLevel);
  let relay;
  try {
    relay = await startRelay(config, log);
  } catch (err) {
    log.error("cannot start relay", { err: errorMessage(err) });
    return 1;
  }
  const stop = () => {
    relay.shutdown();
    // Bound the shutdown: exit even if a backend hangs.
    setTimeout(() => {
      log.error("shutdown took too long; exiting");
      Deno.exit(1);
    }, 10_000).unref?.();
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    log.error("unhandled rejection", { err: String((e.reason as Error)?.message ?? e.reason) });
  });
  await relay.finished;
  await relay.shutdown(); // the server stops first; then the stores are flushed and closed
  return 0;
}

Deno.exit(await main());
