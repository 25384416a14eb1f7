/**
 * Connections the HTTP server will not show us. `Deno.serve` accepts TCP connections in the
 * runtime and hands JS only the requests on them, so a connection that never sends a request is
 * invisible: it was never closed, never counted toward the per-IP limit, and enough of them used
 * up the relay's file descriptors (issue 12, items 1 and 2).
 *
 * The guard looks at them from the outside, on Linux: every `scanMs` it counts its open
 * descriptors (`/proc/self/fd`), and when there are more than the connections it knows of (open
 * WebSockets and requests in progress), it reads the established connections on the relay's port
 * from `/proc/net/tcp{,6}`. A connection that has not started a request within
 * `requestHeaderTimeoutMs` (since it was first seen, or since its last request) is closed, and
 * so are the idle ones beyond an address's `maxConnectionsPerIp`, and, near the descriptor limit,
 * every idle one. Closing is `shutdown(2)` on its descriptor through FFI (the runtime owns the
 * descriptor; shutting it down makes the runtime see the end of the stream and close it itself).
 * Near the descriptor limit new WebSockets are refused (503) and `/readyz` says why.
 *
 * Deno lets a program read `/proc` and call FFI only with all permissions, so `deno task relay`
 * runs with `--allow-all`. Without them (or off Linux) the guard is off and says so once at start;
 * the relay works as before, without these protections.
 *
 * @module
 */
import type { Logger } from "../infra/log.ts";
import type { Metrics } from "../infra/metrics.ts";
import { errorMessage } from "../ports/errors.ts";

/** One established TCP connection on the relay's port. */
export interface Peer {
  /** The remote address, as `Deno.serve` reports it (`127.0.0.1`, `::1`). */
  ip: string;
  port: number;
  /** The socket's inode (how its descriptor is found). */
  inode: string;
}

/** What the guard needs from the operating system (a fake in unit tests). */
export interface GuardSystem {
  /**
   * Open file descriptors of this process. `now`: read synchronously (the guard asks so only when
   * the relay is out of descriptors; otherwise it reads off the event loop).
   */
  openDescriptors(now?: boolean): number | Promise<number>;
  /** The soft limit on them (`ulimit -n`); Infinity when unknown. */
  descriptorLimit(): number;
  /**
   * Established connections whose local port is `port`; `files`: which of /proc/net/tcp and
   * /proc/net/tcp6 can hold them ({@linkcode procNetFiles}); `now` as for `openDescriptors`.
   */
  peers(port: number, files?: readonly string[], now?: boolean): Peer[] | Promise<Peer[]>;
  /** Shuts the connections with these inodes down; how many were found. */
  close(inodes: ReadonlySet<string>): number;
  /** Why none of this works here, if it does not (the guard is then off). */
  readonly unavailable?: string;
}

/** How the guard is set up. */
export interface GuardOptions {
  /** Connections that have not started a request within this are closed. */
  requestHeaderTimeoutMs: number;
  /** Most connections from one address (0 = unlimited). */
  maxConnectionsPerIp: number;
  /** Open connections before new ones are refused; 0 = the descriptor limit minus a reserve. */
  maxConnections: number;
  /** How often to look (default: a quarter of the header timeout, between 1 and 5 s). */
  scanMs?: number;
}

/**
 * Descriptors the relay keeps besides connections: about 40 at start (the runtime, SQLite's
 * files, the writer worker, the spares below), a few for Kafka and Redis, and room to spare.
 */
export const DESCRIPTOR_RESERVE = 64;

/** More unknown descriptors than this makes the guard read the connection table at once... */
const SLACK = 32;
/** ...and it reads it at least this often anyway, for the odd idle connection below that. */
const SWEEP_EVERY_MS = 30_000;

