/**
 * `chat-p2p chat <relay-url> <contact>`: an interactive conversation. Recent history first, then
 * live messages both ways, with delivery marks (✓ accepted by the relay, ✓✓ delivered to the
 * peer). With piped stdin it is scriptable: every input line is sent, incoming messages are
 * printed as plain lines, and EOF or `/quit` ends once every sent message is accepted.
 *
 * The connection is re-established when it drops (backoff with jitter); messages typed meanwhile
 * are written to history first ("sending"), shown as queued, and sent once it is back. Messages
 * not yet accepted are sent again under the same envelope id, so the recipient stores them once.
 * Messages a previous run left in the "sending" state (it was killed while offline) are sent
 * again when the chat starts.
 *
 * @module
 */
import * as readline from "node:readline";
import process from "node:process";
import { type KeyPair, sealEnvelope } from "@chat-p2p/protocol";
import {
  type Command,
  type Context,
  debug,
  paint,
  parseCommandArgs,
  parseTimeout,
  warn,
} from "../context.ts";
import { CliError } from "../errors.ts";
import { formatShortTime, peerLabel, preview, sanitizeForTerminal } from "../ui/format.ts";
import { STATE_MARKS } from "./history.ts";
import {
  connectRelay,
  contactNames,
  DEFAULT_TIMEOUT_MS,
  describeCloseCode,
  handleEnvelope,
  type HistoryEntry,
  openStore,
  type Peer,
  type ProfileStore,
  type QueuedMessage,
  queuedOutgoing,
  ReceiptBatch,
  RelayError,
  type RelayEvent,
  type RelaySession,
} from "@chat-p2p/client";
import { readLines } from "../io.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import { connectOptions, relayFailure, relayUrlArg } from "../relay_errors.ts";
import { checkText } from "./send.ts";
import { messageLine } from "./sync.ts";

const USAGE = `Usage: chat-p2p chat <relay-url> <contact> [--timeout <seconds>]

Talks with <contact> through the relay: shows the last ${20} messages, then live messages both
ways. Your messages get ✓ when the relay has stored them and ✓✓ when your contact's client has.
Messages from other senders are stored too (see \`chat-p2p history\`).

Commands while chatting:
  /history   the whole conversation
  /help      this list
  /quit      leave (Ctrl-D works too)
  //text     send a message that starts with "/"

With stdin not a terminal (a pipe or a file), every input line is sent, incoming messages are
printed on stdout as plain lines, and EOF or /quit ends the chat once every message is accepted.

When the connection drops, the chat reconnects by itself. What you type meanwhile is saved in
your history and shown as queued, then sent when the relay is back. Messages an earlier chat or
send saved but never got to the relay are sent when the chat starts.

Options:
  --timeout <seconds>  how long to wait for the relay (default ${DEFAULT_TIMEOUT_MS / 1000});
                       with piped stdin, also how long to keep trying to reconnect
  -h, --help           show this help

Environment:
  ${PASSPHRASE_ENV}      the passphrase of an identity made with \`init --passphrase\`
                       (else it is asked on the terminal)`;

const RECENT = 20;
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 15000, 30000];

/** The reconnect delay before `attempt` (0-based): exponential steps, ±25 % jitter. */
export function reconnectDelay(attempt: number, random: () => number = Math.random): number {
  const base = RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)];
  // Jitter spreads out the clients of a relay that restarts, so they do not all come back at once.
  return Math.round(base * (0.75 + 0.5 * random()));
}

/** Where the chat prints: incoming messages, and status lines (marks, notices). */
interface ChatUi {
  /** A conversation line (an incoming message, or history). */
  message(line: string): void;
  /** A status line: delivery marks, notices, errors. */
  status(line: string): void;
  /** Called when the user sent `typed`, to show it as the message line `line`. */
  echo?(line: string, typed: string): void;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}

