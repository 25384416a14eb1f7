import assert from "node:assert/strict";
import { createLogger } from "../infra/log.ts";
import { Metrics } from "../infra/metrics.ts";
import { delay } from "@chat-p2p/protocol/async";
import {
  addressKey,
  ConnectionGuard,
  DESCRIPTOR_RESERVE,
  type GuardSystem,
  ipFromProc,
  LinuxSystem,
  type Peer,
  peersIn,
  procNetFiles,
} from "./guard.ts";

/** A machine whose connections and descriptors the test sets. */
class FakeSystem implements GuardSystem {
  peersNow: Peer[] = [];
  fds = 10;
  limit = 1000;
  closed: string[] = [];
  /** When set, openDescriptors() answers only once it resolves (unless asked for it now). */
  fdGate?: Promise<void>;
  openDescriptors(now = false): number | Promise<number> {
    return this.fdGate && !now ? this.fdGate.then(() => this.fds) : this.fds;
  }
  descriptorLimit() {
    return this.limit;
  }
  /** When set, peers() answers only once it resolves (a slow read of /proc). */
  gate?: Promise<void>;
  reads = 0;
  peers(_port?: number, _files?: readonly string[], now = false): Peer[] | Promise<Peer[]> {
    this.reads++;
    return this.gate && !now ? this.gate.then(() => this.peersNow) : this.peersNow;
  }
  close(inodes: ReadonlySet<string>) {
    this.closed.push(...inodes);
    this.peersNow = this.peersNow.filter((p) => !inodes.has(p.inode));
    this.fds -= inodes.size;
    return inodes.size;
  }
}

const quiet = createLogger("error", () => {});
let inode = 0;
function connect(sys: FakeSystem, ip: string, n = 1): Peer[] {
  const made = Array.from(
    { length: n },
    () => ({ ip, port: 40000 + inode, inode: String(++inode) }),
  );
  sys.peersNow.push(...made);
  sys.fds += n;
  return made;
}

function guard(
  sys: FakeSystem,
  over: { maxConnectionsPerIp?: number; maxConnections?: number; requestHeaderTimeoutMs?: number } =
    {},
) {
  const metrics = new Metrics();
  const g = new ConnectionGuard(
    {
      requestHeaderTimeoutMs: 1000,
      maxConnectionsPerIp: 0,
      maxConnections: 0,
      scanMs: 60_000,
      ...over,
    },
    quiet,
    metrics,
    sys,
  );
  g.start(8080);
  return { g, metrics, [Symbol.dispose]: () => g.stop() };
}

Deno.test("guard: a connection that starts no request within the timeout is closed; others are not", async () => {
  const sys = new FakeSystem();
  using t = guard(sys);
  const [silent, talking, ws] = [
    connect(sys, "10.0.0.1")[0],
    connect(sys, "10.0.0.2")[0],
    connect(sys, "10.0.0.3")[0],
  ];
  await t.g.scan(0);
  t.g.request(talking.ip, talking.port);
  t.g.answered(talking.ip, talking.port);
  t.g.upgraded(ws.ip, ws.port);
  await t.g.scan(999);
  assert.deepEqual(sys.closed, [], "nothing before the timeout");
  await t.g.scan(performance.now() + 1001);
  assert.deepEqual(sys.closed, [silent.inode, talking.inode], "a WebSocket is never idle");
  assert.equal(t.metrics.get("connections_shed_total", { reason: "header_timeout" }), 2);
});

Deno.test("guard: a request still being answered is not idle, however long; it is idle from its answer", async () => {
  const sys = new FakeSystem();
  using t = guard(sys);
  const [slow] = connect(sys, "10.0.0.4");
  await t.g.scan(0);
  t.g.request(slow.ip, slow.port);
  await t.g.scan(performance.now() + 60_000);
  assert.deepEqual(sys.closed, [], "a long answer (a scrape waiting on a stalled backend)");
  t.g.answered(slow.ip, slow.port);
  // (Sweeps of a quiet relay are 30 s apart; this one is due.)
  await t.g.scan(performance.now() + 100_000);
  assert.deepEqual(sys.closed, [slow.inode], "answered, then silent: idle");
  assert.equal(t.metrics.get("connections_shed_total", { reason: "header_timeout" }), 1);
});

Deno.test("guard: beyond the per-IP limit the newest idle connections go, and idle ones count at upgrade", async () => {
  const sys = new FakeSystem();
  using t = guard(sys, { maxConnectionsPerIp: 3 });
  const old = connect(sys, "10.0.0.9", 2);
  await t.g.scan(0);
  const fresh = connect(sys, "10.0.0.9", 3);
  await t.g.scan(10);
  assert.equal(sys.closed.length, 2);
  assert.ok(sys.closed.every((i) => fresh.some((p) => p.inode === i)), "the newest ones");
  assert.equal(t.g.idleFrom("10.0.0.9"), 3);
  assert.equal(t.g.idleFrom("::ffff:10.0.0.9"), 3, "as a dual-stack listener reports it");
  assert.equal(t.g.idleFrom("10.0.0.1"), 0);
  assert.ok(old.every((p) => !sys.closed.includes(p.inode)));
});

