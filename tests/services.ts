/**
 * Real Kafka and Redis for the adapter tests.
 *
 * `requireServices()` uses `KAFKA_BROKERS` / `REDIS_URL` when both are set; otherwise, when java,
 * mvn and redis-server are installed, it runs `bash scripts/services.sh up` once per process and
 * parses the two lines it prints. Without them the tests are skipped (shown as "ignored") — except
 * under `CI=true`, where a missing service is an error, never a silent skip.
 *
 * Services this process started are stopped again when it exits (the test run is over), unless
 * `CHAT_KEEP_SERVICES=1` asks to keep them for the next run (it then reuses them in well under a
 * second; `deno task services:down` stops them). Services that were already running are left
 * alone.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Where the backing services answer. */
export interface Services {
  /** Kafka bootstrap brokers, e.g. `["127.0.0.1:9192"]`. */
  kafkaBrokers: string[];
  /** Redis URL, e.g. `redis://127.0.0.1:6390`. */
  redisUrl: string;
  /**
   * True when scripts/services.sh runs them (tests may stop/start one with
   * {@linkcode runServicesScript}); false when they came from KAFKA_BROKERS / REDIS_URL.
   */
  managed?: boolean;
}

/** Why the services are not available (tests get ignored). */
export interface ServicesSkip {
  skip: string;
}

/** Repository root (the folder holding deno.json). */
export const ROOT: string = join(dirname(fileURLToPath(import.meta.url)), "..");
/** The services script. */
export const SERVICES_SCRIPT: string = join(ROOT, "scripts", "services.sh");

let memo: Promise<Services | ServicesSkip> | undefined;

function inCi(): boolean {
  return (Deno.env.get("CI") ?? "").toLowerCase() === "true";
}

async function onPath(cmd: string): Promise<boolean> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    try {
      const st = await Deno.stat(join(dir, cmd));
      if (st.isFile) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Parses `KAFKA_BROKERS=...` / `REDIS_URL=...` lines (as printed by `services.sh up|env`). */
export function parseServicesEnv(text: string): Partial<Services> {
  const out: Partial<Services> = {};
  for (const line of text.split("\n")) {
    const m = /^(KAFKA_BROKERS|REDIS_URL)=(.+)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === "KAFKA_BROKERS") {
      out.kafkaBrokers = m[2].split(",").map((s) => s.trim()).filter(Boolean);
    } else out.redisUrl = m[2].trim();
  }
  return out;
}

/**
 * Runs `bash scripts/services.sh <args>`; returns stdout, throws with stderr on failure.
 * Tests use it to stop and start one service (`["down", "kafka"]`, `["up", "kafka"]`).
 */
export async function runServicesScript(args: string[]): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: [SERVICES_SCRIPT, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new Error(
      `scripts/services.sh ${args.join(" ")} failed (exit ${out.code}):\n${stderr}`,
    );
  }
  return stdout;
}

async function resolve(): Promise<Services | ServicesSkip> {
  const envKafka = Deno.env.get("KAFKA_BROKERS")?.trim();
  const envRedis = Deno.env.get("REDIS_URL")?.trim();
  if (envKafka && envRedis) {
    // The variables may point at the services this script runs (as in .ci/run): then tests may
    // restart them. `env` exits non-zero when they are not running.
    let scripted: Partial<Services> = {};
    try {
      scripted = parseServicesEnv(await runServicesScript(["env"]));
    } catch { /* not ours */ }
    return {
      kafkaBrokers: envKafka.split(",").map((s) => s.trim()),
      redisUrl: envRedis,
      managed: scripted.redisUrl === envRedis && scripted.kafkaBrokers?.join(",") === envKafka,
    };
  }
  const missing: string[] = [];
  for (const cmd of ["bash", "java", "mvn", "redis-server"]) {
    if (!(await onPath(cmd))) missing.push(cmd);
  }
  if (missing.length > 0) {
    return {
      skip: `Kafka/Redis tests need ${missing.join(", ")} on PATH ` +
        `(or KAFKA_BROKERS and REDIS_URL set)`,
    };
  }
  const running = await Promise.all(
    (["redis", "kafka"] as const).map(async (s) =>
      (await runServicesScript(["status", s]).then(() => true, () => false)) ? undefined : s
    ),
  );
  stopAtExit(running.filter((s) => s !== undefined));
  const parsed = parseServicesEnv(await runServicesScript(["up"]));
  if (!parsed.kafkaBrokers?.length || !parsed.redisUrl) {
    throw new Error("scripts/services.sh up did not print KAFKA_BROKERS and REDIS_URL");
  }
  return {
    kafkaBrokers: envKafka ? envKafka.split(",").map((s) => s.trim()) : parsed.kafkaBrokers,
    redisUrl: envRedis || parsed.redisUrl,
    managed: !envKafka && !envRedis,
  };
}

/**
 * Stops `services` (the ones this process starts) when the process exits, unless
 * `CHAT_KEEP_SERVICES=1`. The `unload` event allows only synchronous work, hence `outputSync`.
 */
