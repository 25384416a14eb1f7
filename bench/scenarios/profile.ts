/**
 * CPU profile of a relay under a constant load: the relay subprocess runs with `--cpu-prof`, the
 * generators offer `rate` msg/s for `durationMs`, the relay is stopped gracefully (SIGTERM, which
 * writes the profile) and the profile is summarised.
 *
 * @module
 */
import { join } from "node:path";
import { type CpuProfile, type ProfileSummary, render, summarise } from "../profile_summary.ts";
import { type Server, sleep } from "../lib/proc.ts";
import { Fleet, type StepOut } from "./throughput.ts";

/** A profiled load run. */
export interface ProfileOut {
  rate: number;
  step: StepOut;
  file: string;
  /** Steady state: samples under the handshake (Session#auth, before the window) left out. */
  summary: ProfileSummary;
  /** Everything, handshakes of the generators' sockets included. */
  whole: ProfileSummary;
  /** The process's worker threads (the SQLite writer), each summarised on its own. */
  workers: Array<{ file: string; summary: ProfileSummary }>;
  text: string;
}

/** Starts the relay with `start(profDir)`, loads it, stops it and summarises the profile. */
export async function profileRelay(
  name: string,
  start: (cpuProfDir: string) => Promise<Server[]>,
  rate: number,
  durationMs: number,
  outDir: string,
  pairsPerGen: number,
): Promise<ProfileOut> {
  const profDir = join(outDir, `profile-${name}`);
  await Deno.remove(profDir, { recursive: true }).catch(() => {});
  await Deno.mkdir(profDir, { recursive: true });
  const servers = await start(profDir);
  const fleet = new Fleet({
    name: `prof-${name}`,
    senderUrl: servers[0].url,
    receiverUrl: servers[servers.length - 1].url,
    pids: servers.map((s) => s.pid),
  }, pairsPerGen);
  let step: StepOut;
  try {
    await fleet.grow(2);
    await fleet.step(rate / 2, 1000, 1000, 1e9); // warm-up, not profiled separately
    step = await fleet.step(rate, durationMs, 2000, 1e9);
  } finally {
    await fleet.close();
    for (const s of servers) await s.stop();
  }
  await sleep(100);
  const files = [...Deno.readDirSync(profDir)].filter((f) => f.name.endsWith(".cpuprofile"));
  if (files.length === 0) throw new Error(`no .cpuprofile written in ${profDir}`);
  // The sender's relay (first server) did the parsing and storing.
  const mine = files.find((f) => f.name.includes(`.${servers[0].pid}.`)) ?? files[0];
  const file = join(profDir, mine.name);
  const prof = JSON.parse(Deno.readTextFileSync(file)) as CpuProfile;
  const summary = summarise(prof, 15, /^#auth relay\/session\.ts/);
  const whole = summarise(prof, 8);
  // Worker threads of the same process write their own profiles (the SQLite writer).
  const workers = files.filter((f) =>
    f !== mine && f.name.includes(`.${servers[0].pid}.`) && f.name.includes("worker")
  ).map((f) => {
    const wf = join(profDir, f.name);
    return { file: wf, summary: summarise(JSON.parse(Deno.readTextFileSync(wf)), 8) };
  });
  const text = [render(summary), ...workers.map((w) => `worker ${w.file}:\n${render(w.summary)}`)]
    .join("\n");
  return { rate, step, file, summary, whole, workers, text };
}
