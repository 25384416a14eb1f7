/**
 * `chat-p2p config set|get|unset`: the profile's settings (config.json), today the default relay.
 *
 * @module
 */
import {
  CONFIG_KEYS,
  type ConfigKey,
  isConfigKey,
  openStore,
  ProfileConfig,
} from "@chat-p2p/client";
import { type Command, type Context, err, out, parseCommandArgs, warn } from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import { RELAY_ENV } from "../relay_errors.ts";

const KEYS = Object.entries(CONFIG_KEYS).map(([k, what]) => `  ${k.padEnd(6)} ${what}`).join("\n");

const USAGE = `Usage: chat-p2p config set <key> <value>
       chat-p2p config get [<key>] [--json]
       chat-p2p config unset <key>

Reads and changes the profile's settings (in ~/.chat-<profile>/config.json). \`get\` with a key
prints its value alone, and exits 1 when it is not set; without one it prints every setting
("key = value"), or with --json one object: {"relay": "<url>" or null}.

Settings:
${KEYS}

$${RELAY_ENV} overrides the relay setting, and a relay named on the command line overrides both.

Options:
  --json       with get: one JSON object
  -h, --help   show this help`;

function keyArg(key: string | undefined): ConfigKey {
  if (key === undefined) throw new UsageError("config: missing <key>", USAGE);
  if (!isConfigKey(key)) {
    throw new UsageError(
      `config: unknown setting ${JSON.stringify(key)} (known: ${
        Object.keys(CONFIG_KEYS).join(", ")
      })`,
      USAGE,
    );
  }
  return key;
}

/** The `config` command. */
export const configCommand: Command = {
  name: "config",
  summary: "show or change the profile's settings (the default relay)",
  usage: USAGE,
  run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(this, args, { json: { type: "boolean" } }, [
      "set|get|unset",
    ], 3);
    const [action, key, value] = positionals;
    const expected = { set: 3, get: 2, unset: 2 }[action];
    if (expected === undefined) {
      throw new UsageError(`config: unknown action ${JSON.stringify(action)}`, USAGE);
    }
    if (positionals.length > expected) {
      throw new UsageError(
        `config: unexpected argument ${JSON.stringify(positionals[expected])}`,
        USAGE,
      );
    }
    if (values.json === true && action !== "get") {
      throw new UsageError("config: --json goes with get", USAGE);
    }
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const config = new ProfileConfig(store);
    if (action === "set") {
      if (value === undefined) throw new UsageError("config: missing <value>", USAGE);
      const k = keyArg(key);
      out(ctx, `${k} = ${config.set(k, value)}`);
    } else if (action === "unset") {
      const k = keyArg(key);
      if (!config.unset(k)) err(ctx, `${k} was not set`);
    } else if (key !== undefined) {
      const k = keyArg(key);
      const v = config.get(k);
      if (values.json === true) out(ctx, JSON.stringify({ [k]: v ?? null }));
      else if (v === undefined) throw new CliError(`${k} is not set`);
      else out(ctx, v);
    } else {
      const all = config.all();
      if (values.json === true) {
        const o = Object.fromEntries(
          Object.keys(CONFIG_KEYS).map((k) => [k, all[k as ConfigKey] ?? null]),
        );
        out(ctx, JSON.stringify(o));
      } else {
        for (const [k, v] of Object.entries(all)) out(ctx, `${k} = ${v}`);
        if (Object.keys(all).length === 0) err(ctx, "nothing is set");
      }
    }
    return Promise.resolve();
  },
};
