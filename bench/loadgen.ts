/**
 * Load-generator process. The orchestrator (bench/main.ts) runs several of these and drives them
 * with one JSON command per line on stdin; each answers one JSON line on stdout. It speaks the
 * protocol the relay's first frame names (bench/lib/client.ts), so the same generators drive a
 * relay of either version, and Centrifugo's for the reference rows.
 *
 * Commands:
 * - `pairs {protocol, senderUrl, receiverUrl, pairs, gen, transport, secret?}`: receiver and
 *   sender sockets, one envelope per pair (the template every frame of a step is cut from).
 *   `protocol` "chat": receivers are readers (v1: authenticated; v2: each opened its pair
 *   mailbox), senders v1 authenticated / v2 open nothing; the envelope is v1 a real sealed one of
 *   ~300 bytes (`BENCH_V1_ENVELOPE_BYTES`), v2 one with a body of the smallest padded size (a
 *   1-character message's), 609 random bytes. "centrifugo": Centrifugo connections (JWT signed
 *   with `secret`), each receiver subscribed to its own channel, each sender publishing the same
 *   v2 envelope JSON into its receiver's channel. `transport` "nodelay" (bench/lib/ws.ts, the
 *   default) or "native" (Deno's WebSocket, Nagle on).
 * - `prepare {rate, durationMs, step}`: pre-serialises every send frame of the next step.
 * - `run {graceMs}`: open-loop constant rate; latency = deliver received - the frame's intended
 *   send time (start + k / rate: a generator that falls behind its schedule counts against the
 *   target, as a real sender's wait would); reports loss, errors, its own CPU, how far it lagged
 *   its schedule, and when in the step the slowest 1% were sent.
 * - `idle {url, count, concurrency, protocol?, secret?, gen?}`: opens idle reader sockets
 *   (Centrifugo: connected and subscribed); handshake+auth (open) times.
 * - `drain {url, count}`: queues `count` envelopes for an offline reader, then times one sync.
 * - `close`: closes every socket. `exit`: exits.
 *
 * @module
 */
import process from "node:process";
import {
  PAIR_BODY_OVERHEAD,
  randomBytes,
  sealEnvelope,
  serializeEnvelope,
  serializeEnvelopeV2,
  toBase64,
} from "@chat-p2p/protocol";
import { delay } from "@chat-p2p/protocol/async";
import {
  ackFrame,
  connect,
  type Connected,
  field,
  type Identity,
  isDeliver,
  mailboxOf,
  opener,
  openNative,
  pingFrame,
  sealingIdentity,
  signingIdentity,
  type Transport,
} from "./lib/client.ts";
import { centrifugoSession, connectionToken } from "./lib/centrifugo_client.ts";
import { Hist } from "./lib/hist.ts";
import type { BenchSocket } from "./lib/ws.ts";

const ENVELOPE_TARGET_BYTES = Number(Deno.env.get("BENCH_V1_ENVELOPE_BYTES") ?? 300);
const PLACEHOLDER = "IDPLACEHOLDERX"; // same length as the ids used (g1s12k00001234)

// deno-lint-ignore no-explicit-any
type Cmd = Record<string, any>;

/** Text around an envelope id: `pre + id + post`. */
interface Template {
  pre: string;
  post: string;
}

/** A v1 envelope: a real sealed one, split around its id. */
function envelopeV1(sender: Identity, to: string, textLen: number): Template {
  const env = sealEnvelope(
    { v: 1, kind: "message", text: "x".repeat(textLen), sent_at: new Date().toISOString() },
    sender.kp!,
    to,
    PLACEHOLDER,
  );
  const [pre, post] = serializeEnvelope(env).split(PLACEHOLDER);
  return { pre, post };
}

let textLen = -1;
/** v1: a sender (which must seal and authenticate) and its ~300-byte envelope to `to`. */
async function sizedEnvelope(to: string): Promise<{ sender: Identity } & Template> {
  const sender = await sealingIdentity();
  if (textLen < 0) {
    textLen = 0;
    for (let n = 0; n < 4000; n++) {
      const t = envelopeV1(sender, to, n);
      textLen = n;
      if (t.pre.length + PLACEHOLDER.length + t.post.length >= ENVELOPE_TARGET_BYTES) break;
    }
  }
  return { sender, ...envelopeV1(sender, to, textLen) };
}

