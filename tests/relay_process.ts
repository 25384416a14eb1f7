/**
 * Runs the relay as a real subprocess (`deno run relay/main.ts`), for end-to-end, crash and fuzz
 * tests. Collects its log lines; `await using` kills it.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

/** The project root (where deno.json is). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Settings the relay reads; never passed down from the test runner's own environment. */
const RELAY_SETTINGS = /^(RELAY_|KAFKA_|REDIS_URL$|REDIS_HOLD_MS$)/;

function inheritedEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(Deno.env.toObject()).filter(([k]) => !RELAY_SETTINGS.test(k)),
  );
}

/** A relay subprocess. */
export class RelayProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  readonly logs: string[];
  readonly dataDir: string;
  readonly exited: Promise<Deno.CommandStatus>;

  private constructor(
    child: Deno.ChildProcess,
    port: number,
    logs: string[],
    dataDir: string,
    exited: Promise<Deno.CommandStatus>,
  ) {
    this.child = child;
    this.port = port;
    this.logs = logs;
    this.dataDir = dataDir;
    this.exited = exited;
  }

  /** ws:// URL of its WebSocket endpoint. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  /** The process id (for /proc reads and signals). */
  get pid(): number {
    return this.child.pid;
  }

  /**
   * Starts a relay on 127.0.0.1. `port` 0 picks a free one; pass the previous port to restart
   * "the same" relay. Waits for its "listening" log line.
   */
  static async start(
    opts: {
      dataDir?: string;
      port?: number;
      env?: Record<string, string>;
      args?: string[];
      /** Starts the relay under `ulimit -n` of this many open files. */
      fileLimit?: number;
    } = {},
  ): Promise<RelayProcess> {
    const dataDir = opts.dataDir ?? await Deno.makeTempDir({ prefix: "chat-relay-" });
    const args = [
      "run",
      "--allow-all", // as `deno task relay`: the connection guard reads /proc and calls FFI
      join(ROOT, "relay/main.ts"),
      "--host",
      "127.0.0.1",
      "--port",
      String(opts.port ?? 0),
      "--data-dir",
      dataDir,
      ...(opts.args ?? []),
    ];
    const [cmd, argv] = opts.fileLimit === undefined
      ? [Deno.execPath(), args]
      : ["bash", ["-c", `ulimit -n ${opts.fileLimit} && exec "$0" "$@"`, Deno.execPath(), ...args]];
    const child = new Deno.Command(cmd, {
      args: argv,
      cwd: ROOT,
      // The relay's backends and limits come from `opts.env` only: a test that means the
      // embedded relay must get it even when KAFKA_BROKERS/REDIS_URL are exported (as in CI).
      env: { ...inheritedEnv(), NO_COLOR: "1", ...opts.env },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const logs: string[] = [];
    const { promise: portP, resolve, reject } = Promise.withResolvers<number>();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      let buf = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          logs.push(line);
          if (line.includes('"msg":"listening"')) resolve(JSON.parse(line).port);
        }
      }
      if (buf) logs.push(buf);
    };
    const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
    const exited = pumps.then(() => child.status);
    exited.then((s) =>
      reject(new Error(`relay exited (${s.code}) before listening:\n${logs.join("\n")}`))
    );
    const timer = setTimeout(
      () => reject(new Error(`relay did not listen within 30 s:\n${logs.join("\n")}`)),
      30_000,
    );
    try {
      const port = await portP;
      return new RelayProcess(child, port, logs, dataDir, exited);
    } catch (err) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await exited;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resident memory of the relay process in bytes (Linux /proc). */
  async rss(): Promise<number> {
    const status = await Deno.readTextFile(`/proc/${this.pid}/status`);
    const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
    return kb * 1024;
  }

  /** Sends a signal and waits for the process to end. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
    return await this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
  }
}
