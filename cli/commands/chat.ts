/**
 * `chat-p2p chat <relay-url> <contact>`: an interactive conversation. Recent history first, then
 * live messages both ways, with delivery marks (✓ accepted by the relay, ✓✓ delivered to the
 * peer). With piped stdin it is scriptable: every input line is sent, incoming messages are
 * printed as plain lines, and EOF or `/quit` ends once every sent message is accepted.
 *
 * The client library's {@linkcode ChatClient} does the work: it reconnects with backoff when the
 * connection drops (or is not there at the start), keeps what is typed meanwhile in history as
 * "sending" and sends it when the relay is back, under the same ids; messages an earlier run left
 * queued are sent first. This file reads lines and prints the client's events.
 *
 * @module
 */
import * as readline from "node:readline";
import process from "node:process";
import { deadline } from "@chat-p2p/protocol/async";
import {
  ChatClient,
  type ChatEvent,
  DEFAULT_TIMEOUT_MS,
  describeCloseCode,
  openStore,
  type Peer,
  RelayError,
} from "@chat-p2p/client";
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
import { readLines } from "../io.ts";
import { peerLabel } from "../ui/format.ts";
import { chatLine, checkText, messageLine, rejectedLine, shortText } from "../ui/messages.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import { clientOptions, relayFailure, relayUrlArg } from "../relay_errors.ts";

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

