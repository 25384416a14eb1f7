/**
 * `chat-p2p help [command]`: the overview, or one command's help (the same text as
 * `chat-p2p <command> --help`).
 *
 * @module
 */
import { type Command, type Context, out, parseCommandArgs } from "../context.ts";
import { UsageError } from "../errors.ts";
import type { ArgumentWords } from "./completions.ts";

/** The command table, handed to the commands that describe the others (help, completions). */
export interface CommandTable {
  /** Every command, in help order. */
  commands(): readonly Command[];
  /** The top-level help: usage, commands, global options. */
  usage(): string;
}

const USAGE = `Usage: chat-p2p help [<command>]

Without a command, lists the commands and the global options. With one, prints its help, as
\`chat-p2p <command> --help\` does.

Options:
  -h, --help   show this help`;

/** The `help` command, describing the commands of `table`. */
export function helpCommand(table: CommandTable): Command & ArgumentWords {
  return {
    name: "help",
    summary: "show the help of chat-p2p or of one command",
    usage: USAGE,
    argumentWords: () => table.commands().flatMap((c) => [c.name, ...(c.aliases ?? [])]),
    run(args: string[], ctx: Context): Promise<void> {
      const { positionals } = parseCommandArgs(this, args, {}, [], 1);
      const [name] = positionals;
      if (name === undefined) {
        out(ctx, table.usage());
        return Promise.resolve();
      }
      const cmd = table.commands().find((c) => c.name === name || c.aliases?.includes(name));
      if (!cmd) {
        throw new UsageError(`help: unknown command ${JSON.stringify(name)}`, table.usage());
      }
      out(ctx, cmd.usage);
      return Promise.resolve();
    },
  };
}
