/**
 * Load-generator process. The orchestrator (bench/main.ts) runs several of these and drives them
 * with one JSON command per line on stdin; each answers one JSON line on stdout. It speaks the
 * protocol the relay's first frame names (bench/lib/client.ts), so the same generators drive a
 * relay of either version.
 *
 * Commands:
 * - `pairs {senderUrl, receiverUrl, pairs, gen}`: receiver sockets (v1: authenticated; v2: each
 *   opened its pair mailbox) and sender sockets (v1: authenticated; v2: nothing opened), one
 *   envelope per pair (the template every frame of a step is cut from): v1 a real sealed
 *   envelope of ~300 bytes (`BENCH_V1_ENVELOPE_BYTES`), v2 one with a body of the smallest
 *   padded size (a 1-character message's), 609 random bytes.
 * - `prepare {rate, durationMs, step}`: pre-serialises every send frame of the next step.
 * - `run {graceMs}`: open-loop constant rate; latency = deliver received - frame sent (same
 *   process, same clock); reports loss, errors, its own CPU and how far it lagged its schedule.
 * - `idle {url, count, concurrency}`: opens idle reader sockets; handshake+auth (open) times.
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
import {
  ackFrame,
  connect,
  type Connected,
  field,
  type Identity,
  isDeliver,
  mailboxOf,
  pingFrame,
  sealingIdentity,
  signingIdentity,
} from "./lib/client.ts";
import { Hist } from "./lib/hist.ts";

const ENVELOPE_TARGET_BYTES = Number(Deno.env.get("BENCH_V1_ENVELOPE_BYTES") ?? 300);
const PLACEHOLDER = "IDPLACEHOLDERX"; // same length as the ids used (g1s12k00001234)

// deno-lint-ignore no-explicit-any
type Cmd = Record<string, any>;

type Template = { pre: string; post: string };

/** A v1 send frame of a real sealed envelope, split around its id. */
function template(sender: Identity, to: string, textLen: number): Template {
  const env = sealEnvelope(
    { v: 1, kind: "message", text: "x".repeat(textLen), sent_at: new Date().toISOString() },
    sender.kp!,
    to,
    PLACEHOLDER,
  );
  const raw = serializeEnvelope(env);
  const [a, b] = raw.split(PLACEHOLDER);
  return { pre: `{"v":1,"type":"send","envelope":${a}`, post: `${b}}` };
}

let textLen = -1;
/** v1: a sender (which must seal and authenticate) and its ~300-byte template to `to`. */
async function sizedTemplate(to: string): Promise<{ sender: Identity } & Template> {
  const sender = await sealingIdentity();
  if (textLen < 0) {
    textLen = 0;
    for (let n = 0; n < 4000; n++) {
      const t = template(sender, to, n);
      const envLen = t.pre.length + PLACEHOLDER.length + t.post.length - 33; // minus frame wrapper
      textLen = n;
      if (envLen >= ENVELOPE_TARGET_BYTES) break;
    }
  }
  return { sender, ...template(sender, to, textLen) };
}

/** v2: a send frame to `mailbox` with a body of the smallest padded size, split around its id. */
function templateV2(mailbox: string): Template {
  const body = toBase64(randomBytes(512 + PAIR_BODY_OVERHEAD));
  const raw = serializeEnvelopeV2({ v: 2, id: PLACEHOLDER, to: mailbox, body });
  const [a, b] = raw.split(PLACEHOLDER);
  return { pre: `{"v":2,"type":"send","envelope":${a}`, post: `${b}}` };
}

/**
 * A sender and its template for a reader connected as `reader` (`id` its identity): v1 seals to
 * the reader's key and authenticates as the sealer; v2 writes to the reader's mailbox from a
 * socket that opens nothing.
 */
async function senderFor(
  reader: Connected,
  id: Identity,
): Promise<{ sender: Identity; read: boolean } & Template> {
  if (reader.version === 1) return { ...(await sizedTemplate(id.key)), read: true };
  return { sender: id, read: false, ...templateV2(reader.mailbox ?? mailboxOf(id)) };
}

class Receiver {
  conn!: Connected;
  #acks: string[] = [];
  #timer?: ReturnType<typeof setTimeout>;
  ack(id: string): void {
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
      this.conn.ws.send(ackFrame(this.conn, ids));
    } catch { /* closed */ }
  }
}

interface Step {
  tag: string;
  rate: number;
  n: number;
  frames: string[];
  sentAt: Float64Array;
  seen: Uint8Array;
  delivered: number;
  dup: number;
  hist: Hist;
}

