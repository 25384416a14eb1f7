/**
 * A real full disk, by hand (not part of `deno task test`: it mounts a tmpfs, so it needs root
 * and CAP_SYS_ADMIN). Fills an embedded relay's small filesystem until sends are refused, then
 * lets the recipient drain and ack, and reports whether the acks held (no redelivery), whether
 * /readyz told the truth, and whether sends were accepted again afterwards.
 *
 * Usage: sudo deno run -A bench/full_disk.ts [--size-mb 24] [--body-bytes 4193]
 * Prints one JSON object. Run it in an older checkout to see the behaviour before a change.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { envelope, pairBox, RawClient, type TestMailbox } from "../tests/raw_client.ts";
import { RelayProcess } from "../tests/relay_process.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "size-mb": { type: "string", default: "24" },
    // A padded 4 KiB payload in a pair body (a valid body size).
    "body-bytes": { type: "string", default: "4193" },
  },
});
const sizeMb = Number(values["size-mb"]), bodyBytes = Number(values["body-bytes"]);

async function sh(cmd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function ready(port: number): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: r.status, body: await r.text() };
}

/** Sends (64 in flight) until the relay refuses one; returns the accepted ids and the refusal. */
async function fill(url: string, bob: TestMailbox) {
  await using a = await RawClient.connect(url);
  const accepted: string[] = [];
  const sendOne = () => a.sendEnvelope(envelope(bob, undefined, bodyBytes));
  for (let i = 0; i < 64; i++) sendOne();
  for (;;) {
    const f = await a.next(undefined, 30_000);
    if (f.type === "accepted") {
      accepted.push(f.id);
      sendOne();
    } else if (f.type === "error" && f.id) return { accepted, refusal: f };
  }
}

/** Opens `box`, takes everything pending, acks it, and returns how many there were. */
async function drain(url: string, box: TestMailbox): Promise<{ got: number; ackError?: string }> {
  await using c = await RawClient.connect(url);
  const ids = (await c.openAndSync(box, 30_000)).map((e) => e.id);
  for (let i = 0; i < ids.length; i += 1000) c.ack(box, ids.slice(i, i + 1000));
  c.send({ v: 2, type: "ping", nonce: "after-acks" });
  for (;;) {
    const f = await c.next(undefined, 30_000);
    if (f.type === "pong") return { got: ids.length };
    if (f.type === "error") return { got: ids.length, ackError: f.code };
  }
}

const mnt = await Deno.makeTempDir({ prefix: "chat-full-disk-" });
await sh("mount", "-t", "tmpfs", "-o", `size=${sizeMb}m,mode=0700`, "tmpfs", mnt);
const unmount = () => sh("umount", mnt).then(() => Deno.remove(mnt));
Deno.addSignalListener("SIGINT", () => unmount().finally(() => Deno.exit(130)));
try {
  await using relay = await RelayProcess.start({
    dataDir: `${mnt}/relay-data`,
    env: { RELAY_FRAME_RATE: "0", RELAY_SEND_RATE: "0", RELAY_MAILBOX_MAX_COUNT: "1000000" },
  });
  const bob = pairBox();
  await RawClient.register(relay.url, bob);
  const { accepted, refusal } = await fill(relay.url, bob);
  const readyWhenFull = await ready(relay.port);
  const first = await drain(relay.url, bob);
  const second = await drain(relay.url, bob);
  await new Promise((r) => setTimeout(r, 500));
  const readyAfterDrain = await ready(relay.port);
  let acceptedAfter = false;
  {
    await using a = await RawClient.connect(relay.url);
    const f = await a.sendAndWait(envelope(bob), undefined, 30_000);
    acceptedAfter = f.type === "accepted";
    if (!acceptedAfter) console.error("after drain:", JSON.stringify(f));
  }
  const df = new TextDecoder().decode(
    (await new Deno.Command("df", { args: ["-k", mnt] }).output()).stdout,
  );
  console.log(JSON.stringify(
    {
      tmpfs_mb: sizeMb,
      accepted_before_full: accepted.length,
      refusal: { code: refusal.code, message: refusal.message },
      readyz_when_full: readyWhenFull,
      first_drain: first,
      redelivered_after_ack: second.got,
      readyz_after_drain: readyAfterDrain,
      send_accepted_after_drain: acceptedAfter,
      df_after: df.trim().split("\n").at(-1),
      files_after: [...Deno.readDirSync(`${mnt}/relay-data`)].map((e) =>
        `${e.name} ${Deno.statSync(`${mnt}/relay-data/${e.name}`).size}`
      ),
      relay_warnings: relay.logs.filter((l) => /"level":"(warn|error)"/.test(l)).slice(0, 6),
    },
    null,
    2,
  ));
} finally {
  await unmount();
}
