/**
 * `chat-p2p id [--json] [--qr]`: prints the public key and its fingerprint.
 *
 * @module
 */
import { toBase64 } from "@chat-p2p/protocol";
import { type Command, type Context, out, paint, parseCommandArgs, warn } from "../context.ts";
import { keyFingerprint, openStore } from "@chat-p2p/client";
import { drawQr } from "../ui/qr.ts";

const USAGE = `Usage: chat-p2p id [--json] [--qr]

Prints your public key (first line, alone), its fingerprint, and whether your history, contacts
and sessions are encrypted on this disk (they are when your identity has a passphrase; see
\`chat-p2p passphrase\`). Give the key to contacts; compare fingerprints out of band (in person,
on a call) to be sure nobody swapped it.

Options:
  --json       print {"public_key": ..., "fingerprint": ..., "encrypted_at_rest": true|false}
  --qr         also draw the public key as a QR code
  -h, --help   show this help`;

/** The `id` command. */
export const idCommand: Command = {
  name: "id",
  summary: "print your public key and fingerprint",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values } = parseCommandArgs(this, args, {
      json: { type: "boolean" },
      qr: { type: "boolean" },
    }, []);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const info = store.readIdentity();
    const key = toBase64(info.publicKey);
    const fp = keyFingerprint(key);
    const encrypted = info.encrypted !== undefined;
    if (values.json === true) {
      out(ctx, JSON.stringify({ public_key: key, fingerprint: fp, encrypted_at_rest: encrypted }));
    } else {
      out(ctx, key);
      out(ctx, `${paint(ctx, "dim", "fingerprint:")} ${fp}`);
      out(
        ctx,
        `${paint(ctx, "dim", "history:")} ${
          encrypted ? "encrypted at rest with your passphrase" : paint(
            ctx,
            "yellow",
            "NOT encrypted at rest (no passphrase; `chat-p2p passphrase` sets one)",
          )
        }`,
      );
    }
    if (values.qr === true) {
      // With --json, stdout stays one JSON document: the drawing goes to stderr.
      const sink = values.json === true ? ctx.io.stderr : ctx.io.stdout;
      sink.write(await drawQr(key, ctx.color));
    }
  },
};
