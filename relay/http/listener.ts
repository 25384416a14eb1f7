/**
 * The relay's listener: `Deno.serve`, kept listening. When the server's accept loop dies (running
 * out of file descriptors ends it for good, while the process lives on), it listens again on the
 * same port as soon as it can; if it cannot for `retryMs`, `finished` rejects and the relay exits
 * non-zero so a supervisor restarts it (issue 12, item 1). Open WebSockets are not affected.
 *
 * @module
 */
import { backoffDelay, delay } from "@chat-p2p/protocol/async";
import type { Logger } from "../infra/log.ts";
import type { Metrics } from "../infra/metrics.ts";
import { serveOrExplain } from "../infra/listen.ts";
import { errorMessage } from "../ports/errors.ts";

/** A listener that survives its accept loop. */
export interface RelayListener {
  /** The port it listens on. */
  readonly port: number;
  /** Resolves after shutdown; rejects when the relay cannot listen any more. */
  readonly finished: Promise<void>;
  /** Stops listening and waits for open requests. */
  shutdown(): Promise<void>;
}

/** Starts listening on `hostname`:`port` (0 = any free port) with `handler`. */
export async function listen(
  opts: {
    hostname: string;
    port: number;
    retryMs: number;
    /** Called when the accept loop died, before listening again (the guard sheds there). */
    onFailure?: () => void;
  },
  handler: Deno.ServeHandler<Deno.NetAddr>,
  log: Logger,
  metrics?: Metrics,
): Promise<RelayListener> {
  const { promise: listening, resolve: onListen } = Promise.withResolvers<number>();
  // The first listen explains what a person can fix (port taken, no such address).
  let server: Deno.HttpServer<Deno.NetAddr> = serveOrExplain({
    port: opts.port,
    hostname: opts.hostname,
    onListen: ({ port }) => onListen(port),
  }, handler);
  const port = await listening;
  const done = Promise.withResolvers<void>();
  let stopping = false;

  const reopen = async (why: unknown) => {
    log.error("listener failed; listening again as soon as possible", { err: errorMessage(why) });
    metrics?.inc("listener_failures_total");
    opts.onFailure?.();
    const since = Date.now();
    for (let attempt = 0; !stopping; attempt++) {
      try {
        server = Deno.serve({ port, hostname: opts.hostname, onListen: () => {} }, handler);
        log.warn("listening again", { port, after_ms: Date.now() - since });
        watch(server);
        return;
      } catch (err) {
        opts.onFailure?.();
        if (Date.now() - since >= opts.retryMs) {
          done.reject(
            new Error(`cannot listen on port ${port} for ${opts.retryMs} ms: ${errorMessage(err)}`),
          );
          return;
        }
        await delay(backoffDelay(attempt, { minTimeout: 100, maxTimeout: 1000, jitter: 0 }));
      }
    }
    done.resolve();
  };
  const watch = (s: Deno.HttpServer) => {
    s.finished.then(
      () => stopping ? done.resolve() : reopen(new Error("the server stopped")),
      (err) => stopping ? done.resolve() : reopen(err),
    );
  };
  watch(server);

  return {
    port,
    finished: done.promise,
    async shutdown() {
      stopping = true;
      await server.shutdown().catch(() => {});
      await done.promise.catch(() => {});
    },
  };
}
