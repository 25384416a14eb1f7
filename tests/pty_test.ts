/** The pseudo-terminal harness (pty.ts), proven on the CLI's own terminal prompts. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliCommand, cliEnv } from "./cli_helpers.ts";
import { Pty } from "./pty.ts";

/** `chat-p2p <args>` in a terminal of the default size, as `home`'s profile alice. */
function cliInPty(home: string, args: string[]): Promise<Pty> {
  const { cmd, args: argv } = cliCommand(args);
  return Pty.start([cmd, ...argv], { env: cliEnv({ home, profile: "alice" }) });
}

Deno.test("pty: init --passphrase asks twice with echo off in a real terminal; id; the passphrase holds", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-pty-home-" });
  const secret = "correct horse battery staple";
  try {
    let key: string;
    {
      await using init = await cliInPty(home, ["init", "--passphrase"]);
      await init.waitFor("New passphrase for profile alice (not shown as you type):");
      await init.type(secret);
      await init.press("Enter");
      await init.waitFor("Type it again to confirm:");
      await init.type(secret);
      await init.press("Enter");
      assert.equal(await init.waitForExit(), 0, await init.screen());
      const screen = await init.screen();
      assert.ok(!screen.includes("correct horse"), `the passphrase was echoed:\n${screen}`);
      assert.match(screen, /secret key encrypted with your passphrase/);
      key = /^([A-Za-z0-9+/]{43}=)$/m.exec(screen)![1];
    }
    {
      await using id = await cliInPty(home, ["id"]);
      assert.equal(await id.waitForExit(), 0, await id.screen());
      assert.equal((await id.screen()).split("\n")[0], key, "id needs no passphrase");
    }
    // The passphrase typed blind twice is the one stored: a wrong one is refused, it is taken.
    await using remove = await cliInPty(home, ["passphrase", "--remove"]);
    await remove.waitFor("Passphrase for profile alice:");
    await remove.type("not it");
    await remove.press("Enter");
    await remove.waitFor("wrong passphrase, try again");
    await remove.type(secret);
    await remove.press("Enter");
    assert.equal(await remove.waitForExit(), 0, await remove.screen());
    assert.match(await remove.screen(), /passphrase removed/);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("pty: the terminal has the asked size, and a large paste arrives whole", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-pty-" });
  const out = join(dir, "pasted");
  // Raw mode: a canonical-mode terminal would cut a line at 4095 bytes.
  const script = `stty size; stty raw -echo; head -c 20000 > '${out}'; stty sane; echo pasted`;
  try {
    await using pty = await Pty.start(["sh", "-c", script], {
      width: 90,
      height: 20,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    });
    await pty.waitFor(/^20 90$/m);
    const text = Array.from({ length: 20000 }, (_, i) => "abcdefghij"[i % 10]).join("");
    await pty.paste(text);
    await pty.waitFor(/^pasted$/m);
    assert.equal(await Deno.readTextFile(out), text);
    assert.equal(await pty.waitForExit(), 0);
    assert.equal((await pty.screen()).split("\n").length, 20 + 1, "20 rows, then a final newline");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Whether process `pid` still runs (not gone, not a zombie) after up to 2 s (Linux /proc). */
async function runsSoon(pid: number): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    try {
      const state = (await Deno.readTextFile(`/proc/${pid}/stat`)).split(") ")[1][0];
      if (state === "Z" || state === "X") return false;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

Deno.test("pty: waitFor fails with the screen, and kill ends a command that ignores hangups", async () => {
  const script = "trap '' HUP; echo ready $$; while :; do sleep 1; done";
  const pty = await Pty.start(["sh", "-c", script], {
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
  });
  let pid = 0;
  try {
    pid = Number(/^ready (\d+)$/m.exec(await pty.waitFor(/^ready \d+$/m))![1]);
    await assert.rejects(
      pty.waitFor("never shown", { timeoutMs: 200 }),
      /timed out waiting for never shown in the terminal; it shows:\nready \d+\n/,
    );
    assert.equal(await pty.exitStatus(), null, "still running");
  } finally {
    await pty.kill();
  }
  for (const p of [pid, pty.pid]) assert.ok(!await runsSoon(p), `process ${p} survived kill()`);
  await pty.kill(); // idempotent
});

Deno.test("pty: the exit status is the command's, also when a signal ends it", async () => {
  const env = { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" };
  for (const [script, status] of [["exit 3", 3], ["kill -TERM $$", 128 + 15]] as const) {
    await using pty = await Pty.start(["sh", "-c", script], { env });
    assert.equal(await pty.waitForExit(), status, script);
  }
});
