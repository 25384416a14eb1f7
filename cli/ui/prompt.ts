/**
 * Asking a yes/no question on the terminal, with the answer echoed as typed (the terminal stays
 * in its normal line mode).
 *
 * @module
 */
import type { Context } from "../context.ts";

/** True when the command can ask: stdin is a terminal it can read from. */
export function canAsk(ctx: Context): boolean {
  return ctx.io.stdin.isTerminal && ctx.io.stdin.read !== undefined;
}

/**
 * Writes `question` and " [y/N] " on stderr and reads one line from the terminal: true for "y"
 * or "yes" (any case), false for anything else, an empty line or the end of input.
 */
export async function askYesNo(ctx: Context, question: string): Promise<boolean> {
  ctx.io.stderr.write(`${question} [y/N] `);
  const bytes: number[] = [];
  const buf = new Uint8Array(64);
  for (;;) {
    const n = await ctx.io.stdin.read!(buf);
    if (n === null) break;
    const nl = buf.subarray(0, n).findIndex((b) => b === 0x0a || b === 0x0d);
    bytes.push(...buf.subarray(0, nl < 0 ? n : nl));
    if (nl >= 0) break;
  }
  const answer = new TextDecoder().decode(new Uint8Array(bytes)).trim().toLowerCase();
  return answer === "y" || answer === "yes";
}
