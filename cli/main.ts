/**
 * Entry point of the `chat-p2p` command line. The only module that exits the process.
 *
 * @module
 */
import { run } from "./app.ts";
import { denoIo } from "./io.ts";

if (import.meta.main) {
  const code = await run(Deno.args, denoIo());
  Deno.exit(code);
}
