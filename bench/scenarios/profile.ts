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
  return { rate, step, file, summary, whole, text: render(summary) };
}