function stopAtExit(services: string[]): void {
  if (services.length === 0 || Deno.env.get("CHAT_KEEP_SERVICES") === "1") return;
  globalThis.addEventListener("unload", () => {
    for (const s of services) {
      new Deno.Command("bash", {
        args: [SERVICES_SCRIPT, "down", s],
        cwd: ROOT,
        stdin: "null",
        stdout: "null",
        stderr: "inherit",
      }).outputSync();
    }
  });
}

/**
 * For tests that stop and start a service: true when they may. When the services are not run by
 * scripts/services.sh, the test is reported skipped (a warning) outside CI and fails under
 * `CI=true`, where nothing may be skipped.
 */
export function requireManaged(services: Services, what: string): boolean {
  if (services.managed) return true;
  const why = `${what} needs services run by scripts/services.sh (it restarts them); ` +
    `KAFKA_BROKERS/REDIS_URL point elsewhere`;
  if (inCi()) throw new Error(`CI=true forbids skipping: ${why}`);
  console.warn(`skipping: ${why}`);
  return false;
}

/**
 * Where Kafka and Redis answer, starting them if needed (once per process), or why not.
 * Under `CI=true` a skip becomes a thrown Error.
 */
export async function requireServices(): Promise<Services | ServicesSkip> {
  memo ??= resolve();
  const r = await memo;
  if ("skip" in r && inCi()) throw new Error(`CI=true forbids skipping: ${r.skip}`);
  return r;
}

/** Extra `Deno.test` options for {@linkcode servicesTest}. */
export type ServicesTestOptions = Omit<Deno.TestDefinition, "name" | "fn" | "ignore">;

let warned = false;

/**
 * Registers a `Deno.test` that receives the services. Call it with top-level `await` (tests are
 * collected at module load). When the services are missing the test is registered with
 * `ignore: true` and the reason is printed once; under `CI=true` it is registered as a failing
 * test instead.
 */
export async function servicesTest(
  name: string,
  fn: (services: Services, t: Deno.TestContext) => void | Promise<void>,
  options: ServicesTestOptions = {},
): Promise<void> {
  let r: Services | ServicesSkip;
  try {
    r = await requireServices();
  } catch (e) {
    Deno.test({ ...options, name, fn: () => Promise.reject(e) });
    return;
  }
  if ("skip" in r) {
    if (!warned) console.warn(`ignoring Kafka/Redis tests: ${r.skip}`);
    warned = true;
    Deno.test({ ...options, name, ignore: true, fn: () => {} });
    return;
  }
  const services = r;
  Deno.test({ ...options, name, fn: (t) => fn(services, t) });
}

/**
 * For suites registered by someone else (the adapter contracts): resolves the services once and
 * returns `testOptions` to pass along (`ignore: true` on skip, with the reason printed) and, under
 * `CI=true` without services, the `failure` each factory must reject with so the suite fails.
 */
export async function servicesForSuite(): Promise<{
  services?: Services;
  testOptions: Partial<Deno.TestDefinition>;
  failure?: Error;
}> {
  let r: Services | ServicesSkip;
  try {
    r = await requireServices();
  } catch (e) {
    return { testOptions: {}, failure: e instanceof Error ? e : new Error(String(e)) };
  }
  if ("skip" in r) {
    if (!warned) console.warn(`ignoring Kafka/Redis tests: ${r.skip}`);
    warned = true;
    return { testOptions: { ignore: true } };
  }
  return { services: r, testOptions: {} };
}

/** The state folder of scripts/services.sh: `CHAT_SERVICES_DIR`, default `<repo>/.services`. */
export function servicesDir(): string {
  return Deno.env.get("CHAT_SERVICES_DIR") ?? join(ROOT, ".services");
}

/**
 * The pid scripts/services.sh recorded for `which`: undefined when it has none, or while the
 * pidfile is empty or being written (a 0 or NaN would make `Deno.kill` hit the test runner's
 * own process group).
 */
export function servicePid(which: "kafka" | "redis"): number | undefined {
  let n: number;
  try {
    n = Number(Deno.readTextFileSync(join(servicesDir(), which, `${which}.pid`)).trim());
  } catch {
    return undefined;
  }
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * The environment of a relay on `svc` (Kafka and Redis), with a topic of its own,
 * `chat-<name>-<runId>`, of `partitions` partitions; relays given the same object share the bus.
 */
export function scaledRelayEnv(
  svc: Services,
  name: string,
  partitions = 3,
): Record<string, string> {
  return {
    KAFKA_BROKERS: svc.kafkaBrokers.join(","),
    REDIS_URL: svc.redisUrl,
    KAFKA_TOPIC: `chat-${name}-${runId()}`,
    KAFKA_PARTITIONS: String(partitions),
  };
}

/** A short random suffix for per-run topic names and key prefixes. */
export function runId(): string {
  return `${Date.now().toString(36)}${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}`;
}