/** One chat: the relay session (re-made after drops), the outbox and the peer's history. */
class Chat {
  readonly #ctx: Context;
  readonly #store: ProfileStore;
  readonly #me: KeyPair;
  readonly #peer: Peer;
  readonly #relayUrl: string;
  readonly #timeoutMs: number;
  readonly #ui: ChatUi;
  readonly #interactive: boolean;
  readonly #outbox = new Map<string, QueuedMessage>();
  /** Ids with a send outstanding, and the session it is outstanding on. */
  readonly #inFlight = new Map<string, RelaySession>();
  readonly #receipts = new ReceiptBatch();
  readonly #background = new Set<Promise<unknown>>();
  readonly #quit = new AbortController();
  #session: RelaySession | undefined;
  #synced = false;
  #failed = 0;
  #changed: Array<() => void> = [];

  constructor(
    ctx: Context,
    store: ProfileStore,
    me: KeyPair,
    peer: Peer,
    relayUrl: string,
    timeoutMs: number,
    ui: ChatUi,
    interactive: boolean,
  ) {
    this.#ctx = ctx;
    this.#store = store;
    this.#me = me;
    this.#peer = peer;
    this.#relayUrl = relayUrl;
    this.#timeoutMs = timeoutMs;
    this.#ui = ui;
    this.#interactive = interactive;
  }

  get failed(): number {
    return this.#failed;
  }

  get unsent(): number {
    return this.#outbox.size;
  }

  #notify(): void {
    for (const f of this.#changed.splice(0)) f();
  }

