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

Prints your public key (first line, alone) and its fingerprint. Give the key to contacts;
compare fingerprints out of band (in person, on a call) to be sure nobody swapped it.

Options:
  --json       print {"public_key": ..., "fingerprint": ...}
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
    const key = toBase64(store.loadPublicKey());
    const fp = keyFingerprint(key);
    if (values.json === true) {
      out(ctx, JSON.stringify({ public_key: key, fingerprint: fp }));
    } else {
      out(ctx, key);
      out(ctx, `${paint(ctx, "dim", "fingerprint:")} ${fp}`);
    }
    if (values.qr === true) {
      // With --json, stdout stays one JSON document: the drawing goes to stderr.
      const sink = values.json === true ? ctx.io.stderr : ctx.io.stdout;
      sink.write(await drawQr(key, ctx.color));
    }
  },
};
