/**
 * CLI row: `chat-p2p id` cold start and `chat-p2p send` round trip (each a fresh `deno run`
 * process under a temp HOME, as a user runs them) against `deno run` of an empty script; history
 * append cost at 0 and 100k messages through client/store/message_log.ts.
 *
 * @module
 */
import { join } from "node:path";
import { ROOT, run } from "../lib/proc.ts";

/** CLI figures (ms). */
export interface CliOut {
  emptyScriptMs: number;
  idMs: number;
  sendMs: number;
  /** send minus the empty-script start: the command's own work and the relay round trip. */
  sendOverStartMs: number;
  /** send minus `id`: the round trip without the CLI's own cold start (module loading). */
  sendOverIdMs: number;
  appendAt0Ms: number;
  appendAt100kMs: number;
  /** MessageLog.open on a 100k-message file (every CLI command touching history pays it). */
  openAt100kMs: number;
  runs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const r2 = (x: number) => Math.round(x * 100) / 100;

/** Runs the CLI measurements; `relayUrl` is a running relay. */
export async function cliBench(relayUrl: string, dir: string, runs: number): Promise<CliOut> {
  const main = join(ROOT, "cli/main.ts");
  await Deno.stat(main);
  const home = join(dir, "home");
  await Deno.mkdir(home, { recursive: true });
  const env = { HOME: home, CHAT_PROFILE: "" };
  const cli = async (args: string[]) => {
    const r = await run(Deno.execPath(), ["run", "-A", main, ...args], { env, timeoutMs: 60_000 });
    if (r.code !== 0) {
      throw new Error(`chat-p2p ${args[0]} failed (${r.code}): ${r.stderr.slice(-300)}`);
    }
    return r;
  };
  const empty = join(dir, "empty.ts");
  await Deno.writeTextFile(empty, "");
  const emptyRun = () => run(Deno.execPath(), ["run", "-A", empty], { timeoutMs: 60_000 });

  await cli(["init"]);
  const bob = (await cli(["--profile", "bob", "init"])).stdout.trim().split("\n")[0];
  await cli(["add-contact", "bob", bob]);
  // one untimed run of each to fill Deno's module cache
  await emptyRun();
  await cli(["id"]);
  await cli(["send", relayUrl, "bob", "warm-up"]);
  const e: number[] = [], id: number[] = [], send: number[] = [];
  for (let i = 0; i < runs; i++) {
    e.push((await emptyRun()).ms);
    id.push((await cli(["id"])).ms);
    send.push((await cli(["send", relayUrl, "bob", `hello ${i}`])).ms);
  }

  // History append, in a subprocess so this process's heap does not skew it.
  const r = await run(Deno.execPath(), ["run", "-A", join(ROOT, "bench/history_append.ts"), dir], {
    timeoutMs: 300_000,
  });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (!line) throw new Error(`history_append.ts failed: ${r.stderr.slice(-400)}`);
  const h = JSON.parse(line);
  return {
    emptyScriptMs: r2(median(e)),
    idMs: r2(median(id)),
    sendMs: r2(median(send)),
    sendOverStartMs: r2(median(send) - median(e)),
    sendOverIdMs: r2(median(send) - median(id)),
    appendAt0Ms: h.appendAt0Ms,
    appendAt100kMs: h.appendAt100kMs,
    openAt100kMs: h.openAt100kMs,
    runs,
  };
}
