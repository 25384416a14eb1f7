/**
 * The relay's HTTP surface (Hono): GET /ws (WebSocket), /healthz, /readyz, /metrics. Takes its
 * collaborators as arguments; knows nothing of Kafka, Redis or SQLite.
 *
 * @module
 */
import { Hono } from "hono";
import type { Logger } from "../infra/log.ts";
import type { Metrics } from "../infra/metrics.ts";
import type { Router } from "../core/router.ts";
import { Session, type Transport } from "../core/session.ts";
import { KeyedBuckets } from "../core/rate_limit.ts";
import type { RelayConfig } from "../config.ts";
import { type BackendStatus, errorMessage } from "../ports/errors.ts";
import { deadline, isTimeoutError } from "@chat-p2p/protocol/async";
import { addressKey, type ConnectionGuard } from "./guard.ts";

/** What the app needs. */
export interface AppDeps {
  router: Router;
  log: Logger;
  metrics: Metrics;
  /** The listener's limits. */
  http: Pick<RelayConfig["http"], "idleTimeoutMs" | "maxConnectionsPerIp">;
  /** What every session is told. */
  session: RelayConfig["session"];
  /** Every open session, so shutdown can close them with 1001. */
  sessions: Set<Session>;
  /** The relay URLs clients may sign (filled in once the port is known). */
  relayUrls: ReadonlySet<string>;
  /** Watches connections the server does not show (idle ones, descriptors); optional in tests. */
  guard?: ConnectionGuard;
}

/** Hono's environment here: Deno.serve passes its connection info as the bindings. */
export type RelayEnv = { Bindings: Deno.ServeHandlerInfo<Deno.NetAddr> | undefined };

