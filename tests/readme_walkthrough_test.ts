/**
 * The README's alice/bob walkthrough, run as written: every command of its `sh` blocks, in order,
 * with the `chat-p2p` launcher that `deno task -q install` puts in a temporary install root, the
 * relay it starts on a port of its own (the one line the README says to change), and the
 * interactive `chat` step in a real terminal (tmux). Lines of `# ...` right after a command are
 * its expected output (times and runs of spaces aside). So the README stays true.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { delay } from "@chat-p2p/protocol/async";
import { cliEnv } from "./cli_helpers.ts";
import { closedPort } from "./fake_relay.ts";
import { Pty } from "./pty.ts";
import { ROOT } from "./relay_process.ts";

const readme = await Deno.readTextFile(join(ROOT, "README.md"));

/** The walkthrough's commands, each with the `# ...` output lines that follow it. */
function walkthrough(): Array<{ line: string; expected: string[] }> {
  const start = readme.indexOf("## Walkthrough: alice and bob");
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  const steps: Array<{ line: string; expected: string[] }> = [];
  for (const block of section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
    for (const line of block[1].split("\n")) {
      if (line.trim() === "") continue;
      if (line.startsWith("# ")) steps.at(-1)?.expected.push(line.slice(2));
      else steps.push({ line, expected: [] });
    }
  }
  return steps;
}

/** Kills `pid` and every process under it. */
async function killTree(pid: number): Promise<void> {
  const r = await new Deno.Command("pgrep", { args: ["-P", String(pid)], stdout: "piped" })
    .output();
  const children = new TextDecoder().decode(r.stdout).split("\n").filter(Boolean).map(Number);
  try {
    Deno.kill(pid, "SIGTERM");
  } catch { /* gone */ }
  for (const child of children) await killTree(child);
}

/** A line as compared: times as HH:MM, runs of spaces as one. */
const normal = (line: string) =>
  line.replace(/\[\d\d:\d\d\]/g, "[HH:MM]").replace(/\s+/g, " ").trim();

Deno.test("README walkthrough: every command works as written, with the installed chat-p2p", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-readme-" });
  const root = join(home, "deno-root");
  const env = {
    ...cliEnv({ home }),
    PATH: `${join(root, "bin")}:${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`,
    DENO_INSTALL_ROOT: root,
    RELAY_DATA_DIR: join(home, "relay-data"),
    NO_COLOR: "1",
  };
  const steps = walkthrough();
  assert.ok(steps.some((s) => s.line === "deno task -q install"), "the walkthrough installs");
  const port = closedPort();
  /** Lines that set shell variables, run again before every command. */
  const prelude: string[] = [];
  const background: Deno.ChildProcess[] = [];
  let ranChat = false;
  try {
    for (const { line, expected } of steps) {
      const sh = (command: string) => ["set -eo pipefail", ...prelude, command].join("\n");
      if (/^[A-Z_]+=\S*$/.test(line) || /^[A-Z_]+=\$\(/.test(line)) {
        // A reader on another port changes PORT and nothing else.
        prelude.push(line.startsWith("PORT=") ? `PORT=${port}` : line);
        continue;
      }
      if (line.includes("deno task -q relay")) {
        const relay = new Deno.Command("bash", {
          args: ["-c", sh(line)],
          cwd: ROOT,
          env,
          clearEnv: true,
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        background.push(relay);
        const reader = relay.stdout.pipeThrough(new TextDecoderStream()).getReader();
        for (let seen = ""; !seen.includes('"msg":"listening"');) {
          const { value, done } = await reader.read();
          assert.ok(!done, `the relay ended before listening: ${seen}`);
          seen += value;
        }
        reader.releaseLock();
        relay.stdout.cancel().catch(() => {});
        continue;
      }
      if (/chat-p2p chat \w+$/.test(line) && !line.includes("|")) {
        // The interactive step: bob writes a line in a real terminal and leaves.
        await using pty = await Pty.start(["bash", "-c", sh(line)], { cwd: ROOT, env });
        await pty.waitFor(/^>$/m, { timeoutMs: 30_000 });
        await pty.waitFor("alice: are you there?"); // recent history first
        await pty.type("hello from the chat");
        await pty.press("Enter");
        await pty.waitFor(/you: hello from the chat {2}✓/);
        await pty.type("/quit");
        await pty.press("Enter");
        assert.equal(await pty.waitForExit(), 0, await pty.screen());
        ranChat = true;
        continue;
      }
      const r = await new Deno.Command("bash", {
        args: ["-c", sh(line)],
        cwd: ROOT,
        env,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const [stdout, stderr] = [r.stdout, r.stderr].map((b) => new TextDecoder().decode(b));
      assert.equal(r.code, 0, `${line}\nexited ${r.code}:\n${stdout}\n${stderr}`);
      if (expected.length > 0) {
        assert.deepEqual(
          stdout.split("\n").filter(Boolean).map(normal),
          expected.map(normal),
          `${line}: the output the README shows`,
        );
      }
    }
    assert.ok(ranChat, "the interactive chat step ran");
    // What the walkthrough did, as alice's history holds it.
    const h = await new Deno.Command("bash", {
      args: ["-c", "CHAT_PROFILE=alice chat-p2p history bob --json"],
      cwd: ROOT,
      env,
      clearEnv: true,
      stdout: "piped",
    }).output();
    const texts = new TextDecoder().decode(h.stdout).split("\n").filter(Boolean)
      .map((l) => JSON.parse(l).text);
    assert.deepEqual(texts, [
      "hi bob",
      "are you there?",
      "hello from the chat",
      "line one",
      "line two",
    ]);
  } finally {
    for (const p of background) await killTree(p.pid);
    for (const p of background) await p.status;
    await delay(50);
    await Deno.remove(home, { recursive: true });
  }
});
