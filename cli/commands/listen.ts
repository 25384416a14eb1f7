/**
 * `chat-p2p listen [<relay-url>] [--json | --exec <cmd>]`: stays connected and hands every
 * message on, acking it only once it is handled: printed (a line, or a JSON line, written and
 * flushed) or, with --exec, processed by a command that exited 0. A message not handled is never
 * acked, so the relay keeps it: a bot never loses one.
 *
 * @module
 */
import {
  ChatClient,
  type ChatEvent,
  DEFAULT_TIMEOUT_MS,
  type IncomingMessage,
  openStore,
  ReadMarks,
} from "@chat-p2p/client";
import { backoffDelay, delay } from "@chat-p2p/protocol/async";
import {
  type Command,
  type Context,
  err,
  parseCommandArgs,
  parseTimeout,
  warn,
} from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import { messageJson, messageLine, rejectedLine, shortText } from "../ui/messages.ts";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import {
  chooseRelay,
  clientOptions,
  RELAY_ENV,
  RELAY_HELP,
  relayFailure,
  relayPositional,
} from "../relay_errors.ts";

const USAGE =
  `Usage: chat-p2p listen [<relay-url>] [--json | --exec <command>] [--timeout <seconds>]

Stays connected to the relay (reconnecting when it must) and hands on every message sent to
you, contacts and strangers alike, in the order they arrive. A message is acked, so the relay
forgets it, only once it is handled:

  (default)  printed on stdout as "[time] name: text"
  --json     printed as a JSON line (events below), written and flushed
  --exec     <command> run by /bin/sh with the message as a JSON line on stdin, and exited 0

A message not handled (the command failed, stdout was closed, listen was stopped) is not acked:
with --exec it is handed to the command again after a pause (1 s, doubling up to 30 s), one
message at a time in order; otherwise the relay delivers it again next time. So a message can
come twice (at least once, never lost): "duplicate" is true when it was already in your history.
${RELAY_HELP}

--json writes one object per line, with "type":
  message     {"type","id","from","contact","fingerprint","text","sent_at","at","duplicate"}
  receipt     {"type","from","contact","ids"}: your messages with these ids were delivered
  connection  {"type","state","attempt","error"}: connecting, connected, disconnected, closed
  synced      {"type","count"}: everything waiting at the relay has come
  rejected    {"type","id","from","fingerprint","reason"}: an envelope that did not open
  request     (protocol v2) a first message from someone new, to accept or block
(docs/CLI.md has each shape.) Connection changes and receipts go to stderr without --json.

--exec sets, besides the JSON on stdin: CHAT_MESSAGE_ID, CHAT_FROM (the sender's key),
CHAT_CONTACT (the contact's name; empty for a stranger), CHAT_FINGERPRINT, CHAT_SENT_AT. The
command's own output goes to listen's stdout and stderr.

SIGINT or SIGTERM stops listen once the message in hand is handled (exit 0).

Options:
  --relay <url>        the relay (instead of <relay-url>)
  --json               JSON lines on stdout
  --exec <command>     run <command> for each message
  --timeout <seconds>  how long to wait for the relay on each attempt (default ${
    DEFAULT_TIMEOUT_MS / 1000
  })
  -h, --help           show this help

Environment:
  ${RELAY_ENV}           the relay, when none is given
  ${PASSPHRASE_ENV}      the passphrase of an identity made with \`init --passphrase\``;

/** Longest pause before a failed command gets the message again. */
const EXEC_BACKOFF = { minTimeout: 1000, maxTimeout: 30_000, jitter: 0.2 };

/** The JSON line of an event for --json (undefined: not one listen reports). */
export function eventJson(e: ChatEvent): Record<string, unknown> | undefined {
  switch (e.type) {
    case "message":
      return {
        type: "message",
        ...messageJson(e.message),
        at: e.message.at,
        duplicate: e.duplicate,
      };
    case "delivered":
      return {
        type: "receipt",
        from: e.from,
        contact: e.contact,
        ids: e.messages.map((m) => m.id),
      };
    case "connection":
      return {
        type: "connection",
        state: e.state,
        attempt: e.attempt,
        error: e.error ? { code: e.error.code, message: e.error.message } : null,
      };
    case "synced":
      return { type: "synced", count: e.count };
    case "rejected":
      return {
        type: "rejected",
        id: e.id,
        from: e.from,
        fingerprint: e.fingerprint,
        reason: e.reason,
      };
    default:
      return undefined;
  }
}

/** Runs `command` for message `m`; resolves with its exit code. */
async function runExec(command: string, m: IncomingMessage, duplicate: boolean): Promise<number> {
  const child = new Deno.Command("/bin/sh", {
    args: ["-c", command],
    stdin: "piped",
    stdout: "inherit",
    stderr: "inherit",
    env: {
      CHAT_MESSAGE_ID: m.id,
      CHAT_FROM: m.from,
      CHAT_CONTACT: m.contact ?? "",
      CHAT_FINGERPRINT: m.fingerprint,
      CHAT_SENT_AT: m.sent_at,
    },
  }).spawn();
  const line = JSON.stringify({ type: "message", ...messageJson(m), at: m.at, duplicate }) + "\n";
  const w = child.stdin.getWriter();
  // A command that does not read its stdin closes it early: that is its business.
  await w.write(new TextEncoder().encode(line)).catch(() => {});
  await w.close().catch(() => {});
  return (await child.status).code;
}