/** Builds the Hono app. */
export function createApp(deps: AppDeps): Hono<RelayEnv> {
  const { router, log, metrics, http: options, sessions, guard } = deps;
  const app = new Hono<RelayEnv>();
  const perIp = new Map<string, number>();
  const sessionOptions = {
    ...deps.session,
    relayUrls: deps.relayUrls,
    mailboxSends: new KeyedBuckets(deps.session.sendRate),
    inboxSends: new KeyedBuckets(deps.session.inboxSendRate),
  };

  metrics.describe("mailbox_envelopes", "gauge", "envelopes held in all mailboxes");
  metrics.describe("mailbox_bytes", "gauge", "bytes held in all mailboxes");
  if (router.mailbox.totals) {
    const totals = router.mailbox.totals.bind(router.mailbox);
    metrics.gauge("mailbox_envelopes", async () => (await totals()).count);
    metrics.gauge("mailbox_bytes", async () => (await totals()).bytes);
  }
  metrics.describe(
    "connections",
    "gauge",
    "open WebSocket connections: reading (opened a mailbox) or not",
  );
  metrics.gauge("connections", () => {
    let reading = 0;
    for (const s of sessions) if (s.reading) reading++;
    return [[{ state: "reading" }, reading], [{ state: "not_reading" }, sessions.size - reading]];
  });

  // Every request tells the guard its connection is not idle until it is answered (a slow answer,
  // such as /metrics while a backend stalls, is not a silent connection); an upgraded one is
  // watched by its session from then on.
  if (guard) {
    app.use(async (c, next) => {
      const addr = c.env?.remoteAddr;
      if (addr) guard.request(addr.hostname, addr.port);
      try {
        await next();
      } finally {
        if (addr && c.res.status !== 101) guard.answered(addr.hostname, addr.port);
      }
    });
  }

  // WebSockets per IP are counted from the upgrade request to the socket's close; idle
  // connections from the same address (the guard's count) take places too.
  app.get("/ws", async (c, next) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return await next();
    const ip = addressKey(c.env?.remoteAddr?.hostname ?? "unknown");
    const full = guard?.full();
    if (full) {
      metrics.inc("connections_shed_total", { reason: "capacity" });
      return c.json({ error: "unavailable", message: `the relay is ${full}; retry later` }, 503);
    }
    const n = (perIp.get(ip) ?? 0) + (guard?.idleFrom(ip) ?? 0);
    if (options.maxConnectionsPerIp > 0 && n >= options.maxConnectionsPerIp) {
      metrics.inc("rate_limited_total", { scope: "ip" });
      return c.json({
        error: "rate_limited",
        message: `too many connections from this address (limit ${options.maxConnectionsPerIp})`,
      }, 429);
    }
    perIp.set(ip, n + 1);
    await next();
    if (c.res.status !== 101) release(ip);
  });
  const release = (ip: string) => {
    const n = (perIp.get(ip) ?? 1) - 1;
    if (n <= 0) perIp.delete(ip);
    else perIp.set(ip, n);
  };

  // The upgrade itself is Deno's: Hono's upgradeWebSocket helper wraps every socket in a
  // WSContext with two URL objects and four closures, which the relay never uses (the bench's
  // connections row: memory per socket).
  const wsOptions = options.idleTimeoutMs > 0
    ? { idleTimeout: Math.ceil(options.idleTimeoutMs / 1000) }
    : {};
  app.get("/ws", (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      return c.json(
        { error: "upgrade_required", message: "GET /ws expects a WebSocket upgrade" },
        426,
      );
    }
    const addr = c.env?.remoteAddr;
    const ip = addressKey(addr?.hostname ?? "unknown");
    const protocol = c.req.header("sec-websocket-protocol")?.split(",")[0]?.trim();
    const { socket, response } = Deno.upgradeWebSocket(
      c.req.raw,
      protocol ? { ...wsOptions, protocol } : wsOptions,
    );
    let session: Session | undefined;
    let released = false;
    const done = () => {
      if (session) {
        session.onClose();
        sessions.delete(session);
      }
      if (!released) {
        released = true;
        release(ip);
        if (addr) guard?.closed(addr.hostname, addr.port);
      }
    };
    // Listeners, not `on…` handlers: Deno wraps each handler property in a closure and a context
    // of its own (about 110 bytes a socket each), and the open listener goes once it has run.
    socket.addEventListener("open", () => {
      if (addr) guard?.upgraded(addr.hostname, addr.port);
      session = new Session(
        new SocketTransport(socket),
        router,
        sessionOptions,
        log,
        metrics,
        ip,
      );
      sessions.add(session);
      session.start();
    }, { once: true });
    socket.addEventListener("message", (e) => {
      session?.onMessage(e.data).catch((err) => {
        log.error("unexpected session failure", { err: errorMessage(err) });
      });
    });
    socket.addEventListener("close", done);
    socket.addEventListener("error", done);
    return response;
  });

  // Liveness: the process answers HTTP. No backend is consulted, so a slow or absent Redis or
  // Kafka never makes a supervisor restart a relay that a restart would not help.
  app.get("/healthz", (c) =>
    c.json({
      status: "ok",
      mailbox: router.mailbox.kind,
      bus: router.bus.kind,
      connections: sessions.size,
    }));
  // Readiness: would a send be accepted here now? Each backend is asked (storage that refuses
  // writes, e.g. a full disk or Redis at maxmemory, counts as down) and the listener's
  // capacity; 503 names the first reason.
  app.get("/readyz", async (c) => {
    const [mailbox, bus] = await Promise.all([
      statusWithin(router.mailbox.check(), 2000),
      statusWithin(router.bus.check(), 2000),
    ]);
    // A relay alone on a shared store publishes nothing, so its sends do not need the bus.
    const reason = !mailbox.ok
      ? `mailbox (${router.mailbox.kind}): ${mailbox.detail}`
      : !bus.ok && !router.alone
      ? `bus (${router.bus.kind}): ${bus.detail}`
      : guard?.full();
    const body = {
      ready: reason === undefined,
      ...(reason === undefined ? {} : { reason }),
      mailbox: { kind: router.mailbox.kind, ...mailbox },
      bus: { kind: router.bus.kind, ...bus },
    };
    return c.json(body, reason === undefined ? 200 : 503);
  });
  app.get(
    "/metrics",
    async (c) =>
      c.body(await metrics.render(), 200, {
        "content-type": "text/plain; version=0.0.4; charset=utf-8",
      }),
  );

  app.notFound((c) =>
    c.json({ error: "not_found", message: `no route ${c.req.method} ${c.req.path}` }, 404)
  );
  app.onError((err, c) => {
    log.error("http handler failed", { err: err.message, path: c.req.path });
    return c.json({ error: "internal", message: "the relay failed to answer this request" }, 500);
  });
  return app;
}

/** A WebSocket as the session's transport: methods on the prototype, no closures per socket. */
class SocketTransport implements Transport {
  #socket: WebSocket;
  constructor(socket: WebSocket) {
    this.#socket = socket;
  }
  send(text: string): void {
    this.#socket.send(text);
  }
  close(code: number, reason: string): void {
    this.#socket.close(code, reason);
  }
  bufferedAmount(): number {
    return this.#socket.bufferedAmount ?? 0;
  }
}

/** A backend's status, or down when it does not answer within `ms`. */
async function statusWithin(p: Promise<BackendStatus>, ms: number): Promise<BackendStatus> {
  try {
    return await deadline(p, ms);
  } catch (err) {
    return {
      ok: false,
      detail: isTimeoutError(err) ? `no answer within ${ms} ms` : errorMessage(err),
    };
  }
}
