/**
 * CLI row: `chat-p2p id` cold start and `chat-p2p send` round trip (each a fresh `deno run`
 * process under a temp HOME, as a user runs them) against `deno run` of an empty script; history
 * append cost at 0 and 100k messages through client/store/message_log.ts; `chat-p2p sync` of a
 * 10k-message backlog against a bare client draining the same backlog.
 *
 * @module
 */
import { join } from "node:path";
import { type Envelope, newId, sealEnvelope } from "@chat-p2p/protocol";
import { connectAuth, field, type Identity, sealingIdentity } from "../lib/client.ts";
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
  /** `sync` of a backlog (absent in results from before this row existed). */
  syncBacklog?: SyncBacklogOut;
}

/** `chat-p2p sync` of a backlog of real sealed messages. */
export interface SyncBacklogOut {
  count: number;
  /** Whole `sync` process (start, connect, receive, store, ack, receipts, exit). */
  syncMs: number;
  /** `sync` of an empty mailbox right after: process start, connect and auth. */
  emptySyncMs: number;
  /** A bare WebSocket client draining the same number of envelopes (receive + ack + pong). */
  rawDrainMs: number;
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
  const syncBacklog = await syncBacklogBench(relayUrl, cli, 10_000);
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
    syncBacklog,
  };
}

/** Sends `envelopes` pipelined on one socket; resolves once every one is accepted. */
async function fill(relayUrl: string, from: Identity, envelopes: Envelope[]): Promise<void> {
  let accepted = 0;
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const { ws } = await connectAuth(relayUrl, from, (text) => {
    if (text.includes('"type":"accepted"') && ++accepted === envelopes.length) resolve();
    else if (text.includes('"type":"error"')) reject(new Error(`fill refused: ${text}`));
  });
  for (const envelope of envelopes) ws.send(JSON.stringify({ v: 1, type: "send", envelope }));
  try {
    await promise;
  } finally {
    ws.close();
  }
}

/** Drains `to`'s mailbox as a bare client: acks every 1000 ids, ping after the last ack. */
async function rawDrain(relayUrl: string, to: Identity, count: number): Promise<number> {
  const t0 = performance.now();
  let ids: string[] = [];
  let got = 0;
  const { promise, resolve } = Promise.withResolvers<void>();
  const { ws } = await connectAuth(relayUrl, to, (text, socket) => {
    if (text.includes('"type":"deliver"')) {
      ids.push(field(text, "id")!);
      got++;
      if (ids.length === 1000 || got === count) {
        socket.send(JSON.stringify({ v: 1, type: "ack", ids }));
        ids = [];
      }
      if (got === count) socket.send(JSON.stringify({ v: 1, type: "ping", nonce: "done" }));
    } else if (text.includes('"type":"pong"')) resolve();
  });
  await promise;
  const ms = performance.now() - t0;
  ws.close();
  return ms;
}

/**
 * `count` real messages (sealed by a stranger) wait for a fresh profile; `chat-p2p sync` stores,
 * acks and prints them all. References: the same sync on the then empty mailbox, and a bare client
 * draining `count` envelopes from the same relay.
 */
async function syncBacklogBench(
  relayUrl: string,
  cli: (args: string[]) => Promise<{ stdout: string; ms: number }>,
  count: number,
): Promise<SyncBacklogOut> {
  const reader = ["--profile", "backlog"];
  const key = (await cli([...reader, "init"])).stdout.trim().split("\n")[0];
  const sender = await sealingIdentity();
  const at = new Date().toISOString();
  const envelopes = Array.from(
    { length: count },
    (_, i) =>
      sealEnvelope({ v: 1, kind: "message", text: `backlog ${i}`, sent_at: at }, sender.kp!, key),
  );
  await fill(relayUrl, sender, envelopes);
  const sync = await cli([...reader, "sync", relayUrl, "--json"]);
  const lines = sync.stdout.split("\n").filter((l) => l.startsWith("{")).length;
  if (lines !== count) throw new Error(`sync printed ${lines} of ${count} messages`);
  const empty = await cli([...reader, "sync", relayUrl, "--json"]);
  if (empty.stdout.trim() !== "") throw new Error("the backlog was not acked");

  // The relay's own part: the same number of envelopes (new ids) drained by a bare client.
  const bare = await sealingIdentity();
  await fill(relayUrl, sender, envelopes.map((e) => ({ ...e, id: newId(), to: bare.key })));
  const rawDrainMs = await rawDrain(relayUrl, bare, count);
  return { count, syncMs: r2(sync.ms), emptySyncMs: r2(empty.ms), rawDrainMs: r2(rawDrainMs) };
}
