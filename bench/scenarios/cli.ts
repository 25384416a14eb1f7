/**
 * CLI row: `chat-p2p id` cold start and `chat-p2p send` round trip (each a fresh `deno run`
 * process under a temp HOME, as a user runs them) against `deno run` of an empty script; history
 * append cost at 0 and 100k messages through client/store/message_log.ts; `chat-p2p sync` of a
 * 10k-message backlog (protocol v2: a contact's ratchet messages in its pair mailbox) against a
 * bare client draining the same number of envelopes.
 *
 * @module
 */
import { join } from "node:path";
import {
  type EnvelopeV2,
  generateKeyPair,
  newId,
  newPeerSessions,
  padPayloadV2,
  pairEnvelope,
  pairMailbox,
  peerEncrypt,
  randomBytes,
  toBase64,
} from "@chat-p2p/protocol";
import { ProfileStore } from "@chat-p2p/client";
import {
  ackFrame,
  connect,
  field,
  type Identity,
  isDeliver,
  mailboxOf,
  pingFrame,
  signingIdentity,
} from "../lib/client.ts";
import { openChat } from "../../tests/chat_session.ts";
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
  /** A maximum paste into `chat` in a real terminal; absent without tmux. */
  paste?: PasteOut;
}

/** A 16,384-character paste into `chat-p2p chat` in tmux (medians over `runs`). */
export interface PasteOut {
  chars: number;
  /** From the paste to the draft's counter showing every character. */
  shownMs: number;
  /** From the paste to the message's ✓ (Enter pressed once shown; the relay accepted it). */
  sentMs: number;
  runs: number;
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
  // Bob knows us and has read from this relay once, as between two contacts who talk: sends go
  // to his pair mailbox (not his request inbox, as a first message to someone who never read).
  const me = (await cli(["id"])).stdout.split("\n")[0];
  await cli(["--profile", "bob", "add-contact", "me", me]);
  await cli(["--profile", "bob", "sync", relayUrl]);
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
  const syncBacklog = await syncBacklogBench(relayUrl, cli, home, 10_000);
  const paste = await pasteBench(relayUrl, 3);
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
    ...(paste ? { paste } : {}),
  };
}

/**
 * The issue-11 paste: 16,384 characters pasted into bob's chat in tmux (tests/chat_session.ts,
 * the same harness as the pty tests), timed to the screen and to the relay's acceptance.
 * Undefined when tmux is missing.
 */
export async function pasteBench(relayUrl: string, runs: number): Promise<PasteOut | undefined> {
  const tmux = await new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
    .output().then((o) => o.success, () => false);
  if (!tmux) return undefined;
  const text = "0123456789abcdef".repeat(1_024);
  const shown: number[] = [], sent: number[] = [];
  for (let i = 0; i < runs; i++) {
    await using s = await openChat(relayUrl);
    const started = performance.now();
    await s.pty.paste(text);
    await s.waitForRow(/16,384\/16,384$/);
    shown.push(performance.now() - started);
    await s.pty.press("Enter");
    await s.waitForRow(/\] you: 0123456789abcdef.*… {2}✓$/);
    sent.push(performance.now() - started);
    await s.pty.press("C-d");
  }
  return { chars: text.length, shownMs: r2(median(shown)), sentMs: r2(median(sent)), runs };
}

/** Sends `envelopes` pipelined on one socket; resolves once every one is accepted. */
async function fill(relayUrl: string, envelopes: EnvelopeV2[]): Promise<void> {
  let accepted = 0;
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  // A v2 sender opens nothing: the identity only names the socket.
  const { ws } = await connect(relayUrl, await signingIdentity(), (text) => {
    if (text.includes('"type":"accepted"') && ++accepted === envelopes.length) resolve();
    else if (text.includes('"type":"error"')) reject(new Error(`fill refused: ${text}`));
  });
  for (const envelope of envelopes) ws.send(JSON.stringify({ v: 2, type: "send", envelope }));
  try {
    await promise;
  } finally {
    ws.close();
  }
}