/** Watches the relay's TCP connections; see the module documentation. */
export class ConnectionGuard {
  #opt: Required<GuardOptions>;
  #sys: GuardSystem;
  #log: Logger;
  #metrics?: Metrics;
  #port = 0;
  #files: readonly string[] = PROC_NET_FILES;
  #timer?: ReturnType<typeof setInterval>;
  /** Per `ip:port`: when its last request started, Infinity once it is a WebSocket. */
  #spoke = new Map<string, number>();
  /** Per socket inode: when a scan first saw it. */
  #firstSeen = new Map<string, number>();
  /** Idle (never-upgraded, not requesting) connections per address, as of the last scan. */
  #idleByIp = new Map<string, number>();
  /** Descriptors beyond the connections, counted at start. */
  #baseline = 0;
  #fds = 0;
  /** WebSockets opened since the last count of descriptors. */
  #opened = 0;
  #capacity: number;
  #lastSweep = -Infinity;
  /** The look in progress, if any (one at a time). */
  #scanning?: Promise<void>;
  /**
   * Descriptors held back (open on /dev/null) for the moment none are left: looking at /proc
   * takes descriptors too, so when the relay is out of them the guard lets these go, looks,
   * sheds, and takes them again.
   */
  #spares: Deno.FsFile[] = [];

  constructor(
    options: GuardOptions,
    log: Logger,
    metrics?: Metrics,
    sys: GuardSystem = new LinuxSystem(),
  ) {
    const scanMs = options.scanMs ??
      Math.min(5000, Math.max(1000, Math.floor(options.requestHeaderTimeoutMs / 4)));
    this.#opt = { ...options, scanMs };
    this.#sys = sys;
    this.#log = log;
    this.#metrics = metrics;
    const limit = sys.unavailable ? Infinity : sys.descriptorLimit();
    this.#capacity = options.maxConnections > 0
      ? options.maxConnections
      : Number.isFinite(limit)
      ? Math.max(16, limit - DESCRIPTOR_RESERVE)
      : Infinity;
    if (!sys.unavailable) {
      metrics?.describe("open_descriptors", "gauge", "file descriptors the relay holds");
      metrics?.gauge("open_descriptors", () => this.#sys.openDescriptors());
    }
    metrics?.describe(
      "connections_shed_total",
      "counter",
      "connections closed or refused to protect the relay, by reason",
    );
  }

  /** Most connections the relay takes before it refuses new ones. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Starts watching the relay's `port` (listening on `hostname`, when known). */
  start(port: number, hostname?: string): void {
    if (this.#sys.unavailable) {
      this.#log.warn("connection guard off", {
        reason: this.#sys.unavailable,
        off: "request-header timeout, idle connections per IP, shedding near the descriptor limit",
      });
      return;
    }
    this.#port = port;
    if (hostname !== undefined) this.#files = procNetFiles(hostname);
    this.#holdSpares();
    // What the relay holds besides connections: counted at once, before any socket is open.
    this.#fds = this.#baseline = this.#sys.openDescriptors(true) as number;
    this.#timer = setInterval(() => this.scan(), this.#opt.scanMs);
    Deno.unrefTimer(this.#timer);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#releaseSpares();
  }

  #holdSpares(): void {
    try {
      while (this.#spares.length < 4) this.#spares.push(Deno.openSync("/dev/null"));
    } catch { /* none free now: held again after the next look */ }
  }

  #releaseSpares(): void {
    for (const f of this.#spares.splice(0)) f.close();
  }

  /**
   * A request started on the connection from `ip`:`port`: it is not idle until it is answered,
   * however long its handler takes.
   */
  request(ip: string, port: number): void {
    this.#spoke.set(`${plainIp(ip)}:${port}`, Infinity);
  }

  /** The request on that connection was answered: idle from now (keep-alive) until the next. */
  answered(ip: string, port: number): void {
    this.#spoke.set(`${plainIp(ip)}:${port}`, performance.now());
  }

  /** The connection became a WebSocket: its session's timers watch it from now on. */
  upgraded(ip: string, port: number): void {
    this.#spoke.set(`${plainIp(ip)}:${port}`, Infinity);
    this.#opened++;
  }

  /** A WebSocket closed. */
  closed(ip: string, port: number): void {
    this.#spoke.delete(`${plainIp(ip)}:${port}`);
  }

  /** Idle connections from `ip` at the last look (they count toward its limit). */
  idleFrom(ip: string): number {
    return this.#idleByIp.get(addressKey(ip)) ?? 0;
  }