let gen = 0;
let senders: WebSocket[] = [];
let receivers: Receiver[] = [];
let templates: Template[] = [];
let cur: Step | undefined;
let accepted = 0;
let errors = 0;
let stale = 0;
const errorCodes: Record<string, number> = {};
const idleSockets: WebSocket[] = [];

function onSenderFrame(s: string): void {
  if (s.includes('"type":"accepted"')) accepted++;
  else if (s.includes('"type":"error"')) {
    errors++;
    const code = field(s, "code") ?? "?";
    errorCodes[code] = (errorCodes[code] ?? 0) + 1;
  }
}

function onReceiverFrame(r: Receiver, s: string): void {
  // The bare forwarder hands the send frame on as it came.
  if (!(isDeliver(s) || s.startsWith('"type":"send"', 7))) {
    if (s.includes('"type":"error"')) {
      errors++;
      const code = field(s, "code") ?? "?";
      errorCodes[code] = (errorCodes[code] ?? 0) + 1;
    }
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
  if (st.seen[k]) {
    st.dup++;
    return;
  }
  st.seen[k] = 1;
  st.delivered++;
  st.hist.add((now - st.sentAt[k]) * 1000);
}

async function pairs(c: Cmd) {
  const t0 = performance.now();
  gen = c.gen;
  const n: number = c.pairs;
  const recvIds = await Promise.all(Array.from({ length: n }, () => signingIdentity()));
  // Readers first: their version says what the senders speak, and a v2 mailbox takes sends
  // only once it was opened.
  receivers = [];
  for (let i = 0; i < n; i += 16) {
    await Promise.all(
      recvIds.slice(i, i + 16).map((id) => {
        const r = new Receiver();
        receivers.push(r);
        return connect(c.receiverUrl, id, (s) => onReceiverFrame(r, s), { read: true }).then(
          (conn) => r.conn = conn,
        );
      }),
    );
  }
  const made = [];
  for (let i = 0; i < n; i++) made.push(await senderFor(receivers[i].conn, recvIds[i]));
  templates = made.map(({ pre, post }) => ({ pre, post }));
  senders = [];
  for (let i = 0; i < n; i += 16) {
    const batch = await Promise.all(
      made.slice(i, i + 16).map((m) =>
        connect(c.senderUrl, m.sender, onSenderFrame, { read: m.read })
      ),
    );
    senders.push(...batch.map((a) => a.ws));
  }
  const sample = templates[0].pre + "g1s12k00001234" + templates[0].post;
  return {
    setupMs: Math.round(performance.now() - t0),
    version: receivers[0].conn.version,
    frameBytes: sample.length,
    envelopeBytes: sample.length - 33,
    textLen,
  };
}

function prepare(c: Cmd) {
  const rate: number = c.rate;
  const n = Math.max(1, Math.round(rate * c.durationMs / 1000));
  const tag = `g${gen}s${c.step}k`;
  const frames = new Array<string>(n);
  const P = senders.length;
  for (let k = 0; k < n; k++) {
    const t = templates[k % P];
    const f = t.pre + tag + String(k).padStart(14 - tag.length, "0") + t.post;
    f.charCodeAt(f.length - 1); // flatten the rope now, not inside the measured window
    frames[k] = f;
  }
  cur = {
    tag,
    rate,
    n,
    frames,
    sentAt: new Float64Array(n),
    seen: new Uint8Array(n),
    delivered: 0,
    dup: 0,
    hist: new Hist(),
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

async function runStep(c: Cmd) {
  const st = cur!;
  const P = senders.length;
  const acc0 = accepted;
  const err0 = errors;
  for (const k of Object.keys(errorCodes)) delete errorCodes[k];
  const cpu0 = process.cpuUsage();
  const interval = 1000 / st.rate;
  const t0 = performance.now() + 1;
  let k = 0;
  let maxLag = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(st.n, Math.floor((now - t0) / interval) + 1);
      if (due > k) maxLag = Math.max(maxLag, now - (t0 + k * interval));
      while (k < due) {
        st.sentAt[k] = performance.now();
        senders[k % P].send(st.frames[k]);
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
  const ids = await Promise.all(Array.from({ length: count }, () => signingIdentity()));
  const worker = async () => {
    while (next < count) {
      const id = ids[next++];
      try {
        const a = await connect(c.url, id, () => {}, { read: true });
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
  const flush = (ws: WebSocket) => {
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
  for (const ws of [...senders, ...receivers.map((r) => r.conn?.ws), ...idleSockets]) {
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
