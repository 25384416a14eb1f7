/**
 * Load-generator process. The orchestrator (bench/main.ts) runs several of these and drives them
 * with one JSON command per line on stdin; each answers one JSON line on stdout.
 *
 * Commands:
 * - `pairs {protocol, senderUrl, receiverUrl, pairs, gen, transport, secret?}`: sender/receiver
 *   sockets, one real sealed ~300-byte envelope per pair (the template every frame of a step is
 *   cut from). `protocol` "chat": authenticated chat-p2p sockets; "centrifugo": Centrifugo
 *   connections (JWT signed with `secret`), each receiver subscribed to its own channel, each
 *   sender publishing the same envelope JSON into its receiver's channel. `transport` "nodelay"
 *   (bench/lib/ws.ts, the default) or "native" (Deno's WebSocket, Nagle on).
 * - `prepare {rate, durationMs, step}`: pre-serialises every send frame of the next step.
 * - `run {graceMs}`: open-loop constant rate; latency = deliver received - the frame's intended
 *   send time (start + k / rate: a generator that falls behind its schedule counts against the
 *   target, as a real sender's wait would); reports loss, errors, its own CPU, how far it lagged
 *   its schedule, and when in the step the slowest 1% were sent.
 * - `idle {url, count, concurrency, protocol?, secret?, gen?}`: opens authenticated idle sockets
 *   (Centrifugo: connected and subscribed); handshake+auth times.
 * - `drain {url, count}`: queues `count` envelopes for an offline recipient, then times one sync.
 * - `close`: closes every socket. `exit`: exits.
 *
 * @module
 */
import process from "node:process";
import { sealEnvelope, serializeEnvelope } from "@chat-p2p/protocol";
import {
  connectAuth,
  field,
  type Identity,
  opener,
  openNative,
  sealingIdentity,
  signingIdentity,
  type Transport,
} from "./lib/client.ts";
import { centrifugoSession, connectionToken } from "./lib/centrifugo_client.ts";
import { Hist } from "./lib/hist.ts";
import type { BenchSocket } from "./lib/ws.ts";

const ENVELOPE_TARGET_BYTES = 300;
const PLACEHOLDER = "IDPLACEHOLDERX"; // same length as the ids used (g1s12k00001234)

// deno-lint-ignore no-explicit-any
type Cmd = Record<string, any>;

/** Envelope JSON around its id: `pre + id + post`. */
interface Template {
  pre: string;
  post: string;
}

