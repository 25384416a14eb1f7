/**
 * `chat-p2p chat [<relay-url>] <contact>`: a conversation. On a terminal it opens the chat
 * screen (cli/ui/chat_screen.ts): history, then live messages above the draft, delivery marks
 * changing on each message's own line (… ✓ ✓✓ ✗), the connection on the status row. With stdin
 * or stdout not a terminal it is scriptable: every input line is sent, incoming messages are
 * printed as plain lines, each event a line of its own, and EOF or `/quit` ends it once every
 * sent message is accepted.
 *
 * The client library's {@linkcode ChatClient} does the work: it reconnects with backoff when the
 * connection drops (or is not there at the start), keeps what is typed meanwhile in history as
 * "sending" and sends it when the relay is back, under the same ids; messages an earlier run left
 * queued are sent first. This file turns its events into lines and marks.
 *
 * @module
 */
import { deadline } from "@chat-p2p/protocol/async";
import {
  ChatClient,
  type ChatEvent,
  checkMessage,
  chronological,
  DEFAULT_TIMEOUT_MS,
  describeCloseCode,
  type FoldedState,
  type HistoryEntry,
  MAX_MESSAGE_BYTES,
  MAX_MESSAGE_CHARACTERS,
  openStore,
  type Peer,
  ReadMarks,
  RelayError,
} from "@chat-p2p/client";
import {
  type Command,
  type Context,
  debug,
  paint,
  parseCommandArgs,
  parseTimeout,
  type Style,
  warn,
} from "../context.ts";
import { CliError, EXIT, ExitStatus, UsageError } from "../errors.ts";
import { readLines } from "../io.ts";
import { peerLabel } from "../ui/format.ts";
import { chatLine, chatSpans, rejectedLine, requestLine, shortText } from "../ui/messages.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import { type ChatScreen, type Mark, openChatScreen } from "../ui/chat_screen.ts";
import { QUIT_SIGNALS, type QuitSignal } from "../ui/terminal.ts";
import {
  chooseRelay,
  clientOptions,
  RELAY_ENV,
  RELAY_HELP,
  relayFailure,
  relayPositional,
} from "../relay_errors.ts";

const RECENT = 20;

const USAGE = `Usage: chat-p2p chat [<relay-url>] <contact> [--timeout <seconds>]

Talks with <contact> through the relay: shows the recent messages (the last ${RECENT}, or all
unread ones), then live messages both ways. Your messages get ✓ when the relay has stored them
and ✓✓ when your contact's client has; … while queued, ✗ if refused for good. Messages from
other senders are stored too (see \`chat-p2p chats\`).
${RELAY_HELP}

On a terminal:
  Enter             send
  Alt-Enter, Ctrl-J, or \\ before Enter   a new line in the message (a pasted block is one
                    message, its newlines kept)
  ↑/↓               move between lines, then through what you sent
  Ctrl-C            leave (asks first when there is a draft); Ctrl-D on an empty line leaves
  /history          the whole conversation
  /help             this list
  /quit             leave
  //text            send a message that starts with "/"

A message has at most ${MAX_MESSAGE_CHARACTERS.toLocaleString("en-US")} characters and ${
  MAX_MESSAGE_BYTES.toLocaleString("en-US")
} bytes; the chat refuses more as you type or paste.

With stdin or stdout not a terminal (a pipe or a file), every input line is sent, incoming
messages are printed on stdout as plain lines (delivery marks and notices on stderr, a line
each), and EOF or /quit ends the chat once every message is accepted. A line over the limits
is not sent, and the chat then exits 1.

The chat opens even when the relay cannot be reached, and connects when it can; when the
connection drops, it reconnects by itself. What you type meanwhile is saved in your history and
shown as queued, then sent when the relay is back. Messages an earlier chat or send saved but
never got to the relay are sent when the chat starts. A message the relay refuses for now
("unavailable", a full mailbox) stays queued and is sent again; one it can never accept is
marked failed (\`chat-p2p resend\` queues it again). Leaving with messages still queued says
which; the next send or chat sends them.

Exit codes: 0 done; 1 a message failed or was refused; 2 usage; 3 messages stay queued;
128 + n after signal n (129 SIGHUP, 130 SIGINT, 143 SIGTERM).

Options:
  --relay <url>        the relay (instead of <relay-url>)
  --timeout <seconds>  how long to wait for the relay (default ${DEFAULT_TIMEOUT_MS / 1000});
                       with piped stdin, also how long to keep trying to (re)connect
  -h, --help           show this help

Environment:
  ${RELAY_ENV}           the relay, when none is given
  ${PASSPHRASE_ENV}      the passphrase of an identity made with \`init --passphrase\`
                       (else it is asked on the terminal)`;