/** v2: an envelope to `mailbox` with a body of the smallest padded size, split around its id. */
function envelopeV2(mailbox: string): Template {
  const body = toBase64(randomBytes(512 + PAIR_BODY_OVERHEAD));
  const [pre, post] = serializeEnvelopeV2({ v: 2, id: PLACEHOLDER, to: mailbox, body })
    .split(PLACEHOLDER);
  return { pre, post };
}

/** A chat-p2p send frame of protocol `v` around an envelope template. */
function sendFrame(t: Template, v: 1 | 2): Template {
  return { pre: `{"v":${v},"type":"send","envelope":${t.pre}`, post: `${t.post}}` };
}

/**
 * A sender and its send frame for a reader connected as `reader` (`id` its identity): v1 seals
 * to the reader's key and authenticates as the sealer; v2 writes to the reader's mailbox from a
 * socket that opens nothing.
 */
async function senderFor(
  reader: Connected,
  id: Identity,
): Promise<{ sender: Identity; read: boolean } & Template> {
  if (reader.version === 1) {
    const { sender, ...env } = await sizedEnvelope(id.key);
    return { sender, read: true, ...sendFrame(env, 1) };
  }
  return { sender: id, read: false, ...sendFrame(envelopeV2(reader.mailbox ?? mailboxOf(id)), 2) };
}

class Receiver {
  ws!: BenchSocket;
  /** chat-p2p: the reader's socket, acked like a client's; Centrifugo has nothing to ack. */
  conn?: Connected;
  #acks: string[] = [];
  #timer?: ReturnType<typeof setTimeout>;
  ack(id: string): void {
    if (!this.conn) return;
    this.#acks.push(id);
    if (this.#acks.length >= 200) this.flush();
    else if (this.#timer === undefined) this.#timer = setTimeout(() => this.flush(), 10);
  }
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#acks.length === 0 || !this.conn) return;
    const ids = this.#acks;
    this.#acks = [];
    try {
      this.ws.send(ackFrame(this.conn, ids));
    } catch { /* closed */ }
  }
}

interface Step {
  tag: string;
  rate: number;
  n: number;
  frames: string[];
  /** Intended send time of frame k (ms, performance.now clock). */
  due: Float64Array;
  /** Latency of frame k in ms (0 = not delivered). */
  lat: Float32Array;
  delivered: number;
  dup: number;
  hist: Hist;
  lag: Hist;
}

type Protocol = "chat" | "centrifugo";
let protocol: Protocol = "chat";
let gen = 0;
let senders: BenchSocket[] = [];
let receivers: Receiver[] = [];
/** Per pair: the frame around the id (chat: a send frame; Centrifugo: the envelope only). */
let templates: Template[] = [];
/** Centrifugo: the receiver's channel of each pair. */
let channels: string[] = [];
let cur: Step | undefined;
let accepted = 0;
let errors = 0;
let stale = 0;
const errorCodes: Record<string, number> = {};
const idleSockets: BenchSocket[] = [];

function countError(s: string): void {
  errors++;
  const code = field(s, "code") ?? /"code":(\d+)/.exec(s)?.[1] ?? "?";
  errorCodes[code] = (errorCodes[code] ?? 0) + 1;
}

function onSenderFrame(s: string): void {
  if (protocol === "centrifugo") {
    if (s.includes('"publish":{')) accepted++;
    else if (s.includes('"error":{')) countError(s);
  } else if (s.includes('"type":"accepted"')) accepted++;
  else if (s.includes('"type":"error"')) countError(s);
}

function onReceiverFrame(r: Receiver, s: string): void {
  // The bare forwarder hands the send frame on as it came.
  const deliver = protocol === "centrifugo"
    ? s.startsWith('{"push":{')
    : isDeliver(s) || s.startsWith('"type":"send"', 7);
  if (!deliver) {
    if (s.includes('"type":"error"') || s.includes('"error":{')) countError(s);
    return;
  }
  const now = performance.now();
  const id = field(s, "id");
  if (!id) return;
  r.ack(id);
  const st = cur;
  if (!st || !id.startsWith(st.tag)) {
    stale++;
    return;
  }
  const k = parseInt(id.slice(st.tag.length), 10);
  if (st.lat[k] > 0) {
    st.dup++;
    return;
  }
  const ms = Math.max(0.001, now - st.due[k]);
  st.lat[k] = ms;
  st.delivered++;
  st.hist.add(ms * 1000);
}

/** Runs `f` over `0..n-1`, 16 at a time. */
async function sixteenAtATime(n: number, f: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i += 16) {
    await Promise.all(Array.from({ length: Math.min(16, n - i) }, (_, j) => f(i + j)));
  }
}