  /** Why a new WebSocket is refused right now (the relay is near its descriptor limit), if so. */
  full(): string | undefined {
    if (this.#sys.unavailable) return undefined;
    const open = this.#fds + this.#opened - this.#baseline;
    if (open < this.#capacity) return undefined;
    return `at connection capacity (${open} of ${this.#capacity}; descriptor limit ${this.#sys.descriptorLimit()})`;
  }

  /**
   * One look at the connections (on a timer; public so tests and the listener can call it).
   * The files are read off the event loop (reading the connection table walks every socket of the
   * host: 25-35 ms at 10,000 sockets, which every handshake in progress used to wait out), one
   * look at a time. `exhausted`: the relay is out of descriptors (its accept loop just died of
   * it): every idle connection is shed, however young, and that look is synchronous, done when
   * this returns, because the listener listens again right after and would take the spare
   * descriptors the look frees to read /proc.
   */
  scan(now: number = performance.now(), exhausted = false): Promise<void> {
    if (this.#sys.unavailable) return Promise.resolve();
    if (exhausted) {
      this.#lookNow(now);
      return Promise.resolve();
    }
    this.#scanning ??= this.#look(now).finally(() => this.#scanning = undefined);
    return this.#scanning;
  }

  /** The look when out of descriptors: synchronous, every idle connection shed. */
  #lookNow(now: number): void {
    try {
      this.#releaseSpares();
      const counted = this.#opened;
      this.#fds = this.#sys.openDescriptors(true) as number;
      this.#opened -= counted;
      this.#lastSweep = now;
      this.#sweep(now, true, true, this.#sys.peers(this.#port, this.#files, true) as Peer[]);
    } catch (err) {
      this.#log.warn("connection guard failed", { err: errorMessage(err) });
    } finally {
      this.#holdSpares();
    }
  }

  async #look(now: number): Promise<void> {
    try {
      // WebSockets opened while the count runs stay counted in #opened: twice at worst (refused
      // a little early), never missed.
      const counted = this.#opened;
      this.#fds = await this.#sys.openDescriptors();
      this.#opened -= counted;
      const unknown = this.#fds - this.#baseline - this.#spoke.size;
      const full = this.full() !== undefined;
      const quiet = unknown <= SLACK && this.#idleByIp.size === 0;
      if (full || !quiet || now - this.#lastSweep >= SWEEP_EVERY_MS) {
        this.#lastSweep = now;
        this.#sweep(now, full, false, await this.#sys.peers(this.#port, this.#files));
      }
    } catch (err) {
      if (/Too many open files/.test(errorMessage(err))) return this.#lookNow(now);
      this.#log.warn("connection guard failed", { err: errorMessage(err) });
    }
  }

  #sweep(now: number, full: boolean, exhausted: boolean, peers: Peer[]): void {
    const present = new Set<string>();
    const inodes = new Set<string>();
    // `addr`: the peer's addressKey, worked out once per peer.
    const idle: Array<{ peer: Peer; addr: string; since: number }> = [];
    const perIp = new Map<string, number>();
    for (const peer of peers) {
      const key = `${peer.ip}:${peer.port}`;
      const addr = addressKey(peer.ip);
      present.add(key);
      inodes.add(peer.inode);
      perIp.set(addr, (perIp.get(addr) ?? 0) + 1);
      const spoke = this.#spoke.get(key);
      if (spoke === Infinity) continue;
      let since = spoke ?? this.#firstSeen.get(peer.inode);
      if (since === undefined) this.#firstSeen.set(peer.inode, since = now);
      idle.push({ peer, addr, since });
    }
    for (const inode of this.#firstSeen.keys()) {
      if (!inodes.has(inode)) this.#firstSeen.delete(inode);
    }
    for (const [key, t] of this.#spoke) {
      if (t !== Infinity && !present.has(key)) this.#spoke.delete(key);
    }

    const shed = new Map<string, string>(); // inode -> reason
    for (const { peer, since } of idle) {
      if (now - since >= this.#opt.requestHeaderTimeoutMs) shed.set(peer.inode, "header_timeout");
      else if (exhausted || (full && now - since >= 1000)) shed.set(peer.inode, "capacity");
    }
    const max = this.#opt.maxConnectionsPerIp;
    // Per address over its limit, its newest idle connections go first (one pass for all).
    const over = new Map<string, number>();
    if (max > 0) { for (const [addr, n] of perIp) if (n > max) over.set(addr, n - max); }
    if (over.size > 0) {
      for (const { peer, addr } of [...idle].sort((a, b) => b.since - a.since)) {
        const left = over.get(addr);
        if (!left || shed.has(peer.inode)) continue;
        shed.set(peer.inode, "per_ip");
        over.set(addr, left - 1);
      }
    }
    this.#idleByIp.clear();
    for (const { peer, addr } of idle) {
      if (!shed.has(peer.inode)) this.#idleByIp.set(addr, (this.#idleByIp.get(addr) ?? 0) + 1);
    }
    if (shed.size === 0) return;
    const closed = this.#sys.close(new Set(shed.keys()));
    const counts: Record<string, number> = {};
    for (const reason of shed.values()) counts[reason] = (counts[reason] ?? 0) + 1;
    for (const [reason, n] of Object.entries(counts)) {
      this.#metrics?.inc("connections_shed_total", { reason }, n);
    }
    this.#log.info("idle connections closed", { closed, ...counts });
  }
}

/** The guard's view of Linux: /proc for counting and finding, libc's shutdown(2) for closing. */
export class LinuxSystem implements GuardSystem {
  readonly unavailable?: string;
  #shutdown?: (fd: number, how: number) => number;