  /** Waits until `cond()` holds (re-checked on every state change) or `ms` pass. */
  async #waitFor(cond: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#changed = this.#changed.filter((f) => f !== done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#changed.push(done);
      });
    }
    return true;
  }

  #track(p: Promise<unknown>): void {
    this.#background.add(p);
    p.finally(() => this.#background.delete(p)).catch(() => {});
  }

  /** First connection: failures are the command's failure. */
  async connect(): Promise<void> {
    try {
      this.#session = await connectRelay(
        this.#relayUrl,
        this.#me,
        connectOptions(this.#ctx, this.#timeoutMs),
      );
    } catch (e) {
      throw relayFailure(e, "the connection");
    }
  }

  /**
   * Handles pushed events until the socket closes; reconnects after drops until `/quit`.
   * Rejects when reconnecting gives up (piped mode: after the timeout).
   */
  async pump(): Promise<void> {
    while (true) {
      const session = this.#session;
      if (!session) return;
      for await (const ev of session) {
        try {
          this.#onEvent(session, ev);
        } catch (e) {
          this.#ui.status(paint(this.#ctx, "red", `error: ${e instanceof Error ? e.message : e}`));
        }
      }
      this.#synced = false;
      this.#notify();
      if (this.#quit.signal.aborted) return;
      const info = await session.closed;
      // Without a close frame (the relay died, the network dropped) the browser API reports 0;
      // RFC 6455 calls that 1006, "closed abnormally".
      const code = info.code === 0 ? 1006 : info.code;
      this.#ui.status(
        paint(
          this.#ctx,
          "yellow",
          `connection to relay lost (code ${code}, ${describeCloseCode(code)}${
            info.reason ? `: ${info.reason}` : ""
          }); reconnecting…`,
        ),
      );
      this.#session = undefined;
      await this.#reconnect();
      if (!this.#session) return;
      this.#ui.status(
        paint(
          this.#ctx,
          "green",
          this.#outbox.size > 0
            ? `reconnected; sending ${this.#outbox.size} queued message${
              this.#outbox.size === 1 ? "" : "s"
            }`
            : "reconnected",
        ),
      );
      this.sendOutbox();
    }
  }

  async #reconnect(): Promise<void> {
    const started = Date.now();
    for (let attempt = 0;; attempt++) {
      if (this.#quit.signal.aborted) return;
      await sleep(reconnectDelay(attempt), this.#quit.signal);
      if (this.#quit.signal.aborted) return;
      try {
        const session = await connectRelay(
          this.#relayUrl,
          this.#me,
          connectOptions(this.#ctx, this.#timeoutMs),
        );
        if (this.#quit.signal.aborted) {
          await session.close(); // the chat ended while connecting
          return;
        }
        this.#session = session;
        return;
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        debug(this.#ctx, `reconnect failed: ${msg}`);
        if (e instanceof RelayError && e.code === "auth_failed") {
          throw relayFailure(e, "the connection");
        }
        if (!this.#interactive && Date.now() - started > this.#timeoutMs) {
          throw new CliError(
            `lost the connection to relay ${this.#relayUrl} and could not reconnect: ${msg}`,
          );
        }
      }
    }
  }

  #onEvent(session: RelaySession, ev: RelayEvent): void {
    const ctx = this.#ctx;
    switch (ev.type) {
      case "synced":
        this.#synced = true;
        this.#flushReceipts(session);
        this.#notify();
        return;
      case "error":
        this.#ui.status(paint(ctx, "red", `relay error: ${ev.code}: ${ev.message}`));
        return;
      case "invalid":
        this.#ui.status(paint(ctx, "red", `warning: ${ev.message}`));
        if (ev.id) session.ack([ev.id]);
        return;
      case "deliver":
        break;
    }
    const names = contactNames(this.#store.loadContacts());
    const o = handleEnvelope(this.#store, this.#me, names, ev.envelope, ctx.io.now());
    session.ack([ev.envelope.id]);
    if (o.kind === "rejected") {
      this.#ui.status(
        paint(
          ctx,
          "red",
          `rejected message ${o.id} claiming to be from ${o.fingerprint}: ${o.reason}`,
        ),
      );
    } else if (o.kind === "receipt") {
      if (o.from !== this.#peer.key) return;
      for (const d of o.delivered) {
        this.#ui.status(
          paint(ctx, "green", `  ✓✓ delivered: ${sanitizeForTerminal(preview(d.text))}`),
        );
      }
    } else {
      this.#receipts.add(o.message.from, o.message.id);
      if (this.#synced) this.#flushReceipts(session);
      if (o.duplicate) return;
      if (o.message.from === this.#peer.key) {
        this.#ui.message(messageLine(ctx, o.message));
      } else {
        const who = peerLabel(o.message.contact, o.message.fingerprint);
        const hint = o.message.contact ?? o.message.from;
        this.#ui.status(
          paint(ctx, "yellow", `  new message from ${who} (see: chat-p2p history ${hint})`),
        );
      }
    }
  }

  #flushReceipts(session: RelaySession): void {
    if (this.#receipts.isEmpty || !session.isOpen) return;
    this.#track(
      this.#receipts.flush(session, this.#me, () => this.#ctx.io.now(), this.#timeoutMs).then(
        (failures) => {
          for (const f of failures) {
            debug(
              this.#ctx,
              `receipt not sent: ${f.error instanceof Error ? f.error.message : f.error}`,
            );
          }
        },
      ),
    );
  }

  /** Seals, records and sends one message (`typed`: the input line it came from). */
  sendText(text: string, typed: string = text): void {
    const now = this.#ctx.io.now().toISOString();
    const envelope = sealEnvelope(
      { v: 1, kind: "message", text, sent_at: now },
      this.#me,
      this.#peer.key,
    );
    this.#store.history(this.#peer.key).appendMessage({
      id: envelope.id,
      dir: "out",
      text,
      sent_at: now,
      at: now,
    });
    this.#outbox.set(envelope.id, { envelope, text });
    this.#ui.echo?.(
      `${paint(this.#ctx, "dim", `[${formatShortTime(now, this.#ctx.io.now())}]`)} ${
        paint(this.#ctx, "cyan", "you")
      }: ${sanitizeForTerminal(text)}`,
      typed,
    );
    if (!this.#session?.isOpen) {
      this.#ui.status(
        paint(
          this.#ctx,
          "yellow",
          `  … queued (not connected): ${sanitizeForTerminal(preview(text))}`,
        ),
      );
    }
    this.#trySend(envelope.id);
  }

  /**
   * Takes over the messages to this peer that history holds as "sending" (an earlier run
   * stopped before the relay answered); they are sent first, under their own ids.
   */
  resumeQueued(): void {
    const queued = queuedOutgoing(this.#store, this.#me, this.#peer.key);
    for (const q of queued) this.#outbox.set(q.envelope.id, q);
    if (queued.length > 0) {
      this.#ui.status(
        paint(
          this.#ctx,
          "yellow",
          `sending ${queued.length} queued message${
            queued.length === 1 ? "" : "s"
          } from an earlier session`,
        ),
      );
    }
  }

  /** Sends everything in the outbox that is not already on its way (oldest first). */
  sendOutbox(): void {
    for (const id of this.#outbox.keys()) this.#trySend(id);
  }

  #trySend(id: string): void {
    const item = this.#outbox.get(id);
    const session = this.#session;
    if (!item || !session || !session.isOpen) return; // resent after reconnecting
    if (this.#inFlight.get(id) === session) return; // already on its way on this socket
    this.#inFlight.set(id, session);
    const log = this.#store.history(this.#peer.key);
    const ctx = this.#ctx;
    const settled = () => {
      if (this.#inFlight.get(id) === session) this.#inFlight.delete(id);
    };
    this.#track(
      session.send(item.envelope, { timeoutMs: this.#timeoutMs }).then(
        () => {
          settled();
          this.#outbox.delete(id);
          if (log.appendState(id, "accepted", ctx.io.now().toISOString())) {
            this.#ui.status(
              paint(ctx, "dim", `  ✓ accepted: ${sanitizeForTerminal(preview(item.text))}`),
            );
          }
          this.#notify();
        },
        (e: unknown) => {
          settled();
          if (e instanceof RelayError && e.code === "connection_closed") return; // resent later
          this.#outbox.delete(id);
          this.#failed++;
          log.appendState(id, "failed", ctx.io.now().toISOString());
          this.#ui.status(
            paint(
              ctx,
              "red",
              `  ✗ not sent: ${sanitizeForTerminal(preview(item.text))}: ${
                relayFailure(e, "the message").message
              }`,
            ),
          );
          this.#notify();
        },
      ),
    );
  }

  /** Prints the whole conversation (or its last `limit` messages) in chat form. */
  showHistory(limit?: number): void {
    const entries = this.#store.history(this.#peer.key).entries();
    const shown = limit === undefined ? entries : entries.slice(-limit);
    for (const e of shown) this.#ui.message(this.#historyLine(e));
  }

  #historyLine(e: HistoryEntry): string {
    const ctx = this.#ctx;
    const time = paint(ctx, "dim", `[${formatShortTime(e.sent_at, ctx.io.now())}]`);
    const who = e.dir === "out"
      ? paint(ctx, "cyan", "you")
      : paint(ctx, "magenta", peerLabel(this.#peer.name, this.#peer.fingerprint));
    const mark = STATE_MARKS[e.state];
    return `${time} ${who}: ${sanitizeForTerminal(e.text)}${
      mark ? `  ${paint(ctx, "dim", mark)}` : ""
    }`;
  }

  /**
   * Ends the chat: waits (up to the timeout) until every message is accepted and the pending
   * messages were received, sends the last receipts, closes the socket.
   */
  async finish(): Promise<void> {
    await this.#waitFor(
      () => this.#outbox.size === 0 && (this.#synced || !this.#session),
      this.#timeoutMs,
    );
    if (this.#session) this.#flushReceipts(this.#session);
    await Promise.allSettled([...this.#background]);
    this.#quit.abort();
    await this.#session?.close();
  }

  /** Stops reconnecting and closes the socket now (after a failure). */
  async abort(): Promise<void> {
    this.#quit.abort();
    await this.#session?.close();
    await Promise.allSettled([...this.#background]);
  }
}

type LineResult = "continue" | "quit";

function handleLine(chat: Chat, ui: ChatUi, ctx: Context, line: string): LineResult {
  const text = line.replace(/\s+$/, "");
  if (text.trim() === "") return "continue";
  if (text.startsWith("/") && !text.startsWith("//")) {
    const cmd = text.trim().split(/\s+/)[0];
    switch (cmd) {
      case "/quit":
      case "/exit":
        return "quit";
      case "/history":
        chat.showHistory();
        return "continue";
      case "/help":
        for (
          const l of [
            "/history  the whole conversation",
            "/quit     leave",
            "//text    send text starting with /",
          ]
        ) {
          ui.status(l);
        }
        return "continue";
      default:
        ui.status(paint(ctx, "yellow", `unknown command ${cmd}; try /help`));
        return "continue";
    }
  }
  const body = text.startsWith("//") ? text.slice(1) : text;
  try {
    chat.sendText(checkText(body, USAGE), line);
  } catch (e) {
    ui.status(paint(ctx, "red", `not sent: ${e instanceof Error ? e.message : e}`));
  }
  return "continue";
}

/** Piped mode: lines from stdin until EOF or /quit. */
async function pipedInput(chat: Chat, ui: ChatUi, ctx: Context): Promise<void> {
  for await (const line of readLines(ctx.io.stdin.readable())) {
    if (handleLine(chat, ui, ctx, line) === "quit") return;
  }
}

/** Terminal mode: node:readline, with incoming lines printed above the line being typed. */
function terminalUi(ctx: Context): { ui: ChatUi; input: (chat: Chat) => Promise<void> } {
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt: paint(ctx, "bold", "> "),
  });
  const printAbove = (line: string) => {
    readline.clearLine(process.stdout, 0);
    readline.cursorTo(process.stdout, 0);
    process.stdout.write(line + "\n");
    rl.prompt(true);
  };
  const ui: ChatUi = {
    message: printAbove,
    status: printAbove,
    echo: (line, typed) => {
      // Replace the just-typed "> text" (one or more rows) with the formatted message.
      const cols = process.stdout.columns || 80;
      const rows = Math.max(1, Math.ceil((2 + typed.length) / cols));
      readline.moveCursor(process.stdout, 0, -rows);
      readline.clearScreenDown(process.stdout);
      printAbove(line);
    },
  };
  const input = (chat: Chat) =>
    new Promise<void>((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        rl.close();
        resolve();
      };
      rl.on("line", (line: string) => {
        if (handleLine(chat, ui, ctx, line) === "quit") finish();
        else rl.prompt();
      });
      rl.on("SIGINT", finish);
      rl.on("close", finish);
      rl.prompt();
    });
  return { ui, input };
}

/** The `chat` command. */
export const chatCommand: Command = {
  name: "chat",
  summary: "chat live with a contact",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(this, args, {
      timeout: { type: "string" },
    }, ["relay-url", "contact"]);
    const relayUrl = relayUrlArg(positionals[0], USAGE);
    const timeoutMs = parseTimeout(this, values.timeout, DEFAULT_TIMEOUT_MS);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    store.loadPublicKey(); // "no identity" before "unknown contact"
    const peer = store.resolvePeer(positionals[1]);
    const me = await unlockIdentity(ctx, store);
    const interactive = ctx.io.stdin.isTerminal && ctx.io.stdout.isTerminal;

    let ui: ChatUi;
    let input: (chat: Chat) => Promise<void>;
    if (interactive) {
      ({ ui, input } = terminalUi(ctx));
    } else {
      ui = {
        message: (line) => ctx.io.stdout.write(line + "\n"),
        status: (line) => ctx.io.stderr.write(line + "\n"),
      };
      input = (chat) => pipedInput(chat, ui, ctx);
    }

    const chat = new Chat(ctx, store, me, peer, relayUrl, timeoutMs, ui, interactive);
    if (interactive) {
      const who = peerLabel(peer.name, peer.fingerprint);
      ui.status(
        paint(
          ctx,
          "dim",
          `chat with ${who} (${peer.fingerprint}) via ${relayUrl}; /help for commands`,
        ),
      );
      chat.showHistory(RECENT);
    }
    chat.resumeQueued();
    await chat.connect();
    chat.sendOutbox();
    const pump = chat.pump();
    let pumpError: unknown;
    const pumpDone = pump.then(() => "pump" as const, (e) => {
      pumpError = e;
      return "pump" as const;
    });
    const which = await Promise.race([input(chat).then(() => "input" as const), pumpDone]);
    if (which === "pump" && pumpError !== undefined) {
      await chat.abort();
      throw pumpError;
    }
    await chat.finish();
    await pumpDone;
    if (pumpError !== undefined) throw pumpError;
    if (chat.unsent > 0) {
      throw new CliError(`${chat.unsent} message(s) were not accepted by the relay before leaving`);
    }
    if (chat.failed > 0) throw new CliError(`${chat.failed} message(s) could not be sent`);
  },
};