/** The `listen` command. */
export const listenCommand: Command = {
  name: "listen",
  summary: "hand every message on (lines, JSON or a command); ack once handled",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(
      this,
      args,
      {
        relay: { type: "string" },
        json: { type: "boolean" },
        exec: { type: "string" },
        timeout: { type: "string" },
      },
      [],
      1,
    );
    const { relay: given, rest } = relayPositional(positionals, values.relay, USAGE);
    if (rest.length > 0) {
      throw new UsageError(`listen: unexpected argument ${JSON.stringify(rest[0])}`, USAGE);
    }
    const json = values.json === true;
    const exec = typeof values.exec === "string" ? values.exec : undefined;
    if (json && exec !== undefined) {
      throw new UsageError(
        "listen: --json and --exec are two ways to handle a message; pick one",
        USAGE,
      );
    }
    if (exec !== undefined && exec.trim() === "") {
      throw new UsageError("--exec needs a command", USAGE);
    }
    const timeoutMs = parseTimeout(this, values.timeout, DEFAULT_TIMEOUT_MS);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const relayUrl = chooseRelay(ctx, store, given, USAGE);
    const me = await unlockIdentity(ctx, store);
    const client = new ChatClient(store, me, clientOptions(ctx, timeoutMs, { ackMode: "manual" }));
    const marks = new ReadMarks(store);
    /** Messages printed and not marked read yet, per sender (marked each second, in one pass). */
    const shown = new Map<string, string[]>();
    const saveMarks = () => {
      for (const [peer, ids] of shown) marks.markRead(peer, ids, ctx.io.now());
      shown.clear();
      marks.save();
    };
    const stopped = Promise.withResolvers<CliError | undefined>();
    let stopping = false;

    /** Writes a line to stdout; false when the reader is gone (then listen stops). */
    const print = (line: string): boolean => {
      ctx.io.stdout.write(line + "\n");
      if (!ctx.io.stdout.closed) return true;
      stopped.resolve(new CliError("stdout was closed; what was not printed stays at the relay"));
      return false;
    };

    // Messages for --exec, handled one at a time, in order.
    const queue: Array<{ m: IncomingMessage; duplicate: boolean }> = [];
    let draining: Promise<void> | undefined;
    const drain = async () => {
      while (queue.length > 0 && !stopping) {
        const { m, duplicate } = queue[0];
        for (let attempt = 0;; attempt++) {
          const code = await runExec(exec!, m, duplicate).catch((e) => {
            warn(ctx, `cannot run ${JSON.stringify(exec)}: ${e instanceof Error ? e.message : e}`);
            return 127;
          });
          if (code === 0) {
            client.ack(m.id);
            break;
          }
          if (stopping) return; // not acked: the relay delivers it again next time
          const wait = backoffDelay(attempt, EXEC_BACKOFF);
          warn(
            ctx,
            `${JSON.stringify(exec)} exited ${code} for message ${m.id} (${shortText(m.text)}); ` +
              `not acked, handing it on again in ${Math.ceil(wait / 1000)} s`,
          );
          await delay(wait);
          if (stopping) return;
        }
        queue.shift();
      }
    };

    client.on("*", (e) => {
      if (stopping) return;
      if (json) {
        const o = eventJson(e);
        if (o && !print(JSON.stringify(o))) return;
      }
      switch (e.type) {
        case "message": {
          const m = e.message;
          if (exec !== undefined) {
            queue.push({ m, duplicate: e.duplicate });
            draining ??= drain().finally(() => (draining = undefined));
            return;
          }
          if (!json && !print(messageLine(ctx, m))) return;
          client.ack(m.id);
          if (!shown.has(m.from)) shown.set(m.from, []);
          shown.get(m.from)!.push(m.id);
          return;
        }
        case "delivered":
          if (!json) {
            for (const m of e.messages) {
              err(ctx, `  ✓✓ delivered to ${e.contact ?? e.from}: ${shortText(m.text)}`);
            }
          }
          return;
        case "rejected":
          if (!json) err(ctx, rejectedLine(e));
          return;
        case "connection":
          if (!json && (e.state === "connected" || e.error)) {
            err(
              ctx,
              e.state === "connected"
                ? `listening on ${relayUrl}`
                : `${e.state}: ${e.error?.message}`,
            );
          }
          if (e.state === "closed" && e.error) {
            stopped.resolve(relayFailure(e.error, "the connection"));
          }
          return;
        case "relay_error":
          warn(ctx, `relay error: ${e.code}: ${e.message}`);
          return;
        case "error":
          warn(ctx, `${e.during}: ${e.error.message}`);
          return;
      }
    });

    const onSignal = () => stopped.resolve(undefined);
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    for (const s of signals) Deno.addSignalListener(s, onSignal);
    const saver = setInterval(saveMarks, 1000);
    try {
      client.connect(relayUrl).catch(() => {}); // failures arrive as connection events
      const failure = await stopped.promise;
      stopping = true;
      await draining;
      if (failure) throw failure;
    } finally {
      stopping = true;
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
      clearInterval(saver);
      await client.close();
      saveMarks();
    }
  },
};