async function pairs(c: Cmd) {
  const t0 = performance.now();
  gen = c.gen;
  protocol = c.protocol ?? "chat";
  const open = opener((c.transport ?? "nodelay") as Transport);
  const n: number = c.pairs;
  const recvIds = await Promise.all(Array.from({ length: n }, () => signingIdentity()));
  receivers = recvIds.map(() => new Receiver());
  senders = new Array(n);
  let envelopeBytes: number;
  if (protocol === "chat") {
    // Readers first: their version says what the senders speak, and a v2 mailbox takes sends
    // only once it was opened.
    await sixteenAtATime(n, async (i) => {
      const r = receivers[i];
      r.conn = await connect(c.receiverUrl, recvIds[i], (s) => onReceiverFrame(r, s), {
        read: true,
        open,
      });
      r.ws = r.conn.ws;
    });
    const made: Array<Awaited<ReturnType<typeof senderFor>>> = [];
    for (let i = 0; i < n; i++) made.push(await senderFor(receivers[i].conn!, recvIds[i]));
    templates = made.map(({ pre, post }) => ({ pre, post }));
    await sixteenAtATime(n, async (i) => {
      const m = made[i];
      senders[i] = (await connect(c.senderUrl, m.sender, onSenderFrame, { read: m.read, open }))
        .ws;
    });
    envelopeBytes = frameOf(0, "g1s12k00001234").length - 33; // minus the frame wrapper
  } else {
    templates = recvIds.map((id) => envelopeV2(mailboxOf(id)));
    channels = recvIds.map((_, i) => `r${gen}_${i}`);
    const session = async (i: number, side: "r" | "s") => {
      const ws = await open(side === "r" ? c.receiverUrl : c.senderUrl);
      const token = await connectionToken(c.secret, `${side}${gen}_${i}`);
      const r = receivers[i];
      if (side === "r") {
        r.ws = ws;
        await centrifugoSession(ws, token, channels[i], (s) => onReceiverFrame(r, s));
      } else {
        senders[i] = ws;
        await centrifugoSession(ws, token, undefined, onSenderFrame);
      }
    };
    // Receivers first: nothing is sent before every receiver is listening.
    await sixteenAtATime(n, (i) => session(i, "r"));
    await sixteenAtATime(n, (i) => session(i, "s"));
    envelopeBytes = templates[0].pre.length + 14 + templates[0].post.length;
  }
  return {
    setupMs: Math.round(performance.now() - t0),
    ...(receivers[0]?.conn ? { version: receivers[0].conn.version } : {}),
    frameBytes: frameOf(0, "g1s12k00001234").length,
    envelopeBytes,
    textLen,
  };
}

/** Frame number `k` of a step (pair k % pairs), carrying envelope id `id`. */
function frameOf(k: number, id: string): string {
  const p = k % templates.length;
  const t = templates[p];
  return protocol === "chat"
    ? t.pre + id + t.post
    : `{"id":${k + 3},"publish":{"channel":"${channels[p]}","data":${t.pre}${id}${t.post}}}`;
}

function prepare(c: Cmd) {
  const rate: number = c.rate;
  const n = Math.max(1, Math.round(rate * c.durationMs / 1000));
  const tag = `g${gen}s${c.step}k`;
  const frames = new Array<string>(n);
  for (let k = 0; k < n; k++) {
    const f = frameOf(k, tag + String(k).padStart(14 - tag.length, "0"));
    f.charCodeAt(f.length - 1); // flatten the rope now, not inside the measured window
    frames[k] = f;
  }
  cur = {
    tag,
    rate,
    n,
    frames,
    due: new Float64Array(n),
    lat: new Float32Array(n),
    delivered: 0,
    dup: 0,
    hist: new Hist(),
    lag: new Hist(),
  };
  return { n };
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) return false;
    await delay(5);
  }
  return true;
}

/**
 * When in the step the slowest 1% of messages were due: counts per 500 ms slot, the busiest
 * slots first (periodic stalls, such as a timer in the server, show up as regular slots).
 */
