/**
 * docs/CLI.md stays true: every command that prints data has its `--json` shape documented, and
 * each documented shape is what the command really prints (the same keys, values of the same
 * kind), run against a real relay.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { generateKeyPair, toBase64 } from "@chat-p2p/protocol";
import { COMMANDS } from "../cli/app.ts";
import { eventJson } from "../cli/commands/listen.ts";
import { runInProcess } from "../cli/testing.ts";
import { startFakeRelay } from "./fake_relay.ts";
import { spawnCli } from "./cli_helpers.ts";
import { RelayProcess, ROOT } from "./relay_process.ts";

const doc = await Deno.readTextFile(join(ROOT, "docs", "CLI.md"));

/** The documented examples: the command of each `### \`...\`` heading and its JSON lines. */
function documented(): Map<string, unknown[]> {
  const shapes = new Map<string, unknown[]>();
  for (const m of doc.matchAll(/^### `([^`]+)`\n[\s\S]*?^```jsonl\n([\s\S]*?)^```$/gm)) {
    shapes.set(m[1], m[2].split("\n").filter(Boolean).map((l) => JSON.parse(l)));
  }
  return shapes;
}

type Kind = "null" | "string" | "number" | "boolean" | "array" | "object";
const kind = (v: unknown): Kind =>
  v === null ? "null" : Array.isArray(v) ? "array" : typeof v as Kind;

/** Asserts `actual` has the keys of `example` and values of the same kinds (null: either). */
function assertShape(actual: unknown, example: unknown, where: string): void {
  const [a, e] = [kind(actual), kind(example)];
  if (a === "null" || e === "null") return;
  assert.equal(a, e, `${where}: ${JSON.stringify(actual)} is not like ${JSON.stringify(example)}`);
  if (a === "array") {
    const [first, ex] = [(actual as unknown[])[0], (example as unknown[])[0]];
    if (first !== undefined && ex !== undefined) assertShape(first, ex, `${where}[0]`);
  } else if (a === "object") {
    const ao = actual as Record<string, unknown>;
    const eo = example as Record<string, unknown>;
    assert.deepEqual(Object.keys(ao).sort(), Object.keys(eo).sort(), `${where}: keys`);
    for (const k of Object.keys(eo)) assertShape(ao[k], eo[k], `${where}.${k}`);
  }
}

const lines = (s: string) => s.split("\n").filter(Boolean).map((l) => JSON.parse(l));

Deno.test("docs/CLI.md: every command with --json has its shape documented", () => {
  const headings = [...documented().keys()].map((h) => h.split(" ")[0]);
  const withJson = COMMANDS.filter((c) => /^ {2}--json\b/m.test(c.usage)).map((c) => c.name);
  assert.ok(withJson.length >= 10, withJson.join(" "));
  assert.deepEqual(withJson.filter((n) => !headings.includes(n)), []);
  assert.deepEqual(headings.filter((h) => !withJson.includes(h)), []);
});

Deno.test("docs/CLI.md: each documented JSON shape is what the command prints", async () => {
  const shapes = documented();
  const home = await Deno.makeTempDir({ prefix: "chat-json-" });
  await using relay = await RelayProcess.start();
  const alice = { home, profile: "alice" };
  const bob = { home, profile: "bob" };
  /** Runs a command that must succeed; its stdout as JSON lines when it printed JSON. */
  const ok = async (argv: string[], opts: typeof alice) => {
    const r = await runInProcess(argv, opts);
    assert.equal(r.code, 0, `${argv.join(" ")}: ${r.stderr}`);
    return argv.includes("--json") ? lines(r.stdout) : [];
  };
  const real = new Map<string, unknown[]>();
  try {
    const aliceKey = (await runInProcess(["init"], alice)).stdout.trim();
    const bobKey = (await runInProcess(["init"], bob)).stdout.trim();
    await ok(["add-contact", "bob", bobKey], alice);
    await ok(["add-contact", "alice", aliceKey], bob);
    await ok(["config", "set", "relay", relay.url], alice);
    await ok(["config", "set", "relay", relay.url], bob);

    real.set("id --json", await ok(["id", "--json"], alice));
    real.set("version --json", await ok(["version", "--json"], alice));
    real.set("verify <name> --json", await ok(["verify", "bob", "--json"], alice));
    await ok(["verify", "bob", "--yes"], alice);
    real.set("contacts --json", await ok(["contacts", "--json"], alice));
    real.set("config get --json", await ok(["config", "get", "--json"], alice));

    // A message refused for good by a relay, then resent through the real one.
    await using refusing = startFakeRelay(() => ({ code: "spoofed_sender" }));
    assert.equal((await runInProcess(["send", refusing.url, "bob", "again"], alice)).code, 1);
    real.set("resend <contact> --json", await ok(["resend", "bob", "--json"], alice));

    real.set("send --json", await ok(["send", "bob", "hi bob", "--json"], alice));
    real.set("sync --json", await ok(["sync", "--json"], bob));
    await ok(["send", "alice", "hi alice"], bob);
    const stranger = generateKeyPair();
    real.set("history <contact> --json", await ok(["history", "bob", "--json"], alice));

    // bob listens: alice's message, then the receipt for his own once alice syncs.
    const listener = spawnCli(["listen", "--json"], bob);
    await listener.waitForStdout('"type":"synced"');
    await ok(["send", "bob", "while you listen"], alice);
    await listener.waitForStdout("while you listen");
    await ok(["sync"], alice);
    await listener.waitForStdout('"type":"receipt"');
    const events = lines((await listener.kill("SIGTERM")).stdout);
    events.push(
      eventJson({
        type: "rejected",
        id: "9a8b7c6d5e4f3a2b",
        from: toBase64(stranger.publicKey),
        fingerprint: "8600 b4fe f8b0 afb9 7c62",
        reason: "Cannot open envelope",
      })!,
    );
    real.set("listen --json", events);
    real.set("chats --json", await ok(["chats", "--json"], alice));

    assert.deepEqual([...real.keys()].sort(), [...shapes.keys()].sort());
    for (const [heading, examples] of shapes) {
      const outputs = real.get(heading)!;
      assert.ok(outputs.length > 0, `${heading} printed nothing`);
      for (const out of outputs) {
        // Several kinds of line (listen): the example with the same "type".
        const type = (out as { type?: string }).type;
        const example = examples.find((e) => (e as { type?: string }).type === type);
        assert.ok(example, `${heading}: no documented shape for ${JSON.stringify(out)}`);
        assertShape(out, example, heading);
      }
      if (heading === "listen --json") {
        const seen = new Set(outputs.map((o) => (o as { type: string }).type));
        for (const e of examples) {
          assert.ok(seen.has((e as { type: string }).type), `${heading}: ${JSON.stringify(e)}`);
        }
      }
    }
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});