/** Finds the text length that makes the envelope about 300 bytes; returns the template. */
function template(sender: Identity, to: string, textLen: number): Template {
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
async function sizedTemplate(to: string): Promise<{ sender: Identity } & Template> {
  const sender = await sealingIdentity();
  if (textLen < 0) {
    textLen = 0;
    for (let n = 0; n < 400; n++) {
      const t = template(sender, to, n);
      textLen = n;
      if (t.pre.length + PLACEHOLDER.length + t.post.length >= ENVELOPE_TARGET_BYTES) break;
    }
  }
  return { sender, ...template(sender, to, textLen) };
}

/** A chat-p2p send frame around an envelope template. */
function sendFrame(t: Template): Template {
  return { pre: `{"v":1,"type":"send","envelope":${t.pre}`, post: `${t.post}}` };
}

class Receiver {
  ws!: BenchSocket;
  #acks: string[] = [];
  #timer?: ReturnType<typeof setTimeout>;
  /** chat-p2p receivers ack like a client; Centrifugo has nothing to ack. */
  constructor(readonly acks: boolean) {}
  ack(id: string): void {
    if (!this.acks) return;
    this.#acks.push(id);
    if (this.#acks.length >= 200) this.flush();
    else if (this.#timer === undefined) this.#timer = setTimeout(() => this.flush(), 10);
  }
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#acks.length === 0) return;
    const ids = this.#acks;
    this.#acks = [];
    try {
      this.ws.send(JSON.stringify({ v: 1, type: "ack", ids }));
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
  const deliver = protocol === "centrifugo"
    ? s.startsWith('{"push":{')
    : s.startsWith('{"v":1,"type":"deliver"') || s.startsWith('{"v":1,"type":"send"');
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

async function pairs(c: Cmd) {
  const t0 = performance.now();
  gen = c.gen;
  protocol = c.protocol ?? "chat";
  const open = opener((c.transport ?? "nodelay") as Transport);
  const n: number = c.pairs;
  const recvIds = await Promise.all(Array.from({ length: n }, () => signingIdentity()));
  const made: Array<{ sender: Identity } & Template> = [];
  for (let i = 0; i < n; i++) made.push(await sizedTemplate(recvIds[i].key));
  templates = made.map((m) => protocol === "chat" ? sendFrame(m) : { pre: m.pre, post: m.post });
  channels = recvIds.map((_, i) => `r${gen}_${i}`);
  receivers = made.map(() => new Receiver(protocol === "chat"));
  senders = new Array(n);
  const connect = async (i: number, side: "r" | "s") => {
    const url = side === "r" ? c.receiverUrl : c.senderUrl;
    const r = receivers[i];
    const onFrame = side === "r" ? (s: string) => onReceiverFrame(r, s) : onSenderFrame;
    let ws: BenchSocket;
    if (protocol === "chat") {
      ws = (await connectAuth(url, side === "r" ? recvIds[i] : made[i].sender, onFrame, open)).ws;
    } else {
      ws = await open(url);
      const token = await connectionToken(c.secret, `${side}${gen}_${i}`);
      await centrifugoSession(ws, token, side === "r" ? channels[i] : undefined, onFrame);
    }
    if (side === "r") r.ws = ws;
    else senders[i] = ws;
  };
  // Receivers first: nothing is sent before every receiver is listening.
  for (const side of ["r", "s"] as const) {
    for (let i = 0; i < n; i += 16) {
      await Promise.all(
        Array.from({ length: Math.min(16, n - i) }, (_, j) => connect(i + j, side)),
      );
    }
  }
  const sample = frameOf(0, "g1s12k00001234");
  return {
    setupMs: Math.round(performance.now() - t0),
    frameBytes: sample.length,
    envelopeBytes: made[0].pre.length + 14 + made[0].post.length,
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
    await new Promise((r) => setTimeout(r, 5));
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
  /** Centrifugo: connect with a token and subscribe to a channel of its own (like our auth). */
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
        const a = centrifugo ? await centrifugoIdle(k) : await connectAuth(c.url, ids[k], () => {});
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
  const made = await sizedTemplate(recipient.key);
  const { pre, post } = sendFrame(made), sender = made.sender;
  const tag = `d${crypto.getRandomValues(new Uint32Array(1))[0].toString(36)}k`;
  const frames = Array.from({ length: count }, (_, k) => {
    const f = pre + tag + String(k).padStart(14 - tag.length, "0") + post;
    f.charCodeAt(f.length - 1);
    return f;
  });
  let acc = 0;
  let errs = 0;
  const codes: Record<string, number> = {};
  const s = await connectAuth(c.url, sender, (t) => {
    if (t.includes('"type":"accepted"')) acc++;
    else if (t.includes('"type":"error"')) {
      errs++;
      const code = field(t, "code") ?? "?";
      codes[code] = (codes[code] ?? 0) + 1;
    }
  });
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
  const flush = (ws: BenchSocket) => {
    if (acks.length) ws.send(JSON.stringify({ v: 1, type: "ack", ids: acks }));
    acks = [];
  };
  const r = await connectAuth(c.url, recipient, (t, ws) => {
    if (t.startsWith('{"v":1,"type":"deliver"')) {
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
      ws.send(JSON.stringify({ v: 1, type: "ping", nonce: "drained" }));
    } else if (t.includes('"type":"pong"')) tPong = performance.now();
  });
  const ws = r.ws;
  const tAuth = performance.now() - r.authMs; // when the auth frame went out
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
    const v = await connectAuth(c.url, recipient, (t) => {
      if (t.includes('"type":"synced"')) synced = Number(/"count":(\d+)/.exec(t)?.[1] ?? -1);
    });
    await waitFor(() => synced >= 0, 30_000);
    v.ws.close();
    left = synced;
    if (left === 0) break;
    await new Promise((res) => setTimeout(res, 50));
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
