/**
 * Structured JSON logs, one object per line on stdout, filtered by level. Callers pass only
 * counts, codes, ids and fingerprints: never key material or ciphertext.
 *
 * @module
 */
import process from "node:process";

/** Log levels, least to most severe. */
export const LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level. */
export type Level = typeof LEVELS[number];

/** A structured logger. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** The part of a logger the backend adapters need: they report trouble, nothing else. */
export type AdapterLogger = Pick<Logger, "warn" | "error">;

/** Makes a logger that writes lines at `level` and above through `write` (default: stdout). */
export function createLogger(
  level: Level = "info",
  write: (line: string) => void = (line) => console.log(line),
): Logger {
  const min = LEVELS.indexOf(level);
  const at = (l: Level) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS.indexOf(l) < min) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: l, msg, ...fields }));
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** True when `x` names a log level. */
export function isLevel(x: string): x is Level {
  return (LEVELS as readonly string[]).includes(x);
}

/**
 * Reports a run of one kind of failure (e.g. sends refused while a backend is down) as it starts,
 * then a summary with the count every `everyMs` while it lasts, and once more when a success ends
 * it: a few lines per outage, not one per failure (an outage under load was thousands).
 */
export class OutageLog {
  #log: Pick<Logger, "warn">;
  #what: string;
  #everyMs: number;
  #count = 0;
  #since = 0;
  #reported = 0;

  constructor(log: Pick<Logger, "warn">, what: string, everyMs = 30_000) {
    this.#log = log;
    this.#what = what;
    this.#everyMs = everyMs;
  }

  /** One more failure; `err` says why (the adapter's message). */
  fail(err: string, now: number = Date.now()): void {
    if (this.#count++ === 0) {
      this.#since = this.#reported = now;
      this.#log.warn(this.#what, { err });
    } else if (now - this.#reported >= this.#everyMs) {
      this.#reported = now;
      this.#log.warn(`${this.#what}: still`, {
        count: this.#count,
        since_ms: now - this.#since,
        err,
      });
    }
  }

  /** A success: ends the run, if one was going on, with its count and length. */
  ok(now: number = Date.now()): void {
    if (this.#count === 0) return;
    this.#log.warn(`${this.#what}: over`, { count: this.#count, duration_ms: now - this.#since });
    this.#count = 0;
  }
}

let warningsTo: Pick<Logger, "warn"> | undefined;

/**
 * Routes the runtime's warnings (`process.emitWarning`: Node's MaxListenersExceededWarning,
 * deprecations, ...), which would otherwise print plain text on stderr, to `log` as JSON lines.
 * Later calls only change the logger. Returns a function that puts the original back (tests).
 */
export function routeRuntimeWarnings(log: Pick<Logger, "warn">): () => void {
  const first = warningsTo === undefined;
  warningsTo = log;
  if (!first) return () => {};
  const original = process.emitWarning;
  const routed = (warning: string | Error, ...rest: unknown[]) => {
    const opt = rest[0];
    const name = warning instanceof Error
      ? warning.name
      : typeof opt === "string"
      ? opt
      : (opt as { type?: string } | undefined)?.type ?? "Warning";
    const message = warning instanceof Error ? warning.message : String(warning);
    warningsTo?.warn("runtime warning", { name, message });
  };
  process.emitWarning = routed as typeof process.emitWarning;
  return () => {
    process.emitWarning = original;
    warningsTo = undefined;
  };
}
