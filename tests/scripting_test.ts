/**
 * The scripting interface against a real relay, through the real CLI: `send --wait delivered`
 * and its exit codes, `listen --json` (acks only what it wrote), `listen --exec` (acks only after
 * the command exits 0; a command that fails once gets the message again).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { delay } from "@chat-p2p/protocol/async";
import {
  cliCommand,
  cliEnv,
  type CliOptions,
  pairedProfiles,
  PROJECT_ROOT,
  runCli,
  runCliOk,
  spawnCli,
} from "./cli_helpers.ts";
import { RelayProcess } from "./relay_process.ts";

const jsonLines = (s: string) => s.split("\n").filter(Boolean).map((l) => JSON.parse(l));

async function withPeople(
  fn: (p: { home: string; alice: CliOptions; bob: CliOptions }) => Promise<void>,
): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "chat-scripting-" });
  try {
    const { alice, bob } = await pairedProfiles(home);
    await fn({ home, alice, bob });
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

Deno.test("send --wait delivered: exit 4 while bob is away, 0 once his receipt comes", async () => {
  await using relay = await RelayProcess.start();
  await withPeople(async ({ alice, bob }) => {
    const away = await runCli(
      [
        "send",
        relay.url,
        "bob",
        "are you there?",
        "--wait",
        "delivered",
        "--timeout",
        "2",
        "--json",
      ],
      alice,
    );
    assert.equal(away.code, 4, away.stderr);
    assert.equal(jsonLines(away.stdout)[0].state, "accepted", "the id, accepted");
    assert.match(
      away.stderr,
      /the relay has the message, but bob's client did not confirm it within 2 s/,
    );

    // bob listens; now a receipt comes back at once.
    await using listener = spawnCli(["listen", relay.url, "--json"], bob);
    await listener.waitForStdout('"type":"synced"');
    const sent = await runCli(
      ["send", relay.url, "bob", "and now?", "--wait", "delivered", "--timeout", "20", "--json"],
      alice,
    );
    assert.equal(sent.code, 0, sent.stderr);
    const o = jsonLines(sent.stdout)[0];
    assert.deepEqual(Object.keys(o).sort(), ["contact", "id", "state", "to"]);
    assert.equal(o.state, "delivered");
    await listener.kill("SIGTERM");
  });
});

Deno.test("listen --json: every event a JSON line, messages acked once written; SIGTERM exits 0", async () => {
  await using relay = await RelayProcess.start();
  await withPeople(async ({ alice, bob }) => {
    await runCliOk(["send", relay.url, "bob", "waiting for you"], alice);
    const listener = spawnCli(["listen", relay.url, "--json"], bob);
    await listener.waitForStdout("waiting for you");
    await runCliOk(["send", relay.url, "bob", "live one"], alice);
    await listener.waitForStdout("live one");
    const r = await listener.kill("SIGTERM");
    assert.equal(r.code, 0, r.stderr);
    const events = jsonLines(r.stdout);
    assert.deepEqual(events.filter((e) => e.type === "message").map((e) => e.text), [
      "waiting for you",
      "live one",
    ]);
    assert.ok(events.some((e) => e.type === "connection" && e.state === "connected"));
    assert.ok(events.some((e) => e.type === "synced"));
    // Acked: nothing is left at the relay, and alice gets both receipts.
    const again = spawnCli(["listen", relay.url, "--json"], bob);
    await again.waitForStdout('"type":"synced"');
    assert.deepEqual(
      jsonLines((await again.kill("SIGTERM")).stdout).filter((e) => e.type === "message"),
      [],
    );
    await runCliOk(["sync", relay.url], alice); // the receipts
    const history = await runCliOk(["history", "bob", "--json"], alice);
    assert.deepEqual(jsonLines(history.stdout).map((m) => m.state), ["delivered", "delivered"]);
  });
});

Deno.test("listen --json: a line that could not be written is not acked (stdout closed): it comes again", async () => {
  await using relay = await RelayProcess.start();
  await withPeople(async ({ alice, bob }) => {
    const { cmd, args } = cliCommand(["listen", relay.url, "--json"]);
    const child = new Deno.Command(cmd, {
      args,
      cwd: PROJECT_ROOT,
      env: cliEnv(bob),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    // Read until it is up, then go away: the reader of its stdout is gone.
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    for (let seen = ""; !seen.includes('"type":"synced"');) seen += (await reader.read()).value;
    await reader.cancel();
    await runCliOk(["send", relay.url, "bob", "do not lose me"], alice);
    const status = await child.status;
    assert.equal(status.code, 1, await stderr);
    assert.match(await stderr, /stdout was closed; what was not printed stays at the relay/);
    const again = spawnCli(["listen", relay.url, "--json"], bob);
    await again.waitForStdout("do not lose me");
    const m = jsonLines((await again.kill("SIGTERM")).stdout).find((e) => e.type === "message");
    assert.equal(m.duplicate, true, "stored by the first listen, never acked: delivered again");
  });
});

Deno.test("listen --exec: acked only after the command exits 0; a command that fails once gets it again", async () => {
  await using relay = await RelayProcess.start();
  await withPeople(async ({ home, alice, bob }) => {
    const marker = join(home, "failed-once");
    const out = join(home, "handled.jsonl");
    // Fails the first time it runs, then appends what it got (stdin and the environment).
    const command = `if [ ! -e '${marker}' ]; then touch '${marker}'; exit 7; fi; ` +
      `{ cat; printf '%s|%s|%s\\n' "$CHAT_MESSAGE_ID" "$CHAT_CONTACT" "$CHAT_FROM"; } >> '${out}'`;
    const listener = spawnCli(["listen", relay.url, "--exec", command], bob);
    await listener.waitForStderr("listening on");
    const id = (await runCliOk(["send", relay.url, "bob", "handle me"], alice)).stdout.trim();
    await listener.waitForStderr(/exited 7 for message .*not acked, handing it on again in \d+ s/);
    for (let i = 0; i < 200; i++) {
      if ((await Deno.readTextFile(out).catch(() => "")).includes("|alice|")) break;
      await delay(50);
    }
    const r = await listener.kill("SIGTERM");
    assert.equal(r.code, 0, r.stderr);
    const [json, env] = (await Deno.readTextFile(out)).trim().split("\n");
    const m = JSON.parse(json);
    assert.deepEqual([m.type, m.id, m.text, m.contact], ["message", id, "handle me", "alice"]);
    const aliceKey = (await runCliOk(["id"], alice)).stdout.split("\n")[0];
    assert.equal(env, `${id}|alice|${aliceKey}`);
    // Handled once, then acked: the relay holds nothing more for bob.
    const again = spawnCli(["listen", relay.url, "--json"], bob);
    await again.waitForStdout('"type":"synced"');
    const left = jsonLines((await again.kill("SIGTERM")).stdout).filter((e) =>
      e.type === "message"
    );
    assert.deepEqual(left, []);
  });
});
