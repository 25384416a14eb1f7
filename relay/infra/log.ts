/**
 * Structured JSON logs, one object per line on stdout, filtered by level. Callers pass only
 * counts, codes, ids and fingerprints: never key material or ciphertext.
 *
 * @module
 */

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
