/**
 * The example bot in docs/examples/echo_bot.ts runs as written: a real relay, the bot as its own
 * `deno run` process with nothing but @chat-p2p/client, and a person on the real CLI who gets an
 * answer to what they send.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cliEnv, type CliOptions, PROJECT_ROOT, runCliOk } from "./cli_helpers.ts";
import { RelayProcess } from "./relay_process.ts";

const BOT = join(PROJECT_ROOT, "docs", "examples", "echo_bot.ts");

Deno.test("docs/examples/echo_bot.ts imports only @chat-p2p/client, and type-checks", async () => {
  const source = await Deno.readTextFile(BOT);
  const specifiers = [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
  assert.deepEqual(specifiers, ["@chat-p2p/client"]);
  assert.ok(source.split("\n").length <= 35, "a short example");
  const check = await new Deno.Command(Deno.execPath(), { args: ["check", BOT], cwd: PROJECT_ROOT })
    .output();
  assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
});

Deno.test("echo bot: a message sent to it gets its answer, and is acked", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-echo-bot-" });
  await using relay = await RelayProcess.start();
  const alice: CliOptions = { home, profile: "alice" };
  const botProfile: CliOptions = { home, profile: "bot" };
  await runCliOk(["init"], alice);
  const botKey = (await runCliOk(["init"], botProfile)).stdout.trim().split("\n")[0];
  await runCliOk(["add-contact", "bot", botKey], alice);

  const bot = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BOT, relay.url],
    cwd: PROJECT_ROOT,
    env: cliEnv(botProfile),
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  const reading = (async () => {
    for await (const chunk of bot.stderr.pipeThrough(new TextDecoderStream())) log += chunk;
  })();
  try {
    const until = (re: RegExp) => poll(() => re.test(log), `bot log to match ${re}:\n${log}`);
    await until(/echo bot .* listening on/);
    const id = (await runCliOk(["send", relay.url, "bot", "ping"], alice)).stdout.trim();

    // Alice syncs until the answer is there.
    let answer: Record<string, string> | undefined;
    await poll(async () => {
      const out = (await runCliOk(["sync", relay.url, "--json"], alice)).stdout;
      answer ??= out.split("\n").filter(Boolean).map((l) => JSON.parse(l))[0];
      return answer !== undefined;
    }, "an answer from the bot");
    assert.equal(answer!.text, "echo: ping");
    assert.equal(answer!.contact, "bot");
    assert.equal(answer!.from, botKey);

    // The bot stored and acked the message (it is in its history, not at the relay), and
    // alice's message is delivered (✓✓): the bot's receipt came back with the answer.
    const botHistory = (await runCliOk(["history", await aliceKey(alice), "--json"], botProfile))
      .stdout.trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(botHistory.map((m) => [m.dir, m.text]), [["in", "ping"], [
      "out",
      "echo: ping",
    ]]);
    assert.equal(botHistory[0].id, id);
    const mine = JSON.parse(
      (await runCliOk(["history", "bot", "--json"], alice)).stdout.split("\n")[0],
    );
    assert.equal(mine.state, "delivered");
  } finally {
    bot.kill("SIGTERM");
    const status = await bot.status;
    await reading;
    assert.equal(status.code, 0, log);
    await Deno.remove(home, { recursive: true });
  }
});

async function aliceKey(alice: CliOptions): Promise<string> {
  return (await runCliOk(["id"], alice)).stdout.split("\n")[0];
}

async function poll(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 30_000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
