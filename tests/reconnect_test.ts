/**
 * A relay that goes away under a running `chat`, as real subprocesses: the chat notices (1001
 * on SIGTERM, an abnormal close on SIGKILL), keeps what is typed meanwhile in history as
 * "sending" and shows it as queued, reconnects with backoff by itself once the relay is back on
 * the same port, and sends the queued lines under their ids. The recipient gets each exactly
 * once, in order. A chat killed while the relay is down loses nothing: the next `send` or `chat`
 * sends what it left behind. A chat started while the relay is down opens anyway and sends what
 * was typed once the relay is up.
 */
import assert from "node:assert/strict";
import { type CliOptions, jsonLines, pairedProfiles, runCliOk, spawnCli } from "./cli_helpers.ts";
import { closedPort } from "./fake_relay.ts";
import { RelayProcess } from "./relay_process.ts";

const cli = runCliOk;

async function setup() {
  const home = await Deno.makeTempDir({ prefix: "chat-reconnect-" });
  const dataDir = await Deno.makeTempDir({ prefix: "chat-relay-" });
  const { alice, bob } = await pairedProfiles(home);
  return {
    home,
    dataDir,
    alice,
    bob,
    async [Symbol.asyncDispose]() {
      await Deno.remove(home, { recursive: true });
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

const bobHistory = async (bob: CliOptions) =>
  jsonLines((await cli(["history", "alice", "--json"], bob)).stdout);

for (const signal of ["SIGTERM", "SIGKILL"] as const) {
  Deno.test(`reconnect: relay ${signal}ed under a chat; lines typed meanwhile are queued, then sent once, in order`, async () => {
    await using env = await setup();
    const { alice, bob, dataDir } = env;
    const relay1 = await RelayProcess.start({ dataDir });
    const port = relay1.port;
    let relay2: RelayProcess | undefined;
    try {
      await using chat = spawnCli(["chat", relay1.url, "alice", "--timeout", "60"], bob);
      await chat.writeLine("before the outage");
      await chat.waitForStderr(/✓ accepted: before the outage/);

      await relay1.stop(signal);
      const code = signal === "SIGTERM" ? "1001, relay going away" : "1006, connection lost";
      await chat.waitForStderr(
        new RegExp(`connection to relay lost \\(code ${code}[:)]`),
      );

      await chat.writeLine("typed while down 1");
      await chat.writeLine("typed while down 2");
      await chat.waitForStderr(/… queued \(not connected\): typed while down \d/, { count: 2 });
      assert.ok(
        chat.stderr.indexOf("queued (not connected): typed while down 1") <
          chat.stderr.indexOf("queued (not connected): typed while down 2"),
      );

      // Already in history, before anything was sent: a crash now would lose nothing.
      const queued = (await bobHistory(bob)).filter((m) => m.text.startsWith("typed while"));
      assert.deepEqual(queued.map((m) => [m.text, m.state]), [
        ["typed while down 1", "sending"],
        ["typed while down 2", "sending"],
      ]);
      assert.doesNotMatch(chat.stderr, /✓ accepted: typed while/);

      relay2 = await RelayProcess.start({ dataDir, port });
      await chat.waitForStderr(/reconnected; sending 2 queued messages/);
      await chat.waitForStderr(/✓ accepted: typed while down \d/, { count: 2 });
      const result = await chat.end();
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "");
      assert.equal((result.stderr.match(/\breconnected\b/g) ?? []).length, 1);

      // Accepted, under the ids they were given when typed.
      const accepted = (await bobHistory(bob)).filter((m) => m.text.startsWith("typed while"));
      assert.deepEqual(accepted.map((m) => m.id), queued.map((m) => m.id));
      assert.deepEqual(accepted.map((m) => m.state), ["accepted", "accepted"]);

      // Alice gets all three exactly once, in order, with the same ids.
      const got = jsonLines((await cli(["sync", relay2.url, "--json"], alice)).stdout);
      assert.deepEqual(got.map((m) => m.text), [
        "before the outage",
        "typed while down 1",
        "typed while down 2",
      ]);
      assert.deepEqual(got.slice(1).map((m) => m.id), queued.map((m) => m.id));
      assert.equal((await cli(["sync", relay2.url, "--json"], alice)).stdout, "", "once");

      // Bob collects alice's receipts: delivered.
      await cli(["sync", relay2.url], bob);
      assert.deepEqual((await bobHistory(bob)).map((m) => m.state), [
        "delivered",
        "delivered",
        "delivered",
      ]);
    } finally {
      await relay1.stop("SIGKILL");
      await relay2?.stop("SIGKILL");
    }
  });
}

Deno.test("reconnect: a chat killed while the relay is down loses nothing; the next send sends it first", async () => {
  await using env = await setup();
  const { alice, bob, dataDir } = env;
  const relay1 = await RelayProcess.start({ dataDir });
  const port = relay1.port;
  let relay2: RelayProcess | undefined;
  try {
    {
      await using chat = spawnCli(["chat", relay1.url, "alice", "--timeout", "60"], bob);
      await chat.writeLine("accepted first");
      await chat.waitForStderr(/✓ accepted: accepted first/);
      await relay1.stop("SIGKILL");
      await chat.waitForStderr(/connection to relay lost/);
      await chat.writeLine("left behind 1");
      await chat.writeLine("left behind 2");
      await chat.waitForStderr(/queued \(not connected\): left behind \d/, { count: 2 });
      const killed = await chat.kill("SIGKILL");
      assert.notEqual(killed.code, 0);
    }
    const left = (await bobHistory(bob)).filter((m) => m.text.startsWith("left behind"));
    assert.deepEqual(left.map((m) => m.state), ["sending", "sending"]);

    relay2 = await RelayProcess.start({ dataDir, port });
    const sent = await cli(["send", relay2.url, "alice", "new message"], bob);
    assert.match(sent.stderr, /sending 2 queued messages to alice first/);
    const newId = sent.stdout.trim();
    assert.match(newId, /^[A-Za-z0-9_-]{8,64}$/);
    assert.equal(sent.stdout, newId + "\n", "stdout: only the new id");

    const history = await bobHistory(bob);
    assert.deepEqual(history.map((m) => [m.text, m.state]), [
      ["accepted first", "accepted"],
      ["left behind 1", "accepted"],
      ["left behind 2", "accepted"],
      ["new message", "accepted"],
    ]);
    const got = jsonLines((await cli(["sync", relay2.url, "--json"], alice)).stdout);
    assert.deepEqual(got.map((m) => m.text), [
      "accepted first",
      "left behind 1",
      "left behind 2",
      "new message",
    ]);
    assert.deepEqual(got.map((m) => m.id), history.map((m) => m.id));

    // Nothing is queued any more: the next send sends only its own message.
    const next = await cli(["send", relay2.url, "alice", "last"], bob);
    assert.doesNotMatch(next.stderr, /queued/);
    const more = jsonLines((await cli(["sync", relay2.url, "--json"], alice)).stdout);
    assert.deepEqual(more.map((m) => m.text), ["last"]);
  } finally {
    await relay1.stop("SIGKILL");
    await relay2?.stop("SIGKILL");
  }
});

Deno.test("reconnect: the next chat sends what a killed chat left queued, before new lines, once", async () => {
  await using env = await setup();
  const { alice, bob, dataDir } = env;
  const relay1 = await RelayProcess.start({ dataDir });
  const port = relay1.port;
  let relay2: RelayProcess | undefined;
  try {
    {
      await using chat = spawnCli(["chat", relay1.url, "alice", "--timeout", "60"], bob);
      await chat.writeLine("hello");
      await chat.waitForStderr(/✓ accepted: hello/);
      await relay1.stop("SIGTERM");
      await chat.waitForStderr(/connection to relay lost/);
      await chat.writeLine("unsent");
      await chat.waitForStderr(/queued \(not connected\): unsent/);
      await chat.kill("SIGKILL");
    }
    relay2 = await RelayProcess.start({ dataDir, port });
    const again = await cli(["chat", relay2.url, "alice"], { ...bob, stdin: "after restart\n" });
    assert.match(again.stderr, /sending 1 queued message from an earlier session/);
    assert.match(again.stderr, /✓ accepted: unsent/);

    const got = jsonLines((await cli(["sync", relay2.url, "--json"], alice)).stdout);
    assert.deepEqual(got.map((m) => m.text), ["hello", "unsent", "after restart"]);
    const history = await bobHistory(bob);
    assert.deepEqual(got.map((m) => m.id), history.map((m) => m.id));
    assert.deepEqual(history.map((m) => m.state), ["accepted", "accepted", "accepted"]);

    // A second chat finds nothing left to resend.
    const third = await cli(["chat", relay2.url, "alice"], { ...bob, stdin: "" });
    assert.doesNotMatch(third.stderr, /queued/);
    assert.equal((await cli(["sync", relay2.url, "--json"], alice)).stdout, "");
  } finally {
    await relay1.stop("SIGKILL");
    await relay2?.stop("SIGKILL");
  }
});

Deno.test("reconnect: a chat started while the relay is down opens, queues, and sends once it is up", async () => {
  await using env = await setup();
  const { alice, bob, dataDir } = env;
  const port = closedPort();
  let relay: RelayProcess | undefined;
  try {
    await using chat = spawnCli(
      ["chat", `ws://127.0.0.1:${port}/ws`, "alice", "--timeout", "60"],
      bob,
    );
    await chat.waitForStderr(/cannot reach relay .*connection refused; what you type is queued/);
    await chat.writeLine("typed while the relay was down");
    await chat.waitForStderr(/… queued \(not connected\): typed while the relay was down/);
    const queued = await bobHistory(bob);
    assert.deepEqual(queued.map((m) => m.state), ["sending"]);

    relay = await RelayProcess.start({ dataDir, port });
    await chat.waitForStderr(
      /connected to relay ws:\/\/127\.0\.0\.1:\d+\/ws; sending 1 queued message/,
    );
    await chat.waitForStderr(/✓ accepted: typed while the relay was down/);
    const result = await chat.end();
    assert.equal(result.code, 0, result.stderr);

    const got = jsonLines((await cli(["sync", relay.url, "--json"], alice)).stdout);
    assert.deepEqual(got.map((m) => [m.id, m.text]), [[queued[0].id, queued[0].text]]);
  } finally {
    await relay?.stop("SIGKILL");
  }
});