  constructor() {
    if (Deno.build.os !== "linux") {
      this.unavailable = "not Linux";
      return;
    }
    try {
      this.descriptorLimit();
      if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") throw new Error();
    } catch {
      this.unavailable = "the relay runs without --allow-all (Deno's condition for /proc and FFI)";
      return;
    }
    for (const name of ["libc.so.6", "libc.so"]) {
      try {
        const lib = Deno.dlopen(name, { shutdown: { parameters: ["i32", "i32"], result: "i32" } });
        this.#shutdown = (fd, how) => lib.symbols.shutdown(fd, how);
        return;
      } catch { /* try the next name */ }
    }
    this.unavailable = "no libc to call shutdown(2) in";
  }

  openDescriptors(now = false): number | Promise<number> {
    // Linux 6.2 and later report the count as the directory's size: one stat, instead of a
    // listing that made an object per descriptor every scan (5,000 sockets: half a MB of garbage
    // every few seconds in an idle relay). Older kernels say 0, and the guard lists them.
    if (now) {
      return Deno.statSync(FD_DIR).size || Array.from(Deno.readDirSync(FD_DIR)).length;
    }
    return Deno.stat(FD_DIR).then(async ({ size }) =>
      size || (await Array.fromAsync(Deno.readDir(FD_DIR))).length
    );
  }

  descriptorLimit(): number {
    const m = /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync("/proc/self/limits"));
    return m ? Number(m[1]) : Infinity;
  }

  peers(
    port: number,
    files: readonly string[] = PROC_NET_FILES,
    now = false,
  ): Peer[] | Promise<Peer[]> {
    const out: Peer[] = [];
    const ips = new Map<string, string>();
    // A file the kernel does not have (no IPv6) holds nothing; any other failure (out of
    // descriptors) is the caller's to see.
    const absent = (err: unknown) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      return "";
    };
    if (now) {
      for (const file of files) {
        let text: string;
        try {
          text = Deno.readTextFileSync(file);
        } catch (err) {
          text = absent(err);
        }
        peersIn(text, port, out, ips);
      }
      return out;
    }
    return (async () => {
      for (const file of files) {
        peersIn(await Deno.readTextFile(file).catch(absent), port, out, ips);
      }
      return out;
    })();
  }

  close(inodes: ReadonlySet<string>): number {
    if (!this.#shutdown) return 0;
    let n = 0;
    for (const e of Deno.readDirSync(FD_DIR)) {
      const path = `${FD_DIR}/${e.name}`;
      let target: string;
      try {
        target = Deno.readLinkSync(path);
      } catch {
        continue;
      }
      const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
      if (inode === undefined || !inodes.has(inode)) continue;
      // Checked again right before: the descriptor may have been closed and reused meanwhile.
      if (Deno.readLinkSync(path) !== target) continue;
      if (this.#shutdown(Number(e.name), 2 /* SHUT_RDWR */) === 0) n++;
    }
    return n;
  }
}

const PROC_NET_FILES = ["/proc/net/tcp", "/proc/net/tcp6"];
/** This process's descriptors, one entry each. */
const FD_DIR = "/proc/self/fd";

/**
 * The /proc/net files that can hold connections to a listener on `hostname`: an IPv4 address's
 * are all in `tcp`, an IPv6 address's (`::` too, IPv4 clients included, as `::ffff:a.b.c.d`) all in
 * `tcp6`; a name may be either. Each file costs a walk over every socket of the host (about 10 ms
 * per file at 10,000 sockets, on a runtime thread), however few lines it has.
 */
export function procNetFiles(hostname: string): readonly string[] {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(hostname)) return ["/proc/net/tcp"];
  if (hostname.includes(":")) return ["/proc/net/tcp6"];
  return PROC_NET_FILES;
}

