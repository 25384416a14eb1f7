/**
 * `chat-p2p sync <relay-url> [--json]`: fetches every pending envelope, stores it, acks it,
 * sends delivery receipts and prints the new messages.
 *
 * @module
 */
import type { KeyPair } from "@chat-p2p/protocol";
import {
  type Command,
  type Context,
  err,
  out,
  paint,
  parseCommandArgs,
  parseTimeout,
  warn,
} from "../context.ts";
import { CliError } from "../errors.ts";
import { formatShortTime, peerLabel, preview, sanitizeForTerminal } from "../ui/format.ts";
import {
  connectRelay,
  contactNames,
  DEFAULT_TIMEOUT_MS,
  handleEnvelope,
  type InboxOutcome,
  type IncomingMessage,
  openStore,
  type ProfileStore,
  ReceiptBatch,
  type RelaySession,
} from "@chat-p2p/client";
import { PASSPHRASE_ENV, unlockIdentity } from "../ui/passphrase.ts";
import { connectOptions, relayFailure, relayUrlArg } from "../relay_errors.ts";

const USAGE = `Usage: chat-p2p sync <relay-url> [--json] [--timeout <seconds>]

Fetches the messages waiting for you at the relay, stores them in your history, tells the relay
they are safe (ack) and sends each sender a delivery receipt. Prints the new messages:
"[time] name: text", or with --json one JSON object per line:
{"id","from","contact","fingerprint","text","sent_at"} (contact is null for strangers).
Messages whose box does not open with the sender's claimed key are reported on stderr and dropped.

Options:
  --json               JSON lines on stdout
  --timeout <seconds>  how long to wait for the relay (default ${DEFAULT_TIMEOUT_MS / 1000})
  -h, --help           show this help

Environment:
  ${PASSPHRASE_ENV}      the passphrase of an identity made with \`init --passphrase\`
                       (else it is asked on the terminal)`;

/** Acks are sent in batches of this many ids while draining. */
const ACK_BATCH = 100;

/** The JSON line printed for a received message. */
export function messageJson(m: IncomingMessage): Record<string, unknown> {
  return {
    id: m.id,
    from: m.from,
    contact: m.contact,
    fingerprint: m.fingerprint,
    text: m.text,
    sent_at: m.sent_at,
  };
}

/** The human line printed for a received message. */
export function messageLine(ctx: Context, m: IncomingMessage): string {
  const time = paint(ctx, "dim", `[${formatShortTime(m.sent_at, ctx.io.now())}]`);
  const who = paint(ctx, m.contact ? "magenta" : "yellow", peerLabel(m.contact, m.fingerprint));
  return `${time} ${who}: ${sanitizeForTerminal(m.text)}`;
}

/** Reports a rejected or receipt outcome on stderr; returns nothing for messages. */
export function reportOutcome(ctx: Context, o: InboxOutcome): void {
  if (o.kind === "rejected") {
    err(ctx, `rejected message ${o.id} claiming to be from ${o.fingerprint}: ${o.reason}`);
  } else if (o.kind === "receipt") {
    for (const d of o.delivered) {
      err(ctx, `  ✓✓ delivered to ${o.contact ?? o.from}: ${sanitizeForTerminal(preview(d.text))}`);
    }
  }
}

interface DrainResult {
  newMessages: number;
  synced: boolean;
}

async function drain(
  ctx: Context,
  session: RelaySession,
  store: ProfileStore,
  me: KeyPair,
  json: boolean,
  receipts: ReceiptBatch,
  timeoutMs: number,
): Promise<DrainResult> {
  const names = contactNames(store.loadContacts());
  let toAck: string[] = [];
  let newMessages = 0;
  const flushAcks = () => {
    if (toAck.length > 0 && session.isOpen) session.ack(toAck);
    toAck = [];
  };
  try {
    while (true) {
      const ev = await session.nextEvent(timeoutMs);
      if (ev === "timeout") {
        throw new CliError(
          `relay ${session.relayUrl} stopped sending before the end of pending messages ` +
            `(no frame for ${timeoutMs / 1000} s)`,
        );
      }
      if (ev === undefined) {
        const info = await session.closed;
        throw new CliError(
          `relay ${session.relayUrl} closed the connection before all pending messages arrived ` +
            `(code ${info.code}${info.reason ? `: ${info.reason}` : ""})`,
        );
      }
      if (ev.type === "synced") return { newMessages, synced: true };
      if (ev.type === "error") {
        warn(ctx, `relay error: ${ev.code}: ${ev.message}`);
        continue;
      }
      if (ev.type === "invalid") {
        warn(ctx, ev.message);
        if (ev.id) toAck.push(ev.id);
        continue;
      }
      const o = handleEnvelope(store, me, names, ev.envelope, ctx.io.now());
      if (o.kind === "message") {
        receipts.add(o.message.from, o.message.id);
        if (!o.duplicate) {
          newMessages++;
          out(ctx, json ? JSON.stringify(messageJson(o.message)) : messageLine(ctx, o.message));
        }
      } else reportOutcome(ctx, o);
      toAck.push(ev.envelope.id);
      if (toAck.length >= ACK_BATCH) flushAcks();
    }
  } finally {
    // Whatever happened, what is stored is acked (at-least-once: the rest comes back).
    try {
      flushAcks();
    } catch { /* socket gone */ }
  }
}

/** The `sync` command. */
export const syncCommand: Command = {
  name: "sync",
  summary: "fetch waiting messages, store them and print them",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(this, args, {
      json: { type: "boolean" },
      timeout: { type: "string" },
    }, ["relay-url"]);
    const relayUrl = relayUrlArg(positionals[0], USAGE);
    const timeoutMs = parseTimeout(this, values.timeout, DEFAULT_TIMEOUT_MS);
    const json = values.json === true;
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const me = await unlockIdentity(ctx, store);

    let session: RelaySession;
    try {
      session = await connectRelay(relayUrl, me, connectOptions(ctx, timeoutMs));
    } catch (e) {
      throw relayFailure(e, "the connection");
    }
    try {
      const receipts = new ReceiptBatch();
      let result: DrainResult;
      try {
        result = await drain(ctx, session, store, me, json, receipts, timeoutMs);
      } finally {
        if (!receipts.isEmpty && session.isOpen) {
          const failures = await receipts.flush(session, me, () => ctx.io.now(), timeoutMs);
          for (const f of failures) {
            warn(
              ctx,
              `could not send a delivery receipt: ${relayFailure(f.error, "the receipt").message}`,
            );
          }
        }
      }
      if (!json) {
        err(
          ctx,
          result.newMessages === 0
            ? "no new messages"
            : `${result.newMessages} new message${result.newMessages === 1 ? "" : "s"}`,
        );
      }
    } finally {
      await session.close();
    }
  },
};
