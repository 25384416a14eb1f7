/**
 * `chat-p2p version [--json]` (also `chat-p2p --version`): the CLI's version, from its package's
 * deno.json, with the protocol it speaks and the Deno it runs on.
 *
 * @module
 */
import { PROTOCOL_VERSION_V2 as PROTOCOL_VERSION } from "@chat-p2p/protocol";
import { type Command, type Context, out, parseCommandArgs } from "../context.ts";
import cliPackage from "../deno.json" with { type: "json" };

/** The CLI's version (cli/deno.json). */
export const VERSION: string = cliPackage.version;

/** `chat-p2p 1.0.0 (protocol v2, deno 2.9.6)`: what `--version` prints. */
export function versionLine(): string {
  return `chat-p2p ${VERSION} (protocol v${PROTOCOL_VERSION}, deno ${Deno.version.deno})`;
}

const USAGE = `Usage: chat-p2p version [--json]
       chat-p2p --version

Prints the version of chat-p2p, the protocol version it speaks and the Deno it runs on.

Options:
  --json       print {"version": ..., "protocol": ..., "deno": ...}
  -h, --help   show this help`;

/** The `version` command. */
export const versionCommand: Command = {
  name: "version",
  summary: "print the version",
  usage: USAGE,
  run(args: string[], ctx: Context): Promise<void> {
    const { values } = parseCommandArgs(this, args, { json: { type: "boolean" } }, []);
    out(
      ctx,
      values.json === true
        ? JSON.stringify({ version: VERSION, protocol: PROTOCOL_VERSION, deno: Deno.version.deno })
        : versionLine(),
    );
    return Promise.resolve();
  },
};
