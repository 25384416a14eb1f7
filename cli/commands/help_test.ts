import assert from "node:assert/strict";
import { COMMANDS, mainUsage } from "../app.ts";
import { runInProcess, withHome } from "../testing.ts";
import cliPackage from "../deno.json" with { type: "json" };

Deno.test("help: without a command it prints the overview, with one that command's --help", async () => {
  await withHome(async (home) => {
    const top = await runInProcess(["help"], { home });
    assert.equal(top.code, 0, top.stderr);
    assert.equal(top.stdout, mainUsage() + "\n");
    for (const c of COMMANDS) {
      const viaHelp = await runInProcess(["help", c.name], { home });
      const viaFlag = await runInProcess([c.name, "--help"], { home });
      assert.equal(viaHelp.code, 0, viaHelp.stderr);
      assert.equal(viaHelp.stdout, viaFlag.stdout, c.name);
      assert.match(viaHelp.stdout, new RegExp(`^Usage: chat-p2p ${c.name}`));
      assert.ok(top.stdout.includes(`  ${c.name} `), `the overview lists ${c.name}`);
    }
  });
});

Deno.test("help: an unknown command is a usage error", async () => {
  await withHome(async (home) => {
    const r = await runInProcess(["help", "bogus"], { home });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: help: unknown command "bogus"\n/);
    assert.equal(r.stdout, "");
    assert.equal((await runInProcess(["help", "id", "init"], { home })).code, 2);
  });
});

Deno.test("version: --version anywhere, and the version command, print cli/deno.json's version", async () => {
  await withHome(async (home) => {
    const line = new RegExp(
      `^chat-p2p ${cliPackage.version.replaceAll(".", "\\.")} \\(protocol v2, deno ${
        Deno.version.deno.replaceAll(".", "\\.")
      }\\)\n$`,
    );
    for (const argv of [["--version"], ["version"], ["id", "--version"]]) {
      const r = await runInProcess(argv, { home });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, line, argv.join(" "));
      assert.equal(r.stderr, "");
    }
    const json = await runInProcess(["version", "--json"], { home });
    assert.deepEqual(JSON.parse(json.stdout), {
      version: cliPackage.version,
      protocol: 2,
      deno: Deno.version.deno,
    });
  });
});