function slowSlots(st: Step, t0: number): Array<[atMs: number, count: number]> {
  const done: number[] = [];
  for (let k = 0; k < st.n; k++) if (st.lat[k] > 0) done.push(st.lat[k]);
  if (done.length < 100) return [];
  done.sort((a, b) => a - b);
  const cut = done[Math.floor(done.length * 0.99)];
  const slots = new Map<number, number>();
  for (let k = 0; k < st.n; k++) {
    if (st.lat[k] >= cut) {
      const slot = Math.floor((st.due[k] - t0) / 500) * 500;
      slots.set(slot, (slots.get(slot) ?? 0) + 1);
    }
  }
  return [...slots].sort((a, b) => b[1] - a[1]).slice(0, 6);
}

async function runStep(c: Cmd) {
  const st = cur!;
  const acc0 = accepted;
  const err0 = errors;
  for (const k of Object.keys(errorCodes)) delete errorCodes[k];
  const cpu0 = process.cpuUsage();
  const interval = 1000 / st.rate;
  const t0 = performance.now() + 1;
  for (let k = 0; k < st.n; k++) st.due[k] = t0 + k * interval;
  let k = 0;
  let maxLag = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(st.n, Math.floor((now - t0) / interval) + 1);
      if (due > k) maxLag = Math.max(maxLag, now - st.due[k]);
      while (k < due) {
        st.lag.add(Math.max(1, (performance.now() - st.due[k]) * 1000));
        senders[k % senders.length].send(st.frames[k]);
        k++;
      }
      if (k >= st.n) resolve();
      else setTimeout(tick, 1);
    };
    setTimeout(tick, 0);
  });
  const tLast = performance.now();
  const cpuSend = process.cpuUsage(cpu0);
  await waitFor(() => st.delivered >= st.n, c.graceMs);
  const tEnd = performance.now();
  const cpuAll = process.cpuUsage(cpu0);
  for (const r of receivers) r.flush();
  st.frames = [];
  const sendMs = Math.max(1, tLast - t0);
  const lag = st.lag.summaryMs();
  return {
    offered: st.rate,
    sent: st.n,
    delivered: st.delivered,
    dup: st.dup,
    accepted: accepted - acc0,
    errors: errors - err0,
    errorCodes,
    stale,
    sendMs,
    achieved: st.n / (sendMs / 1000),
    lastDeliverMs: tEnd - t0,
    maxLagMs: maxLag,
    lagP50Ms: lag.p50,
    lagP99Ms: lag.p99,
    slowSlots: slowSlots(st, t0),
    cpuSendFrac: (cpuSend.user + cpuSend.system) / 1000 / sendMs,
    cpuSec: (cpuAll.user + cpuAll.system) / 1e6,
    wallMs: tEnd - t0,
    hist: st.hist.toJSON(),
  };
}

async function idle(c: Cmd) {
  const count: number = c.count;
  const hs = new Hist();
  const auth = new Hist();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const centrifugo = c.protocol === "centrifugo";
  const ids = centrifugo
    ? []
    : await Promise.all(Array.from({ length: count }, () => signingIdentity()));
  /** Centrifugo: connect with a token and subscribe to a channel of its own (like our open). */
  const centrifugoIdle = async (k: number) => {
    const t = performance.now();
    const ws = await openNative(c.url);
    const token = await connectionToken(c.secret, `idle${c.gen}_${k}`);
    const tAuth = performance.now();
    await centrifugoSession(ws, token, `idle${c.gen}_${k}`, () => {});
    const now = performance.now();
    return { ws, handshakeMs: now - t, authMs: now - tAuth };
  };
  const worker = async () => {
    while (next < count) {
      const k = next++;
      try {
        const a = centrifugo
          ? await centrifugoIdle(k)
          : await connect(c.url, ids[k], () => {}, { read: true });
        idleSockets.push(a.ws);
        hs.add(a.handshakeMs * 1000);
        auth.add(a.authMs * 1000);
      } catch (e) {
        failed++;
        firstError ??= (e as Error).message;
      }
    }
  };
  const t1 = performance.now();
  await Promise.all(Array.from({ length: c.concurrency }, worker));
  return {
    connected: count - failed,
    failed,
    firstError,
    keygenMs: t1 - t0,
    rampMs: performance.now() - t1,
    hs: hs.toJSON(),
    auth: auth.toJSON(),
  };
}

