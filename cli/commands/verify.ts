/**
 * `chat-p2p verify <name>`: shows the safety number with a contact, and marks the contact
 * verified once the person confirms the numbers match.
 *
 * @module
 */
import { toBase64 } from "@chat-p2p/protocol";
import {
  formatSafetyNumber,
  keyFingerprint,
  markVerified,
  openStore,
  safetyNumber,
  verificationState,
} from "@chat-p2p/client";
import { type Command, type Context, err, out, paint, parseCommandArgs, warn } from "../context.ts";
import { CliError } from "../errors.ts";
import { askYesNo, canAsk } from "../ui/prompt.ts";
import { drawQr } from "../ui/qr.ts";

const USAGE = `Usage: chat-p2p verify <name> [--yes] [--qr] [--json]

Shows the safety number you share with contact <name>: 60 digits computed from your key and
theirs, the same on both sides (Signal's construction). Your contact runs \`chat-p2p verify\`
with your name and reads theirs; compare them in person or on a call (or draw it with --qr and
compare by scanning). If they match, nobody swapped a key between you: answer y, and the contact
is marked verified (\`chat-p2p contacts\` shows it, and a later change of their key is refused
unless forced). If they differ, do not trust this key.

Without a terminal nothing is asked and nothing is marked unless --yes says you compared them.

Options:
  --yes        mark the contact verified without asking (you compared the numbers)
  --qr         also draw the safety number as a QR code
  --json       print {"contact","public_key","fingerprint","safety_number","verified","verified_at"}
  -h, --help   show this help`;

/** The `verify` command. */
export const verifyCommand: Command = {
  name: "verify",
  summary: "compare safety numbers with a contact and mark it verified",
  usage: USAGE,
  async run(args: string[], ctx: Context): Promise<void> {
    const { values, positionals } = parseCommandArgs(this, args, {
      yes: { type: "boolean" },
      qr: { type: "boolean" },
      json: { type: "boolean" },
    }, ["name"]);
    const store = openStore(ctx.io.env, ctx.profile, (m) => warn(ctx, m));
    const me = toBase64(store.loadPublicKey());
    const peer = store.resolvePeer(positionals[0]);
    const contact = store.loadContacts().find((c) => c.name === peer.name)!;
    const digits = safetyNumber(me, contact.key);
    const number = formatSafetyNumber(digits);
    const state = verificationState(contact);
    const json = values.json === true;
    if (!json) {
      err(ctx, `Safety number with ${contact.name} (fingerprint ${peer.fingerprint}):`);
      err(ctx, "");
      // Three rows of four groups, as Signal shows it; the number itself on stdout.
      const groups = number.split(" ");
      for (let i = 0; i < groups.length; i += 4) out(ctx, groups.slice(i, i + 4).join(" "));
      err(ctx, "");
      if (state === "changed") {
        warn(
          ctx,
          `${contact.name}'s key changed since you verified it on ${contact.verified!.at}: ` +
            "compare the numbers again",
        );
      }
    }
    if (values.qr === true) {
      (json ? ctx.io.stderr : ctx.io.stdout).write(await drawQr(digits, ctx.color));
    }
    let verified = state === "verified" ? contact.verified : undefined;
    if (values.yes === true) {
      verified = markVerified(store, contact.name, ctx.io.now()).verified;
      if (!json) err(ctx, paint(ctx, "green", `${contact.name} is verified`));
    } else if (!json && canAsk(ctx)) {
      err(
        ctx,
        `Compare it with what ${contact.name}'s \`chat-p2p verify\` shows for you, in person or ` +
          "on a call.",
      );
      if (!(await askYesNo(ctx, "Do the numbers match?"))) {
        throw new CliError(
          `${contact.name} is not marked verified; if the numbers differ, someone may be ` +
            "between you: do not trust this key",
        );
      }
      verified = markVerified(store, contact.name, ctx.io.now()).verified;
      err(ctx, paint(ctx, "green", `${contact.name} is verified`));
    } else if (!json && state !== "verified") {
      err(ctx, `not marked verified: compare the numbers, then run with --yes`);
    }
    if (json) {
      out(
        ctx,
        JSON.stringify({
          contact: contact.name,
          public_key: contact.key,
          fingerprint: keyFingerprint(contact.key),
          safety_number: digits,
          verified: verified !== undefined,
          verified_at: verified?.at ?? null,
        }),
      );
    }
  },
};