Deno.test("guard: near the descriptor limit new sockets are refused and idle ones shed; out of them, all idle ones", async () => {
  const sys = new FakeSystem();
  sys.limit = 200; // capacity: 200 - 64 = 136 connections beyond the 10 descriptors at start
  using t = guard(sys, { requestHeaderTimeoutMs: 60_000 });
  assert.equal(t.g.capacity, 200 - DESCRIPTOR_RESERVE);
  assert.equal(t.g.full(), undefined);
  const early = connect(sys, "10.0.0.1", 100);
  await t.g.scan(0);
  const late = connect(sys, "10.0.0.2", 40);
  await t.g.scan(600);
  assert.match(t.g.full() ?? "", /at connection capacity \(140 of 136/);
  assert.deepEqual(sys.closed, [], "idle for less than a second: kept while merely full");
  await t.g.scan(1500);
  assert.equal(sys.closed.length, 100, "the idle ones older than a second are shed");
  assert.ok(early.every((p) => sys.closed.includes(p.inode)));
  await t.g.scan(1600, true);
  assert.ok(late.every((p) => sys.closed.includes(p.inode)), "out of descriptors: all idle ones");
  assert.equal(t.g.full(), undefined);
});

Deno.test("guard: the event loop runs while a look reads the system; one look at a time; out of descriptors, at once", async () => {
  const sys = new FakeSystem();
  using t = guard(sys, { requestHeaderTimeoutMs: 60_000 });
  connect(sys, "10.0.0.1", 40); // more unknown descriptors than the slack: a look sweeps
  const read = Promise.withResolvers<void>();
  sys.gate = read.promise;
  const first = t.g.scan(0);
  assert.equal(t.g.scan(1), first, "a look called during one is that one");
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  await delay(20);
  clearInterval(timer);
  assert.ok(ticks > 0, "timers ran while the look waited for the system");
  assert.equal(sys.reads, 1);
  assert.deepEqual(sys.closed, []);
  // Out of descriptors the listener listens again right after: that look is done on return.
  const exhausted = t.g.scan(2, true);
  assert.equal(sys.reads, 2);
  assert.equal(sys.closed.length, 40, "out of descriptors: every idle connection is shed");
  await exhausted;
  read.resolve();
  await first;
});

Deno.test("guard: WebSockets opened while descriptors are counted still count toward capacity", async () => {
  const sys = new FakeSystem();
  sys.limit = 200; // capacity 136
  using t = guard(sys, { requestHeaderTimeoutMs: 60_000 });
  for (let i = 0; i < 130; i++) t.g.upgraded("10.0.0.1", 50_000 + i); // since the last count
  sys.fds += 130;
  const count = Promise.withResolvers<void>();
  sys.fdGate = count.promise;
  const look = t.g.scan(0); // a slow count of the descriptors
  assert.equal(t.g.full(), undefined, "130 of 136");
  for (let i = 130; i < 136; i++) t.g.upgraded("10.0.0.1", 50_000 + i); // during it
  assert.match(t.g.full() ?? "", /at connection capacity \(136 of 136/, "during the count");
  count.resolve();
  await look;
  assert.match(t.g.full() ?? "", /at connection capacity/, "after it: counted, twice at worst");
});

Deno.test("guard: off where it cannot work, and says so once", async () => {
  const sys = Object.assign(new FakeSystem(), { unavailable: "not Linux" });
  const lines: string[] = [];
  const g = new ConnectionGuard(
    { requestHeaderTimeoutMs: 1000, maxConnectionsPerIp: 1, maxConnections: 0 },
    createLogger("warn", (l) => lines.push(l)),
    undefined,
    sys,
  );
  g.start(8080);
  connect(sys, "10.0.0.1", 5);
  await g.scan(10_000, true);
  assert.deepEqual(sys.closed, []);
  assert.equal(g.full(), undefined);
  assert.equal(lines.length, 1);
  assert.match(lines[0], /connection guard off.*not Linux/);
  g.stop();
});

Deno.test("ipFromProc reads /proc/net/tcp{,6} addresses as Deno.serve writes them", () => {
  assert.equal(ipFromProc("0100007F"), "127.0.0.1");
  assert.equal(ipFromProc("0000000000000000FFFF00000100007F"), "127.0.0.1");
  assert.equal(ipFromProc("00000000000000000000000001000000"), "::1");
  assert.equal(ipFromProc("B80D0120000000000000000001000000"), "2001:db8::1");
});

Deno.test("addressKey: IPv4 as itself, IPv6 by its /64, so one host cannot take an address per connection", () => {
  assert.equal(addressKey("192.0.2.7"), "192.0.2.7");
  assert.equal(addressKey("::ffff:192.0.2.7"), "192.0.2.7");
  assert.equal(addressKey("2001:db8:0:1::1"), "2001:db8:0:1::/64");
  assert.equal(addressKey("2001:db8:0:1:ffff:1:2:3"), "2001:db8:0:1::/64");
  assert.equal(addressKey("2001:0db8:0000:0001:0:0:0:9"), "2001:db8:0:1::/64");
  assert.equal(addressKey("2001:db8::1:2:3:4"), "2001:db8:0:0::/64");
  assert.equal(addressKey("2001:db8:0:2::1"), "2001:db8:0:2::/64", "another /64");
  assert.equal(addressKey("::1"), "0:0:0:0::/64");
  assert.equal(addressKey("fe80::1%eth0"), "fe80:0:0:0::/64");
  assert.equal(addressKey("64:ff9b::192.0.2.1"), "64:ff9b:0:0::/64");
});

Deno.test("guard: idle connections from one IPv6 /64 count together toward the per-IP limit", async () => {
  const sys = new FakeSystem();
  using t = guard(sys, { maxConnectionsPerIp: 2 });
  connect(sys, "2001:db8:0:1::a", 2);
  await t.g.scan(0);
  connect(sys, "2001:db8:0:1::b", 2);
  await t.g.scan(10);
  assert.equal(sys.closed.length, 2, "the /64 holds 4 idle connections against a limit of 2");
  assert.equal(t.g.idleFrom("2001:db8:0:1::c"), 2);
  assert.equal(t.g.idleFrom("2001:db8:0:2::a"), 0);
});

Deno.test("peersIn: the established connections on the relay's port, and nothing else", () => {
  // Port 8080 = 1F90. Lines as Linux writes them (tcp4_seq_show / tcp6_seq_show).
  const tcp = [
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0",
    "   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1",
    "   2: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 1003 1 0000000000000000 20 4 30 10 -1",
    "   3: 0100007F:1F91 0700000A:1F90 01 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 20 4 30 10 -1",
    "   4: 0100007F:1F90 0700000A:D431 06 00000000:00000000 03:00000A1B 00000000     0        0 0 3 0000000000000000",
    "12345: 0100007F:1F90 0700000A:D431 01 00000000:00000000 02:0000061A 00000000 65534        0 1005 2 0000000000000000 21 4 0 10 -1",
  ].join("\n") + "\n";
  assert.deepEqual(peersIn(tcp, 8080), [
    { ip: "127.0.0.1", port: 0xC350, inode: "1002" },
    { ip: "10.0.0.7", port: 0xD431, inode: "1005" },
  ]);
  const tcp6 = [
    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
    "   0: 00000000000000000000000001000000:1F90 B80D0120000000000000000001000000:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 20 4 0 10 -1",
    "   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:9C41 01 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 20 4 0 10 -1",
  ].join("\n"); // no newline at the end
  assert.deepEqual(peersIn(tcp6, 8080), [
    { ip: "2001:db8::1", port: 0x9C40, inode: "2001" },
    { ip: "127.0.0.1", port: 0x9C41, inode: "2002" },
  ]);
  assert.deepEqual(peersIn("", 8080), []);
  assert.deepEqual(peersIn(tcp.split("\n")[0], 8080), [], "the header alone");
});

Deno.test("procNetFiles: a listener on one address family is looked for in that family's file only", () => {
  assert.deepEqual(procNetFiles("127.0.0.1"), ["/proc/net/tcp"]);
  assert.deepEqual(procNetFiles("0.0.0.0"), ["/proc/net/tcp"]);
  assert.deepEqual(procNetFiles("::"), ["/proc/net/tcp6"]);
  assert.deepEqual(procNetFiles("[::1]"), ["/proc/net/tcp6"]);
  assert.deepEqual(procNetFiles("::1"), ["/proc/net/tcp6"]);
  assert.deepEqual(procNetFiles("localhost"), ["/proc/net/tcp", "/proc/net/tcp6"]);
  assert.deepEqual(procNetFiles(""), ["/proc/net/tcp", "/proc/net/tcp6"]);
});

Deno.test({
  name: "guard: LinuxSystem counts this process's open descriptors, now and off the event loop",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const sys = new LinuxSystem();
    const before = sys.openDescriptors(true) as number;
    assert.ok(before > 0);
    const files = Array.from({ length: 20 }, () => Deno.openSync("/dev/null"));
    try {
      assert.equal(sys.openDescriptors(true), before + 20);
      assert.equal(await sys.openDescriptors(), before + 20);
    } finally {
      for (const f of files) f.close();
    }
    assert.equal(await sys.openDescriptors(), before);
  },
});
