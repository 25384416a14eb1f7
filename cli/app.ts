/**
 * The command dispatcher: global options, `--help`, and the one place errors become exit codes
 * (0 ok, 1 runtime failure, 2 usage error). `main.ts` wires it to the real process.
 *
 * @module
 */
import { addContactCommand } from "./commands/add_contact.ts";
import { chatCommand } from "./commands/chat.ts";
import { passphraseCommand } from "./commands/change_passphrase.ts";
import { contactsCommand } from "./commands/contacts.ts";
import { colorAllowed, type Command, type Context } from "./context.ts";
import { ClientError, type ClientErrorCode, explainProfileName } from "@chat-p2p/client";
import { CliError, errorMessage, EXIT, ExitStatus, UsageError } from "./errors.ts";
import { historyCommand } from "./commands/history.ts";
import { idCommand } from "./commands/id.ts";
import { initCommand } from "./commands/init.ts";
import type { Io } from "./io.ts";
import { resendCommand } from "./commands/resend.ts";
import { sendCommand } from "./commands/send.ts";
import { syncCommand } from "./commands/sync.ts";
import { type CommandTable, helpCommand } from "./commands/help.ts";
import { versionCommand, versionLine } from "./commands/version.ts";
import { completionsCommand } from "./commands/completions.ts";
import { configCommand } from "./commands/config.ts";
import { chatsCommand } from "./commands/chats.ts";
import { removeContactCommand, renameContactCommand } from "./commands/remove_contact.ts";
import { verifyCommand } from "./commands/verify.ts";
import { listenCommand } from "./commands/listen.ts";

/** The table as the commands that describe the others see it (filled in below). */
const TABLE: CommandTable = { commands: () => COMMANDS, usage: mainUsage };

/** Every command, in help order. */
export const COMMANDS: readonly Command[] = [
  initCommand,
  idCommand,
  addContactCommand,
  contactsCommand,
  removeContactCommand,
  renameContactCommand,
  verifyCommand,
  sendCommand,
  syncCommand,
  chatCommand,
  chatsCommand,
  listenCommand,
  resendCommand,
  historyCommand,
  configCommand,
  passphraseCommand,
  helpCommand(TABLE),
  versionCommand,
  completionsCommand(TABLE),
];

export { EXIT } from "./errors.ts";

/**
 * What the CLI adds to the client library's errors, which never name a CLI command: the command
 * that helps, by code. Every {@linkcode ClientError} exits 1 with `error: <message><hint>`.
 */
const CLIENT_ERROR_HINTS: Partial<Record<ClientErrorCode, string>> = {
  no_identity: ": run `chat-p2p init`",
  unknown_contact: " (add one with `chat-p2p add-contact <name> <public-key>`)",
};

/** The `error: ...` text for a failure of the client library. */
export function clientErrorMessage(e: ClientError): string {
  return e.message + (CLIENT_ERROR_HINTS[e.code] ?? "");
}

/** The command called `name` (or with that alias). */
export function findCommand(name: string): Command | undefined {
  return COMMANDS.find((c) => c.name === name || c.aliases?.includes(name));
}

/** Top-level help. */
export function mainUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `chat-p2p: private, end-to-end encrypted messaging from the terminal

Usage: chat-p2p [--profile <name>] [--verbose] <command> [options]

Commands:
${
    COMMANDS.map((c) =>
      `  ${c.name.padEnd(width)}  ${c.summary}${
        c.aliases?.length ? ` (also: ${c.aliases.join(", ")})` : ""
      }`
    ).join("\n")
  }

Global options (before or after the command):
  --profile <name>  profile to use (default: $CHAT_PROFILE, else "default"); its files live in
                    $HOME/.chat-<name>/
  --verbose         protocol log and stack traces on stderr
  -h, --help        show help; for a command: chat-p2p help <command>
  --version         print the version and exit

Start with \`chat-p2p init\`, share the key \`chat-p2p id\` prints, then
\`chat-p2p add-contact <name> <key>\`, \`chat-p2p config set relay ws://relay:8080/ws\` and
\`chat-p2p chat <name>\`. Exit codes: docs/CLI.md (0 ok, 1 failure, 2 usage, 3 queued, 4 not
delivered in time).`;
}

interface Globals {
  profile: string | undefined;
  verbose: boolean;
  help: boolean;
  version: boolean;
  command: string | undefined;
  rest: string[];
}

/**
 * Pulls the global options out of argv (anywhere before a `--`), finds the command name, and
 * leaves the command's own arguments in order.
 */
export function splitGlobals(argv: string[]): Globals {
  const g: Globals = {
    profile: undefined,
    verbose: false,
    help: false,
    version: false,
    command: undefined,
    rest: [],
  };
  let i = 0;
  let afterDashDash = false;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (afterDashDash) {
      g.rest.push(a);
      continue;
    }
    if (a === "--") {
      afterDashDash = true;
      if (g.command !== undefined) g.rest.push(a);
      continue;
    }
    if (a === "--verbose") g.verbose = true;
    else if (a === "--help" || a === "-h") g.help = true;
    else if (a === "--version") g.version = true;
    else if (a === "--profile") {
      if (i + 1 >= argv.length) throw new UsageError("--profile needs a value");
      g.profile = argv[++i];
    } else if (a.startsWith("--profile=")) g.profile = a.slice("--profile=".length);
    else if (g.command === undefined && !a.startsWith("-")) g.command = a;
    else if (g.command === undefined) {
      throw new UsageError(`unknown option ${a} before the command`);
    } else g.rest.push(a);
  }
  return g;
}

/** Runs the CLI with `argv` against `io`; returns the exit code (never exits). */
export async function run(argv: string[], io: Io): Promise<number> {
  const verbose = argv.slice(0, argv.includes("--") ? argv.indexOf("--") : undefined).includes(
    "--verbose",
  );
  const stderr = (line: string) => io.stderr.write(line + "\n");
  let cmd: Command | undefined;
  try {
    const g = splitGlobals(argv);
    if (g.version) {
      io.stdout.write(versionLine() + "\n");
      return EXIT.ok;
    }
    if (g.command === undefined) {
      if (g.help) {
        io.stdout.write(mainUsage() + "\n");
        return EXIT.ok;
      }
      throw new UsageError("missing command");
    }
    cmd = findCommand(g.command);
    if (!cmd) {
      throw new UsageError(`unknown command ${JSON.stringify(g.command)}`);
    }
    if (g.help) {
      io.stdout.write(cmd.usage + "\n");
      return EXIT.ok;
    }
    const profile = g.profile ?? (io.env("CHAT_PROFILE") || "default");
    const bad = explainProfileName(profile);
    if (bad) throw new UsageError(bad);
    const ctx: Context = {
      io,
      profile,
      verbose: g.verbose,
      color: colorAllowed(io, io.stdout.isTerminal),
    };
    await cmd.run(g.rest, ctx);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof ExitStatus) return e.code;
    if (e instanceof UsageError) {
      stderr(`error: ${e.message}`);
      stderr("");
      stderr(e.usage ?? cmd?.usage ?? mainUsage());
      return EXIT.usage;
    }
    stderr(`error: ${e instanceof ClientError ? clientErrorMessage(e) : errorMessage(e)}`);
    if (verbose && e instanceof Error && e.stack) {
      stderr(e.stack);
      if (e.cause instanceof Error && e.cause.stack) stderr(`caused by: ${e.cause.stack}`);
    } else if (!(e instanceof CliError || e instanceof ClientError)) {
      stderr("(run with --verbose for details)");
    }
    return e instanceof CliError ? e.exitCode : EXIT.failure;
  }
}