/** Opens `reader`'s pair mailbox (registering it) and resolves at its `synced`. */
async function register(relayUrl: string, reader: Identity): Promise<void> {
  const synced = Promise.withResolvers<void>();
  const { ws } = await connect(relayUrl, reader, (text) => {
    if (text.includes('"type":"synced"')) synced.resolve();
  }, { read: true });
  await synced.promise;
  ws.close();
}

/**
 * Drains `reader`'s pair mailbox as a bare client: open, acks every 1000 ids, ping after the
 * last ack; returns ms from opening the socket to the pong.
 */
async function rawDrain(relayUrl: string, reader: Identity, count: number): Promise<number> {
  const t0 = performance.now();
  const socket = { version: 2 as const, mailbox: mailboxOf(reader) };
  let ids: string[] = [];
  let got = 0;
  const { promise, resolve } = Promise.withResolvers<void>();
  const { ws } = await connect(relayUrl, reader, (text, ws) => {
    if (isDeliver(text)) {
      ids.push(field(text, "id")!);
      got++;
      if (ids.length === 1000 || got === count) {
        ws.send(ackFrame(socket, ids));
        ids = [];
      }
      if (got === count) ws.send(pingFrame(socket, "done"));
    } else if (text.includes('"type":"pong"')) resolve();
  }, { read: true });
  await promise;
  const ms = performance.now() - t0;
  ws.close();
  return ms;
}

/**
 * `count` real messages from a contact wait in a fresh profile's pair mailbox (registered by one
 * `sync` before); `chat-p2p sync` decrypts, stores, acks and prints them all, and sends their
 * receipts. References: the same sync on the then empty mailboxes, and a bare client draining
 * `count` envelopes from the same relay.
 */
async function syncBacklogBench(
  relayUrl: string,
  cli: (args: string[]) => Promise<{ stdout: string; ms: number }>,
  home: string,
  count: number,
): Promise<SyncBacklogOut> {
  const reader = ["--profile", "backlog"];
  const key = (await cli([...reader, "init"])).stdout.trim().split("\n")[0];
  const sender = generateKeyPair();
  await cli([...reader, "add-contact", "sender", toBase64(sender.publicKey)]);
  await cli([...reader, "sync", relayUrl]); // its mailboxes exist at the relay now
  const me = await new ProfileStore({ home, profile: "backlog" }).loadIdentity();
  // The contact's side, in memory: one ratchet session, `count` messages on it.
  const box = pairMailbox(sender, me.publicKey, "send", 0);
  let sessions = newPeerSessions(sender.publicKey, me.publicKey);
  const at = new Date().toISOString();
  const envelopes = Array.from({ length: count }, (_, i) => {
    const padded = padPayloadV2({
      v: 2,
      kind: "message",
      id: newId(),
      text: `backlog ${i}`,
      sent_at: at,
    });
    const r = peerEncrypt(sessions, padded, sender);
    sessions = r.state;
    return pairEnvelope(box, r.message);
  });
  if (toBase64(me.publicKey) !== key) throw new Error("the backlog profile has another key");
  await fill(relayUrl, envelopes);
  const sync = await cli([...reader, "sync", relayUrl, "--json"]);
  const lines = sync.stdout.split("\n").filter((l) => l.startsWith("{")).length;
  if (lines !== count) throw new Error(`sync printed ${lines} of ${count} messages`);
  const empty = await cli([...reader, "sync", relayUrl, "--json"]);
  if (empty.stdout.trim() !== "") throw new Error("the backlog was not acked");

  // The relay's own part: the same number of envelopes (same sizes) drained by a bare client.
  const bare = await signingIdentity();
  await register(relayUrl, bare);
  const to = mailboxOf(bare);
  const body = toBase64(randomBytes(atob(envelopes[0].body).length));
  await fill(relayUrl, envelopes.map(() => ({ v: 2, id: newId(), to, body })));
  const rawDrainMs = await rawDrain(relayUrl, bare, count);
  return { count, syncMs: r2(sync.ms), emptySyncMs: r2(empty.ms), rawDrainMs: r2(rawDrainMs) };
}