async function drain(c: Cmd) {
  const count: number = c.count;
  const recipient = await signingIdentity();
  // The reader's mailbox exists once opened (v2); a v1 connect is an authentication, harmless.
  const first = await connect(c.url, recipient, () => {}, { read: true });
  first.ws.close();
  const { sender, read, pre, post } = await senderFor(first, recipient);
  const tag = `d${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}k`;
  const frames = Array.from({ length: count }, (_, k) => {
    const f = pre + tag + String(k).padStart(14 - tag.length, "0") + post;
    f.charCodeAt(f.length - 1);
    return f;
  });
  let acc = 0;
  let errs = 0;
  const codes: Record<string, number> = {};
  const s = await connect(c.url, sender, (t) => {
    if (t.includes('"type":"accepted"')) acc++;
    else if (t.includes('"type":"error"')) {
      errs++;
      const code = field(t, "code") ?? "?";
      codes[code] = (codes[code] ?? 0) + 1;
    }
  }, { read });
  const tf = performance.now();
  for (const f of frames) s.ws.send(f);
  await waitFor(() => acc + errs >= count, 120_000);
  const fillMs = performance.now() - tf;
  s.ws.close();

  // One sync: deliveries are acked in batches of 500 as they arrive; a ping after the last ack.
  const times: number[] = [];
  const seen = new Set<string>();
  let acks: string[] = [];
  let tSynced = 0;
  let tPong = 0;
  let conn = first; // replaced by the drain's socket before its first delivery is handled
  const flush = (ws: BenchSocket) => {
    if (acks.length) ws.send(ackFrame(conn, acks));
    acks = [];
  };
  conn = await connect(c.url, recipient, (t, ws) => {
    if (isDeliver(t)) {
      const id = field(t, "id")!;
      if (!seen.has(id)) {
        seen.add(id);
        times.push(performance.now());
      }
      acks.push(id);
      if (acks.length >= 500) flush(ws);
    } else if (t.includes('"type":"synced"')) {
      tSynced = performance.now();
      flush(ws);
      ws.send(pingFrame(conn, "drained"));
    } else if (t.includes('"type":"pong"')) tPong = performance.now();
  }, { read: true });
  const ws = conn.ws;
  const tAuth = performance.now() - conn.authMs; // when the auth or open frame went out
  await waitFor(() => tPong > 0, 60_000);
  ws.close();
  const lat = new Hist();
  for (const t of times) lat.add((t - tAuth) * 1000);

  // Verify: a fresh sync must find the mailbox empty (Redis acks finish asynchronously: retry).
  let attempts = 0;
  let left = -1;
  const tv = performance.now();
  while (attempts < 30) {
    attempts++;
    let synced = -1;
    const v = await connect(c.url, recipient, (t) => {
      if (t.includes('"type":"synced"')) synced = Number(/"count":(\d+)/.exec(t)?.[1] ?? -1);
    }, { read: true });
    await waitFor(() => synced >= 0, 30_000);
    v.ws.close();
    left = synced;
    if (left === 0) break;
    await delay(50);
  }
  return {
    count,
    accepted: acc,
    errors: errs,
    errorCodes: codes,
    fillMs,
    delivered: seen.size,
    lastDeliverMs: times.length ? times[times.length - 1] - tAuth : NaN,
    syncedMs: tSynced - tAuth,
    ackedMs: tPong - tAuth,
    verifiedEmpty: left === 0,
    verifyAttempts: attempts,
    verifyMs: performance.now() - tv,
    lat: lat.toJSON(),
  };
}

function closeAll() {
  for (const ws of [...senders, ...receivers.map((r) => r.ws), ...idleSockets]) {
    try {
      ws?.close();
    } catch { /* closed */ }
  }
  senders = [];
  receivers = [];
  idleSockets.length = 0;
  return {};
}

const enc = new TextEncoder();
function reply(o: unknown) {
  Deno.stdout.writeSync(enc.encode(JSON.stringify(o) + "\n"));
}

let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buf += chunk;
  let i: number;
  while ((i = buf.indexOf("\n")) >= 0) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (!line.trim()) continue;
    const c = JSON.parse(line) as Cmd;
    try {
      let out: unknown;
      switch (c.cmd) {
        case "pairs":
          out = await pairs(c);
          break;
        case "prepare":
          out = prepare(c);
          break;
        case "run":
          out = await runStep(c);
          break;
        case "idle":
          out = await idle(c);
          break;
        case "drain":
          out = await drain(c);
          break;
        case "close":
          out = closeAll();
          break;
        case "exit":
          closeAll();
          reply({ id: c.id, ok: true });
          Deno.exit(0);
          break;
        default:
          throw new Error(`unknown command ${c.cmd}`);
      }
      reply({ id: c.id, ok: true, ...(out as object) });
    } catch (e) {
      reply({ id: c.id, ok: false, error: (e as Error).message });
    }
  }
}
Deno.exit(0);