const HELP_LINES = [
  "Enter sends; Alt-Enter, Ctrl-J or a trailing \\ start a new line",
  "/history  the whole conversation",
  "/quit     leave (Ctrl-D on an empty line too)",
  "//text    send text starting with /",
];

/** How the chat shows things: the screen at a terminal, plain lines when piped. */
interface ChatView {
  /** A message of this conversation (history, sent, received); mine carry their state. */
  entry(e: Pick<HistoryEntry, "id" | "dir" | "text" | "sent_at" | "state">): void;
  /** A message of mine changed state. */
  mark(id: string, text: string, state: "accepted" | "delivered" | "failed", why?: string): void;
  /** A notice: another sender's message, an error, what stays queued. */
  notice(text: string, style?: Style): void;
  /** The connection's state, or a passing status ("" clears it). */
  status(text: string, style?: Style): void;
}

const MARKS: Partial<Record<FoldedState, Mark>> = {
  sending: "sending",
  accepted: "accepted",
  delivered: "delivered",
  failed: "failed",
};

/** The chat screen as a view: marks change on the message's own line, state on the status row. */
function screenView(ctx: Context, screen: ChatScreen, peer: Peer): ChatView {
  return {
    entry(e) {
      const spans = chatSpans(ctx, e, peer);
      const mark = MARKS[e.state];
      if (e.dir === "out" && mark) screen.printMessage(e.id, spans, mark);
      else screen.printLine(spans);
    },
    mark(id, text, state, why) {
      screen.setMark(id, state);
      if (why) {
        screen.printLine([{ text: `  ✗ not sent: ${shortText(text)}: ${why}`, style: "red" }]);
      }
    },
    notice: (text, style) => screen.printLine([{ text, style }]),
    status: (text) => screen.status(text),
  };
}

/** Plain lines: the conversation on stdout, everything else on stderr, one line per event. */
function lineView(ctx: Context, peer: Peer): ChatView {
  const stderr = (text: string, style?: Style) =>
    ctx.io.stderr.write((style ? paint(ctx, style, text) : text) + "\n");
  return {
    entry(e) {
      if (e.dir === "in") ctx.io.stdout.write(chatLine(ctx, e, peer) + "\n");
    },
    mark(_id, text, state, why) {
      if (state === "accepted") stderr(`  ✓ accepted: ${shortText(text)}`, "dim");
      else if (state === "delivered") stderr(`  ✓✓ delivered: ${shortText(text)}`, "green");
      else stderr(`  ✗ not sent: ${shortText(text)}: ${why}`, "red");
    },
    notice: stderr,
    status: (text, style) => text && stderr(text, style),
  };
}

/** One conversation: the client's events about this peer shown, lines sent, read marks kept. */
class Chat {
  readonly #ctx: Context;
  readonly #client: ChatClient;
  readonly #peer: Peer;
  readonly #relayUrl: string;
  readonly #timeoutMs: number;
  readonly #view: ChatView;
  readonly #interactive: boolean;
  readonly #marks: ReadMarks;
  /** Messages shown and not marked read yet. */
  readonly #shown: string[] = [];
  #saveMarks: ReturnType<typeof setTimeout> | undefined;
  /** Resolves with the error when the connection gives up for good. */
  readonly fatal = Promise.withResolvers<CliError>();
  #connectedOnce = false;
  #dropped = false;
  #warnedOffline = false;
  #synced = false;
  #failed = 0;
  /** Lines not sent because they were over the limits. */
  refused = 0;
  /** Why the last attempt to connect failed, while not connected. */
  #offlineBecause: RelayError | undefined;

  constructor(
    ctx: Context,
    client: ChatClient,
    peer: Peer,
    relayUrl: string,
    timeoutMs: number,
    view: ChatView,
    interactive: boolean,
  ) {
    this.#ctx = ctx;
    this.#client = client;
    this.#peer = peer;
    this.#relayUrl = relayUrl;
    this.#timeoutMs = timeoutMs;
    this.#view = view;
    this.#interactive = interactive;
    this.#marks = new ReadMarks(client.store);
    client.on("*", (e) => {
      try {
        this.#onEvent(e);
      } catch (err) {
        view.notice(`error: ${err instanceof Error ? err.message : err}`, "red");
      }
    });
  }