/**
 * Adds to `out` the established connections whose local port is `port` in the text of
 * /proc/net/tcp or /proc/net/tcp6; `ips` caches {@linkcode ipFromProc} by hex address. A sweep
 * reads every socket of the host (on loopback, the clients' ends too), and this parse runs on the
 * event loop, so each line is only looked at until it is known not to be ours, and is not split
 * into fields:
 *
 * ```
 *   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
 *    0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 123456 …
 * ```
 */
export function peersIn(
  text: string,
  port: number,
  out: Peer[] = [],
  ips = new Map<string, string>(),
): Peer[] {
  const local = ":" + port.toString(16).toUpperCase().padStart(4, "0") + " ";
  for (let at = text.indexOf("\n") + 1; at > 0 && at < text.length;) {
    const eol = text.indexOf("\n", at);
    const end = eol < 0 ? text.length : eol;
    const line = at;
    at = eol + 1;
    const remote = text.indexOf(" ", text.indexOf(": ", line) + 2) + 1; // after local_address
    if (remote <= line || remote >= end || !text.startsWith(local, remote - local.length)) continue;
    const state = text.indexOf(" ", remote) + 1;
    if (state <= remote || !text.startsWith("01 ", state)) continue;
    // inode: the sixth field after the state (uid and timeout are padded with spaces).
    let i = state;
    for (let k = 0; k < 6 && i > 0; k++) {
      i = text.indexOf(" ", i);
      while (text.charCodeAt(i) === 32) i++;
    }
    const inodeEnd = text.indexOf(" ", i);
    if (i <= state || i >= end || inodeEnd < 0 || inodeEnd > end) continue;
    const colon = text.indexOf(":", remote);
    const hex = text.slice(remote, colon);
    let ip = ips.get(hex);
    if (ip === undefined) ips.set(hex, ip = ipFromProc(hex));
    out.push({
      ip,
      port: parseInt(text.slice(colon + 1, state - 1), 16),
      inode: text.slice(i, inodeEnd),
    });
  }
  return out;
}

/**
 * What per-address limits count by: an IPv4 address itself (also when a dual-stack listener
 * reports it as `::ffff:a.b.c.d`), and for IPv6 its /64 (`2001:db8:0:1::/64`), since one host or
 * home usually holds a whole /64 and could otherwise take a fresh address for every connection.
 *
 * @example
 * ```ts
 * addressKey("::ffff:192.0.2.7"); // "192.0.2.7"
 * addressKey("2001:db8::1:2:3:4"); // "2001:db8:0:0::/64"
 * ```
 */
export function addressKey(address: string): string {
  const ip = plainIp(address).replace(/%.*$/, "");
  if (!ip.includes(":")) return ip;
  const [head, tail] = ip.includes("::") ? ip.split("::", 2) : [ip, undefined];
  const groups = (t: string) =>
    t === "" ? [] : t.split(":").flatMap((g) => g.includes(".") ? ["0", "0"] : [g]);
  const left = groups(head);
  const all = tail === undefined ? left : [
    ...left,
    ...Array(Math.max(0, 8 - left.length - groups(tail).length)).fill("0"),
    ...groups(tail),
  ];
  const prefix = all.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16));
  return `${prefix.join(":")}::/64`;
}

/** An IPv4 address as itself, also when a dual-stack listener reports it as `::ffff:a.b.c.d`. */
function plainIp(ip: string): string {
  return ip.startsWith("::ffff:") && ip.includes(".") ? ip.slice(7) : ip;
}

/**
 * An address from /proc/net/tcp{,6} (hex, each 32-bit word little-endian) as `Deno.serve`
 * writes it, IPv4 plain: dotted IPv4 (also for IPv4-mapped IPv6), else compressed IPv6.
 */
export function ipFromProc(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => [6, 4, 2, 0].map((i) => parseInt(w.slice(i, i + 2), 16)));
  const v4 = (b: number[]) => b.join(".");
  if (bytes.length === 4) return v4(bytes);
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return v4(bytes.slice(12));
  }
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return new URL(`http://[${groups.join(":")}]`).hostname.slice(1, -1);
}
