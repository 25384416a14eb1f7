import assert from "node:assert/strict";
import { COMMANDS, splitGlobals } from "./app.ts";
import { runInProcess, withHome } from "./testing.ts";

const ESC = "\x1b[";

Deno.test("usage errors exit 2 with the problem and the usage on stderr", async () => {
  await withHome(async (home) => {
    const cases: Array<[string[], RegExp]> = [
      [[], /error: missing command/],
      [["bogus"], /error: unknown command "bogus"/],
      [["init", "--frobnicate"], /Unknown option '--frobnicate'/],
      [["init", "extra"], /unexpected argument "extra"/],
      [["add-contact", "bob"], /missing <public-key>/],
      [["send", "ws://localhost:1/ws", "bob"], /missing <text>/],
      [["send", "ftp://relay", "bob", "hi"], /not a relay URL/],
      [["send", "ws://localhost:1/ws", "bob", "   "], /message text is empty/],
      [["sync"], /no relay given: name one .*set CHAT_RELAY.*chat-p2p config set relay <url>/],
      [["sync", "bob"], /unexpected argument "bob"/],
      [["send", "ws://localhost:1/ws", "bob", "hi", "--relay", "ws://x/ws"], /give the relay once/],
      [["send", "bob", "hi", "--wait", "forever"], /--wait must be accepted or delivered/],
      [["config", "set", "colour", "x"], /unknown setting "colour"/],
      [["config", "frob"], /unknown action "frob"/],
      [["verify"], /missing <name>/],
      [["sync", "ws://localhost:1", "--timeout", "0"], /--timeout must be a positive number/],
      [["chat", "ws://localhost:1"], /missing <contact>/],
      [["history"], /missing <contact>/],
      [["--profile", "../x", "id"], /invalid profile name/],
      [["--profile"], /--profile needs a value/],
    ];
    for (const [argv, re] of cases) {
      const r = await runInProcess(argv, { home });
      assert.equal(r.code, 2, `exit code for ${argv.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re, argv.join(" "));
      assert.match(r.stderr, /Usage: chat-p2p/, `usage shown for ${argv.join(" ")}`);
      assert.equal(r.stdout, "", `nothing on stdout for ${argv.join(" ")}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    }
  });
});

Deno.test("--help prints usage on stdout and exits 0, for every command", async () => {
  await withHome(async (home) => {
    const top = await runInProcess(["--help"], { home });
    assert.equal(top.code, 0);
    assert.match(top.stdout, /Commands:/);
    for (const c of COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])])) {
      const r = await runInProcess([c, "--help"], { home });
      assert.equal(r.code, 0, c);
      assert.match(r.stdout, new RegExp(`^Usage: chat-p2p ${c}|\n {7}chat-p2p ${c}`), c);
      assert.equal(r.stderr, "");
    }
  });
});

Deno.test("runtime failures exit 1 with error: ... and no stack trace", async () => {
  await withHome(async (home) => {
    const r = await runInProcess(["id"], { home, profile: "alice" });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "error: no identity for profile alice: run `chat-p2p init`\n");
    assert.equal(r.stdout, "");
    const v = await runInProcess(["id", "--verbose"], { home, profile: "alice" });
    assert.equal(v.code, 1);
    assert.match(v.stderr, /ClientError: no identity/, "stack trace with --verbose");
  });
});

Deno.test("init, then id: key alone on the first line; secret never printed", async () => {
  await withHome(async (home) => {
    const init = await runInProcess(["init"], { home });
    assert.equal(init.code, 0);
    const key = init.stdout.trim();
    assert.match(key, /^[A-Za-z0-9+/]{43}=$/);
    const secret =
      JSON.parse(Deno.readTextFileSync(`${home}/.chat-default/identity.json`)).secret_key;

    const id = await runInProcess(["id"], { home });
    assert.equal(id.code, 0);
    const lines = id.stdout.split("\n");
    assert.equal(lines[0], key);
    assert.match(lines[1], /^fingerprint: [0-9a-f]{4}( [0-9a-f]{4}){4}$/);

    const json = await runInProcess(["id", "--json"], { home });
    const o = JSON.parse(json.stdout);
    assert.deepEqual(Object.keys(o).sort(), ["fingerprint", "public_key"]);
    assert.equal(o.public_key, key);

    const qr = await runInProcess(["id", "--qr"], { home });
    assert.equal(qr.code, 0);
    assert.equal(qr.stdout.split("\n")[0], key);
    assert.match(qr.stdout, /[█▀▄]/);
    assert.ok(!qr.stdout.includes(ESC), "no escape codes when stdout is not a terminal");

    for (const r of [init, id, json, qr]) {
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret));
    }
  });
});

Deno.test("init refuses to replace an identity without --force", async () => {
  await withHome(async (home) => {
    const first = (await runInProcess(["init"], { home })).stdout.trim();
    const again = await runInProcess(["init"], { home });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already has an identity/);
    assert.match(again.stderr, /lost for good|loses it for good/);
    assert.match(again.stderr, /--force/);
    assert.equal((await runInProcess(["id"], { home })).stdout.split("\n")[0], first);
    const forced = await runInProcess(["init", "--force"], { home });
    assert.equal(forced.code, 0);
    assert.notEqual(forced.stdout.trim(), first);
  });
});

Deno.test("profiles are separate directories (CHAT_PROFILE and --profile)", async () => {
  await withHome(async (home) => {
    const a = (await runInProcess(["init"], { home, profile: "alice" })).stdout.trim();
    const b = (await runInProcess(["--profile", "bob", "init"], { home })).stdout.trim();
    assert.notEqual(a, b);
    assert.equal((await runInProcess(["id"], { home, profile: "alice" })).stdout.split("\n")[0], a);
    assert.equal((await runInProcess(["id", "--profile=bob"], { home })).stdout.split("\n")[0], b);
    assert.ok(Deno.statSync(`${home}/.chat-alice/identity.json`).isFile);
    assert.ok(Deno.statSync(`${home}/.chat-bob/identity.json`).isFile);
  });
});

Deno.test("colour only when stdout is a terminal and NO_COLOR is unset", async () => {
  await withHome(async (home) => {
    await runInProcess(["init"], { home });
    const tty = await runInProcess(["id"], { home, stdoutTty: true });
    assert.ok(tty.stdout.includes(ESC));
    const noColor = await runInProcess(["id"], { home, stdoutTty: true, env: { NO_COLOR: "1" } });
    assert.ok(!noColor.stdout.includes(ESC));
    const pipe = await runInProcess(["id"], { home });
    assert.ok(!pipe.stdout.includes(ESC));
  });
});

Deno.test("splitGlobals: globals anywhere before --, command args kept in order", () => {
  const g = splitGlobals([
    "--verbose",
    "send",
    "ws://x",
    "--profile",
    "p",
    "bob",
    "--",
    "--verbose",
  ]);
  assert.equal(g.command, "send");
  assert.equal(g.verbose, true);
  assert.equal(g.profile, "p");
  assert.deepEqual(g.rest, ["ws://x", "bob", "--", "--verbose"]);
});