The chat opens even when the relay cannot be reached, and connects when it can; when the
connection drops, it reconnects by itself. What you type meanwhile is saved in your history and
shown as queued, then sent when the relay is back. Messages an earlier chat or send saved but
never got to the relay are sent when the chat starts. A message the relay refuses for now
("unavailable", a full mailbox) stays queued and is sent again; one it can never accept is
marked failed (\`chat-p2p resend\` queues it again). Leaving with messages still queued says
which; the next send or chat sends them.

Options:
  --timeout <seconds>  how long to wait for the relay (default ${DEFAULT_TIMEOUT_MS / 1000});
                       with piped stdin, also how long to keep trying to (re)connect
  -h, --help           show this help

Environment:
  ${PASSPHRASE_ENV}      the passphrase of an identity made with \`init --passphrase\`
                       (else it is asked on the terminal)`;

const RECENT = 20;

/** Where the chat prints: incoming messages, and status lines (marks, notices). */
interface ChatUi {
  /** A conversation line (an incoming message, or history). */
  message(line: string): void;
  /** A status line: delivery marks, notices, errors. */
  status(line: string): void;
  /** Called when the user sent `typed`, to show it as the message line `line`. */
  echo?(line: string, typed: string): void;
}

/** One conversation on the screen: prints the client's events about this peer, sends lines. */
class Chat {
  readonly #ctx: Context;
  readonly #client: ChatClient;
  readonly #peer: Peer;
  readonly #relayUrl: string;
  readonly #timeoutMs: number;
  readonly #ui: ChatUi;
  readonly #interactive: boolean;
  /** Resolves with the error when the connection gives up for good. */
  readonly fatal = Promise.withResolvers<CliError>();
  #connectedOnce = false;
  #dropped = false;
  #warnedOffline = false;
  #synced = false;
  #failed = 0;
  /** Why the last attempt to connect failed, while not connected. */
  #offlineBecause: RelayError | undefined;

  constructor(
    ctx: Context,
    client: ChatClient,
    peer: Peer,
    relayUrl: string,
    timeoutMs: number,
    ui: ChatUi,
    interactive: boolean,
  ) {
    this.#ctx = ctx;
    this.#client = client;
    this.#peer = peer;
    this.#relayUrl = relayUrl;
    this.#timeoutMs = timeoutMs;
    this.#ui = ui;
    this.#interactive = interactive;
    client.on("*", (e) => {
      try {
        this.#onEvent(e);
      } catch (err) {
        ui.status(paint(ctx, "red", `error: ${err instanceof Error ? err.message : err}`));
      }
    });
  }

  #say(style: Parameters<typeof paint>[1], line: string): void {
    this.#ui.status(paint(this.#ctx, style, line));
  }

  #mine(peer: string): boolean {
    return peer === this.#peer.key;
  }

  #queuedNote(prefix: string): string {
    const n = this.#client.queued(this.#peer.key).length;
    return n > 0 ? `${prefix}; sending ${n} queued message${n === 1 ? "" : "s"}` : prefix;
  }

  #onEvent(e: ChatEvent): void {
    const ctx = this.#ctx;
    switch (e.type) {
      case "connection":
        return this.#onConnection(e);
      case "synced":
        this.#synced = true;
        return;
      case "message": {
        if (e.duplicate) return;
        const m = e.message;
        if (this.#mine(m.from)) return this.#ui.message(messageLine(ctx, m));
        const who = peerLabel(m.contact, m.fingerprint);
        return this.#say(
          "yellow",
          `  new message from ${who} (see: chat-p2p history ${m.contact ?? m.from})`,
        );
      }
      case "delivered":
        if (!this.#mine(e.from)) return;
        for (const m of e.messages) this.#say("green", `  ✓✓ delivered: ${shortText(m.text)}`);
        return;
      case "accepted":
        if (this.#mine(e.message.peer)) {
          this.#say("dim", `  ✓ accepted: ${shortText(e.message.text)}`);
        }
        return;
      case "retry": {
        if (!this.#mine(e.message.peer)) return;
        const why = relayFailure(e.error, "the message").message;
        if (e.error.code === "rate_limited") return debug(ctx, why); // paced, not a problem
        return this.#say(
          "yellow",
          `  … not accepted yet: ${shortText(e.message.text)}: ${why}; trying again in ${
            Math.ceil(e.delayMs / 1000)
          } s`,
        );
      }
      case "failed":
        if (!this.#mine(e.message.peer)) return;
        this.#failed++;
        return this.#say(
          "red",
          `  ✗ not sent: ${shortText(e.message.text)}: ${
            relayFailure(e.error, "the message").message
          }`,
        );
      case "rejected":
        return this.#say("red", rejectedLine(e));
      case "relay_error":
        return this.#say("red", `relay error: ${e.code}: ${e.message}`);
      case "error":
        if (e.during === "store") {
          return this.#say("red", `error: a received message is not stored: ${e.error.message}`);
        }
        return debug(ctx, `${e.during}: ${e.error.message}`);
    }
  }

  #onConnection(e: Extract<ChatEvent, { type: "connection" }>): void {
    if (e.state !== "connected") this.#synced = false;
    this.#offlineBecause = e.state === "connected" ? undefined : e.error ?? this.#offlineBecause;
    switch (e.state) {
      case "connected":
        if (this.#dropped) this.#say("green", this.#queuedNote("reconnected"));
        else if (this.#warnedOffline) {
          this.#say("green", this.#queuedNote(`connected to relay ${this.#relayUrl}`));
        }
        this.#connectedOnce = true;
        return;
      case "disconnected":
        if (e.close) {
          this.#dropped = true;
          // Without a close frame (the relay died, the network dropped) the browser API reports
          // 0; RFC 6455 calls that 1006, "closed abnormally".
          const code = e.close.code === 0 ? 1006 : e.close.code;
          const reason = e.close.reason ? `: ${e.close.reason}` : "";
          return this.#say(
            "yellow",
            `connection to relay lost (code ${code}, ${describeCloseCode(code)}${reason}); ` +
              "reconnecting…",
          );
        }
        if (!this.#connectedOnce && !this.#warnedOffline && e.error) {
          this.#warnedOffline = true;
          return this.#say(
            "yellow",
            `${e.error.message}; what you type is queued and sent once the relay is reachable`,
          );
        }
        return debug(this.#ctx, `reconnect failed: ${e.error?.message ?? "?"}`);
      case "closed":
        if (!e.error) return;
        this.fatal.resolve(
          this.#connectedOnce && !(e.error.code === "auth_failed")
            ? new CliError(
              `lost the connection to relay ${this.#relayUrl} and could not reconnect: ${e.error.message}`,
            )
            : relayFailure(e.error, "the connection"),
        );
        return;
      case "connecting":
        return;
    }
  }

  /** Records and queues one message (`typed`: the input line it came from). */
  sendText(text: string, typed: string = text): void {
    const sentAt = this.#ctx.io.now().toISOString();
    try {
      this.#client.send(this.#peer.key, text);
    } catch (e) {
      if (!(e instanceof RelayError)) throw e;
      return this.#say("red", `not sent: ${relayFailure(e, "the message").message}`);
    }
    this.#ui.echo?.(chatLine(this.#ctx, { dir: "out", text, sent_at: sentAt }, this.#peer), typed);
    if (this.#client.state !== "connected") {
      this.#say("yellow", `  … queued (not connected): ${shortText(text)}`);
    }
  }

  /** Queues what an earlier run left as "sending" to this peer; it goes out first. */
  resumeQueued(): void {
    const n = this.#client.resume(this.#peer.key).length;
    if (n > 0) {
      this.#say(
        "yellow",
        `sending ${n} queued message${n === 1 ? "" : "s"} from an earlier session`,
      );
    }
  }

  /** Prints the whole conversation (or its last `limit` messages) in chat form. */
  showHistory(limit?: number): void {
    const entries = this.#client.store.history(this.#peer.key).entries();
    const shown = limit === undefined ? entries : entries.slice(-limit);
    for (const e of shown) this.#ui.message(chatLine(this.#ctx, e, this.#peer));
  }

  /** Waits until `cond()` holds (checked after every event) or `ms` pass. */
  async #waitFor(cond: () => boolean, ms: number): Promise<void> {
    if (cond()) return;
    const { promise, resolve } = Promise.withResolvers<void>();
    const off = this.#client.on("*", () => cond() && resolve());
    await deadline(promise, ms).catch(() => {});
    off();
  }

  /**
   * Ends the chat: waits (up to the timeout) until every message to this peer is accepted and the
   * pending messages were received, closes the client, and says what stays queued. `fatal`: the
   * connection gave up.
   */
  async finish(fatal?: CliError): Promise<void> {
    const client = this.#client;
    // Offline at the terminal, nothing will change by waiting: say what stays queued at once.
    if (!fatal && (client.state === "connected" || !this.#interactive)) {
      await this.#waitFor(
        () => client.queued(this.#peer.key).length === 0 && this.#synced,
        this.#timeoutMs,
      );
    }
    await client.close();
    const unsent = client.queued(this.#peer.key);
    for (const m of unsent) this.#say("yellow", `  … still queued: ${shortText(m.text)}`);
    const n = unsent.length;
    const stays = n === 0 ? "" : `${n === 1 ? "1 message stays" : `${n} messages stay`} queued ` +
      `and ${n === 1 ? "is" : "are"} sent by the next \`send\` or \`chat\` to ` +
      peerLabel(this.#peer.name, this.#peer.fingerprint);
    if (fatal) throw new CliError(stays ? `${fatal.message}; ${stays}` : fatal.message);
    if (stays) {
      const offline = this.#offlineBecause;
      throw new CliError(
        `${
          offline
            ? relayFailure(offline, "the connection").message
            : "not every message was accepted before leaving"
        }; ${stays}`,
      );
    }
    if (this.#failed > 0) {
      throw new CliError(
        `${this.#failed} message(s) could not be sent (\`chat-p2p resend\` queues them again)`,
      );
    }
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
function terminalUi(
  ctx: Context,
): { ui: ChatUi; input: (chat: Chat) => Promise<void>; stop: () => void } {
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: true,
    prompt: paint(ctx, "bold", "> "),
  });
  let closed = false;
  rl.on("close", () => (closed = true));
  const printAbove = (line: string) => {
    // After /quit the prompt is gone: what is still said (what stays queued) is plain lines.
    if (closed) return void process.stdout.write(line + "\n");
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
  return { ui, input, stop: () => rl.close() };
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
    // The passphrase first: contacts are encrypted at rest with it.
    const me = await unlockIdentity(ctx, store);
    const peer = store.resolvePeer(positionals[1]);
    const interactive = ctx.io.stdin.isTerminal && ctx.io.stdout.isTerminal;

    let ui: ChatUi;
    let input: (chat: Chat) => Promise<void>;
    let stopInput = () => {};
    if (interactive) {
      ({ ui, input, stop: stopInput } = terminalUi(ctx));
    } else {
      ui = {
        message: (line) => ctx.io.stdout.write(line + "\n"),
        status: (line) => ctx.io.stderr.write(line + "\n"),
      };
      input = (chat) => pipedInput(chat, ui, ctx);
    }

    // At a terminal the chat keeps trying for as long as it is open; a script gets the timeout.
    const client = new ChatClient(
      store,
      me,
      clientOptions(ctx, timeoutMs, interactive ? {} : { giveUpAfterMs: timeoutMs }),
    );
    const chat = new Chat(ctx, client, peer, relayUrl, timeoutMs, ui, interactive);
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
    client.connect(relayUrl).catch(() => {}); // failures arrive as connection events
    const fatal = await Promise.race([
      input(chat).then(() => undefined),
      chat.fatal.promise,
    ]);
    if (fatal) stopInput();
    await chat.finish(fatal);
  },
};
