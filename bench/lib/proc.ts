/**
 * Subprocess plumbing for the benchmark: spawn with a raised fd limit, collect log lines, read
 * CPU and memory from /proc, and kill every child we started (also on error or Ctrl-C).
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (the folder holding deno.json). */
export const ROOT: string = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * Environment every benchmarked relay runs with. Abuse limits off: the bench measures routing
 * capacity, not the token buckets' refusals. Empty KAFKA_BROKERS / REDIS_URL (= unset for the
 * relay's config) so an embedded relay does not pick up the caller's services.
 */
export const BENCH_RELAY_ENV: Readonly<Record<string, string>> = {
  RELAY_FRAME_RATE: "0",
  RELAY_SEND_RATE: "0",
  RELAY_MAX_CONNECTIONS_PER_IP: "0",
  KAFKA_BROKERS: "",
  REDIS_URL: "",
};

/** Clock ticks per second for /proc/<pid>/stat (getconf CLK_TCK; 100 on Linux x86-64). */
export const CLK_TCK = 100;

/** A child process we own. */
export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly proc: Deno.ChildProcess;
  /** The last lines of stdout and stderr (bounded). */
  readonly lines: string[];
  readonly exited: Promise<Deno.CommandStatus>;
  /** True once the process has exited. */
  done: boolean;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL. */
  stop(graceMs?: number): Promise<void>;
}

const children = new Set<Child>();

/** Every child still running (for the final cleanup). */
export function liveChildren(): Child[] {
  return [...children].filter((c) => !c.done);
}

function pump(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  return (async () => {
    let buf = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf("\n")) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      }
    } catch { /* stream closed */ }
    if (buf) onLine(buf);
  })();
}

/** Options for {@linkcode spawn}. */
export interface SpawnOptions {
  env?: Record<string, string>;
  /** Pipe stdin (for the load generators' command channel). */
  stdin?: boolean;
  /** Called for every stdout line (stderr lines are kept in `lines` only). */
  onStdout?: (line: string) => void;
  /** Raise the soft fd limit to the hard limit first (bash -c 'ulimit -n ...; exec ...'). */
  raiseFdLimit?: boolean;
}

/** Starts `cmd args` as a child we own. */
export function spawn(name: string, cmd: string, args: string[], opts: SpawnOptions = {}): Child {
  const [c, a] = opts.raiseFdLimit
    ? ["bash", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', cmd, ...args]]
    : [cmd, args];
  const proc = new Deno.Command(c, {
    args: a,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: opts.stdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const keep = (l: string) => {
    lines.push(l);
    if (lines.length > 400) lines.splice(0, 200);
  };
  const outDone = pump(proc.stdout, (l) => {
    keep(l);
    opts.onStdout?.(l);
  });
  const errDone = pump(proc.stderr, keep);
  // deno-lint-ignore prefer-const
  let child!: Child;
  child = {
    name,
    pid: proc.pid,
    proc,
    lines,
    done: false,
    exited: (async () => {
      const s = await proc.status;
      await Promise.all([outDone, errDone]);
      child.done = true;
      children.delete(child);
      return s;
    })(),
    async stop(graceMs = 10_000) {
      if (child.done) return;
      try {
        proc.kill("SIGTERM");
      } catch { /* gone */ }
      const t = setTimeout(() => {
        try {
          proc.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      await child.exited;
      clearTimeout(t);
    },
  };
  children.add(child);
  return child;
}

/** Stops every child still running (SIGTERM, then SIGKILL after `graceMs`). */
export async function stopAll(graceMs = 5000): Promise<void> {
  await Promise.all(liveChildren().map((c) => c.stop(graceMs)));
}

/** utime+stime of a process in seconds (0 when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** CPU-seconds the whole machine spent busy so far (all cores, from /proc/stat). */
export function machineBusySeconds(): number {
  try {
    const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** The 1-minute load average. */
export function loadAvg(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/** VmRSS of a process in KiB (0 when it is gone). */
export function rssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Number of open file descriptors of a process. */
export function fdCount(pid: number): number {
  let n = 0;
  try {
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  } catch { /* gone */ }
  return n;
}

/** The hard "open files" limit this process (and its children) may raise to. */
export function hardFdLimit(): number {
  try {
    const m = /Max open files\s+\d+\s+(\d+)/.exec(Deno.readTextFileSync("/proc/self/limits"));
    return m ? Number(m[1]) : 1024;
  } catch {
    return 1024;
  }
}

/** A server subprocess that logged `{"msg":"listening","port":N}`. */
export interface Server {
  child: Child;
  port: number;
  url: string;
  pid: number;
  dataDir?: string;
  stop(): Promise<void>;
}

/** Options for {@linkcode startServer}. */
export interface ServerOptions {
  name: string;
  /** Script path relative to the repository root. */
  script: string;
  args?: string[];
  env?: Record<string, string>;
  /** Directory for `--cpu-prof` output; profiling is off when unset. */
  cpuProfDir?: string;
  timeoutMs?: number;
  /** Called for every stdout line that is not the relay's JSON log (e.g. V8's `--trace-gc`). */
  onLine?: (line: string) => void;
}

/** Starts a deno server script and waits for its "listening" log line. */
export async function startServer(o: ServerOptions): Promise<Server> {
  const { promise, resolve } = Promise.withResolvers<number>();
  const args = [
    "run",
    "-A",
    ...(o.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfDir}`] : []),
    o.script,
    ...(o.args ?? []),
  ];
  const child = spawn(o.name, Deno.execPath(), args, {
    env: o.env,
    raiseFdLimit: true,
    onStdout: (line) => {
      if (!line.startsWith("{")) return o.onLine?.(line);
      try {
        const j = JSON.parse(line);
        if (j.msg === "listening" && typeof j.port === "number") resolve(j.port);
      } catch { /* not JSON */ }
    },
  });
  const timeoutMs = o.timeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const port = await Promise.race([
    promise,
    child.exited.then((s) => {
      throw new Error(
        `${o.name} exited (code ${s.code}) before listening:\n${child.lines.slice(-15).join("\n")}`,
      );
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${o.name} did not listen within ${timeoutMs} ms`)),
        timeoutMs,
      );
    }),
  ]).finally(() => clearTimeout(timer));
  return {
    child,
    port,
    pid: child.pid,
    url: `ws://127.0.0.1:${port}/ws`,
    stop: () => child.stop(),
  };
}

/** Sleeps `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Runs a command to completion with a time limit; returns its exit code and output. */
export async function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; env?: Record<string, string>; cwd?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string; ms: number; timedOut: boolean }> {
  const t0 = performance.now();
  const proc = new Deno.Command(cmd, {
    args,
    cwd: opts.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      proc.kill("SIGKILL");
    } catch { /* gone */ }
  }, opts.timeoutMs ?? 120_000);
  const out = await proc.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    ms: performance.now() - t0,
    timedOut,
  };
}
