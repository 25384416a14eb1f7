/**
 * Per-profile settings in `config.json` (0600, replaced atomically): today one, `relay`, the
 * relay a command uses when none is named. Keys this version does not know are kept as they are.
 *
 * ```json
 * {"relay": "ws://127.0.0.1:8080/ws"}
 * ```
 *
 * @example
 * ```ts ignore
 * import { openStore, ProfileConfig } from "@chat-p2p/client";
 *
 * const config = new ProfileConfig(openStore(Deno.env.get, "alice", console.warn));
 * config.set("relay", "ws://127.0.0.1:8080/ws");
 * config.get("relay"); // "ws://127.0.0.1:8080/ws"
 * ```
 *
 * @module
 */
import { normalizeRelayUrl } from "@chat-p2p/protocol";
import { ClientError } from "../errors.ts";
import type { ProfileStore } from "./profile_store.ts";

/** The settings there are, with what each means. */
export const CONFIG_KEYS = {
  relay: "the relay URL used when a command names none (ws://host:port/ws, wss://...)",
} as const;

/** A setting's name. */
export type ConfigKey = keyof typeof CONFIG_KEYS;

const FILE = "config.json";

/** True when `key` is a setting's name. */
export function isConfigKey(key: string): key is ConfigKey {
  return Object.hasOwn(CONFIG_KEYS, key);
}

/** Checks and normalises a value for `key`; throws `bad_config` with the reason. */
function normalize(key: ConfigKey, value: string): string {
  switch (key) {
    case "relay": {
      const url = normalizeRelayUrl(value);
      if (!url) {
        throw new ClientError(
          "bad_config",
          `not a relay URL: ${JSON.stringify(value)} (expected ws://host:port/path or wss://...)`,
        );
      }
      return url;
    }
  }
}

/** The settings of one profile. */
export class ProfileConfig {
  readonly #store: ProfileStore;

  /** The settings in `store`'s profile. */
  constructor(store: ProfileStore) {
    this.#store = store;
  }

  /** Every setting this version knows that is set. */
  all(): Partial<Record<ConfigKey, string>> {
    const o = this.#read();
    const out: Partial<Record<ConfigKey, string>> = {};
    for (const key of Object.keys(CONFIG_KEYS) as ConfigKey[]) {
      if (typeof o[key] === "string") out[key] = o[key];
    }
    return out;
  }

  /** The value of `key`, or undefined when it is not set. */
  get(key: ConfigKey): string | undefined {
    return this.all()[key];
  }

  /** Sets `key` (checked and normalised: a relay URL as the relay sees it); returns the value. */
  set(key: ConfigKey, value: string): string {
    const v = normalize(key, value);
    this.#write({ ...this.#read(), [key]: v });
    return v;
  }

  /** Removes `key`; returns whether it was set. */
  unset(key: ConfigKey): boolean {
    const o = this.#read();
    if (!Object.hasOwn(o, key)) return false;
    delete o[key];
    this.#write(o);
    return true;
  }

  #read(): Record<string, unknown> {
    const text = this.#store.readFile(FILE);
    if (text === undefined) return {};
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      o = undefined;
    }
    if (typeof o !== "object" || o === null || Array.isArray(o)) {
      throw new ClientError(
        "bad_config",
        `${this.#store.dir}/${FILE} is corrupt: not a JSON object; fix or remove it`,
      );
    }
    return o as Record<string, unknown>;
  }

  #write(o: Record<string, unknown>): void {
    this.#store.writeFile(FILE, JSON.stringify(o, null, 2) + "\n");
  }
}