  #mine(peer: string): boolean {
    return peer === this.#peer.key;
  }

  #queuedCount(): number {
    return this.#client.queued(this.#peer.key).length;
  }

  #queuedNote(prefix: string): string {
    const n = this.#queuedCount();
    return n > 0 ? `${prefix}; sending ${n} queued message${n === 1 ? "" : "s"}` : prefix;
  }

  #onEvent(e: ChatEvent): void {
    const view = this.#view;
    switch (e.type) {
      case "connection":
        return this.#onConnection(e);
      case "synced":
        this.#synced = true;
        return;
      case "message": {
        if (e.duplicate) return;
        const m = e.message;
        if (this.#mine(m.from)) {
          view.entry({ ...m, dir: "in", state: "received" });
          return this.#read([m.id]);
        }
        const who = peerLabel(m.contact, m.fingerprint);
        return view.notice(
          `  new message from ${who} (see: chat-p2p chats, chat-p2p history ${
            m.contact ? JSON.stringify(m.contact) : `"${m.fingerprint}"`
          })`,
          "yellow",
        );
      }
      case "delivered":
        if (!this.#mine(e.from)) return;
        for (const m of e.messages) view.mark(m.id, m.text, "delivered");
        return;
      case "accepted":
        if (this.#mine(e.message.peer)) view.mark(e.message.id, e.message.text, "accepted");
        if (this.#client.state === "connected") this.#connectedStatus();
        return;
      case "retry": {
        if (!this.#mine(e.message.peer)) return;
        const why = relayFailure(e.error, "the message").message;
        if (e.error.code === "rate_limited") return debug(this.#ctx, why); // paced, not a problem
        return view.status(
          `  … not accepted yet: ${shortText(e.message.text)}: ${why}; trying again in ${
            Math.ceil(e.delayMs / 1000)
          } s`,
          "yellow",
        );
      }
      case "failed":
        if (!this.#mine(e.message.peer)) return;
        this.#failed++;
        return view.mark(
          e.message.id,
          e.message.text,
          "failed",
          relayFailure(e.error, "the message").message,
        );
      case "rejected":
        return view.notice(rejectedLine(e), "red");
      case "request":
        return e.duplicate ? undefined : view.notice(requestLine(e), "yellow");
      case "relay_error":
        return view.notice(`relay error: ${e.code}: ${e.message}`, "red");
      case "error":
        if (e.during === "store") {
          return view.notice(`error: a received message is not stored: ${e.error.message}`, "red");
        }
        return debug(this.#ctx, `${e.during}: ${e.error.message}`);
    }
  }

  #connectedStatus(): void {
    const n = this.#queuedCount();
    this.#view.status(
      `connected to ${this.#relayUrl}${n > 0 ? `; sending ${n} queued` : ""}`,
      "dim",
    );
  }

  #onConnection(e: Extract<ChatEvent, { type: "connection" }>): void {
    const view = this.#view;
    if (e.state !== "connected") this.#synced = false;
    this.#offlineBecause = e.state === "connected" ? undefined : e.error ?? this.#offlineBecause;
    switch (e.state) {
      case "connected":
        if (this.#interactive) this.#connectedStatus();
        else if (this.#dropped) view.status(this.#queuedNote("reconnected"), "green");
        else if (this.#warnedOffline) {
          view.status(this.#queuedNote(`connected to relay ${this.#relayUrl}`), "green");
        }
        this.#connectedOnce = true;
        return;
      case "disconnected": {
        const queued = this.#queuedCount();
        const waiting = queued > 0 ? `; ${queued} queued` : "";
        if (e.close) {
          this.#dropped = true;
          // Without a close frame (the relay died, the network dropped) the browser API reports
          // 0; RFC 6455 calls that 1006, "closed abnormally".
          const code = e.close.code === 0 ? 1006 : e.close.code;
          const reason = e.close.reason ? `: ${e.close.reason}` : "";
          return view.status(
            `connection to relay lost (code ${code}, ${describeCloseCode(code)}${reason}); ` +
              `reconnecting…${waiting}`,
            "yellow",
          );
        }
        if (this.#interactive) {
          return view.status(
            `offline: ${e.error?.message ?? "not connected"}; what you type is queued${waiting}`,
            "yellow",
          );
        }
        if (!this.#connectedOnce && !this.#warnedOffline && e.error) {
          this.#warnedOffline = true;
          return view.status(
            `${e.error.message}; what you type is queued and sent once the relay is reachable`,
            "yellow",
          );
        }
        return debug(this.#ctx, `reconnect failed: ${e.error?.message ?? "?"}`);
      }
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
        if (this.#interactive && !this.#connectedOnce && e.attempt === 1) {
          view.status(`connecting to ${this.#relayUrl}…`, "dim");
        }
        return;
    }
  }

  /** Records and queues one message; a text over the limits is refused (and counted). */
  send(text: string): void {
    const sentAt = this.#ctx.io.now().toISOString();
    const refused = checkMessage(text);
    if (refused) {
      this.refused++;
      return this.#view.notice(`not sent: ${refused.message}`, "red");
    }
    let id: string;
    try {
      id = this.#client.send(this.#peer.key, text);
    } catch (e) {
      if (!(e instanceof RelayError)) throw e;
      this.refused++;
      return this.#view.notice(`not sent: ${relayFailure(e, "the message").message}`, "red");
    }
    this.#view.entry({ id, dir: "out", text, sent_at: sentAt, state: "sending" });
    if (this.#client.state !== "connected" && !this.#interactive) {
      this.#view.status(`  … queued (not connected): ${shortText(text)}`, "yellow");
    }
  }

  /** Queues what an earlier run left as "sending" to this peer; it goes out first. */
  resumeQueued(): void {
    const n = this.#client.resume(this.#peer.key).length;
    if (n > 0) {
      this.#view.notice(
        `sending ${n} queued message${n === 1 ? "" : "s"} from an earlier session`,
        "yellow",
      );
    }
  }

  /**
   * Shows the conversation in arrival order: all of it, or (`recent`) the last {@linkcode RECENT}
   * messages and every unread one; what it shows counts as read.
   */
  showHistory(recent = false): void {
    const entries = this.#client.store.history(this.#peer.key).entries();
    const sorted = chronological(entries);
    let from = 0;
    if (recent) {
      const unread = new Set(this.#marks.unread(this.#peer.key, entries).map((e) => e.id));
      const firstUnread = sorted.findIndex((e) => unread.has(e.id));
      from = Math.max(
        0,
        Math.min(sorted.length - RECENT, firstUnread < 0 ? Infinity : firstUnread),
      );
    }
    const shown = sorted.slice(from);
    for (const e of shown) this.#view.entry(e);
    this.#read(shown.filter((e) => e.dir === "in").map((e) => e.id));
  }

  /** Marks `ids` read, soon (messages arriving together: one pass over history, one write). */
  #read(ids: string[]): void {
    for (const id of ids) this.#shown.push(id);
    this.#saveMarks ??= setTimeout(() => this.#flushMarks(), 200);
  }

  #flushMarks(): void {
    clearTimeout(this.#saveMarks);
    this.#saveMarks = undefined;
    try {
      const ids = this.#shown.splice(0);
      if (ids.length > 0) this.#marks.markRead(this.#peer.key, ids, this.#ctx.io.now());
      this.#marks.save();
    } catch (e) {
      warn(this.#ctx, `could not record what was read: ${e instanceof Error ? e.message : e}`);
    }
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
   * Ends the chat: waits (up to the timeout, and not after a signal) until every message to this
   * peer is accepted and the pending messages were received, closes the client, says what stays
   * queued, and throws what the exit code should say. `fatal`: the connection gave up.
   */
  async finish(opts: { fatal?: CliError; signal?: QuitSignal } = {}): Promise<void> {
    const { fatal, signal } = opts;
    const client = this.#client;
    // Offline at the terminal, nothing will change by waiting: say what stays queued at once.
    if (!fatal && !signal && (client.state === "connected" || !this.#interactive)) {
      this.#view.status("");
      await this.#waitFor(
        () => this.#queuedCount() === 0 && this.#synced,
        this.#timeoutMs,
      );
    }
    await client.close({ timeoutMs: signal ? 1000 : undefined });
    this.#flushMarks();
    const unsent = client.queued(this.#peer.key);
    for (const m of unsent) this.#view.notice(`  … still queued: ${shortText(m.text)}`, "yellow");
    const n = unsent.length;
    const stays = n === 0 ? "" : `${n === 1 ? "1 message stays" : `${n} messages stay`} queued ` +
      `and ${n === 1 ? "is" : "are"} sent by the next \`send\` or \`chat\` to ` +
      peerLabel(this.#peer.name, this.#peer.fingerprint);
    if (signal) {
      if (stays) this.#view.notice(stays, "yellow");
      throw new ExitStatus(128 + QUIT_SIGNALS[signal]);
    }
    const failures = [
      this.#failed > 0
        ? `${this.#failed} message(s) could not be sent (\`chat-p2p resend\` queues them again)`
        : "",
      this.refused > 0 ? `${this.refused} line(s) not sent: over the limits` : "",
    ].filter(Boolean);
    if (fatal) {
      throw new CliError([fatal.message, stays, ...failures].filter(Boolean).join("; "), {
        exitCode: stays && failures.length === 0 && fatal.message.includes("reconnect")
          ? EXIT.queued
          : EXIT.failure,
      });
    }
    if (failures.length > 0) {
      throw new CliError([...failures, stays].filter(Boolean).join("; "));
    }
    if (stays) {
      const offline = this.#offlineBecause;
      throw new CliError(
        `${
          offline
            ? relayFailure(offline, "the connection").message
            : "not every message was accepted before leaving"
        }; ${stays}`,
        { exitCode: EXIT.queued },
      );
    }
  }
}

/** Handles one submitted text; "quit" to leave. */
function handleText(chat: Chat, view: ChatView, text: string): "continue" | "quit" {
  const trimmed = text.replace(/\s+$/, "");
  if (trimmed.trim() === "") return "continue";
  if (trimmed.startsWith("/") && !trimmed.startsWith("//") && !trimmed.includes("\n")) {
    const cmd = trimmed.trim().split(/\s+/)[0];
    switch (cmd) {
      case "/quit":
      case "/exit":
        return "quit";
      case "/history":
        chat.showHistory();
        return "continue";
      case "/help":
        for (const l of HELP_LINES) view.notice(l, "dim");
        return "continue";
      default:
        view.notice(`unknown command ${cmd}; try /help`, "yellow");
        return "continue";
    }
  }
  chat.send(trimmed.startsWith("//") ? trimmed.slice(1) : trimmed);
  return "continue";
}

/** Piped mode: a message per line from stdin until EOF or /quit. */
async function pipedInput(chat: Chat, view: ChatView, ctx: Context): Promise<void> {
  for await (const line of readLines(ctx.io.stdin.readable())) {
    if (handleText(chat, view, line) === "quit") return;
  }
}

/** The screen's limits: the client library's check, as the draft is typed or pasted. */
function screenLimits() {
  return {
    maxLength: MAX_MESSAGE_CHARACTERS,
    check: (text: string) => {
      const refused = checkMessage(text);
      return refused && refused.code !== "empty" ? refused.message : undefined;
    },
  };
}

/** The `chat` command. */
export const chatCommand: Command = {
  name: "chat",
  summary: "chat live with a contact",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(
      this,
      args,
      {
        relay: { type: "string" },
        timeout: { type: "string" },
      },
      [],
      2,
    );
    const { relay: given, rest } = relayPositional(positionals, values.relay, USAGE);
    if (rest.length !== 1) {
      throw new UsageError(
        rest.length === 0
          ? "chat: missing <contact>"
          : `chat: unexpected argument ${JSON.stringify(rest[1])}`,
        USAGE,
      );
    }
    const timeoutMs = parseTimeout(this, values.timeout, DEFAULT_TIMEOUT_MS);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    // The passphrase first: contacts are encrypted at rest with it.
    const me = await unlockIdentity(ctx, store);
    const peer = store.resolvePeer(rest[0]);
    const relayUrl = chooseRelay(ctx, store, given, USAGE);
    const interactive = ctx.io.stdin.isTerminal && ctx.io.stdout.isTerminal;

    // At a terminal the chat keeps trying for as long as it is open; a script gets the timeout.
    const client = new ChatClient(
      store,
      me,
      clientOptions(ctx, timeoutMs, interactive ? {} : { giveUpAfterMs: timeoutMs }),
    );
    const screen = interactive
      ? openChatScreen({ color: ctx.color, limits: screenLimits() })
      : undefined;
    const view = screen ? screenView(ctx, screen, peer) : lineView(ctx, peer);
    const chat = new Chat(ctx, client, peer, relayUrl, timeoutMs, view, interactive);
    try {
      if (screen) {
        const who = peerLabel(peer.name, peer.fingerprint);
        view.notice(
          `chat with ${who} (${peer.fingerprint}) via ${relayUrl}; /help for commands`,
          "dim",
        );
        chat.showHistory(true);
      }
      chat.resumeQueued();
      client.connect(relayUrl).catch(() => {}); // failures arrive as connection events
      const input = screen
        ? (async () => {
          for await (const text of screen) if (handleText(chat, view, text) === "quit") break;
        })()
        : pipedInput(chat, view, ctx);
      const fatal = await Promise.race([input.then(() => undefined), chat.fatal.promise]);
      screen?.close();
      const reason = screen ? await screen.closed : undefined;
      await chat.finish({
        fatal,
        signal: reason !== undefined && reason in QUIT_SIGNALS ? reason as QuitSignal : undefined,
      });
    } finally {
      screen?.close();
      await client.close(); // after an error; finish() closed it already otherwise
    }
  },
};
