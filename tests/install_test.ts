/**
 * `deno task install` gives the user a `chat-p2p` command (the name every hint of the CLI uses)
 * that runs this checkout's CLI without network once its packages are cached, and
 * `deno task uninstall` takes it away again.
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { cliEnv } from "./cli_helpers.ts";
import { listFiles } from "./import_rules.ts";
import { ROOT } from "./relay_process.ts";
import cliPackage from "../cli/deno.json" with { type: "json" };
import { COMMANDS } from "../cli/app.ts";

/** Runs `program args` with `env`; returns its output, failing the test on a non-zero exit. */
async function runOk(program: string, args: string[], env: Record<string, string>) {
  const r = await new Deno.Command(program, {
    args,
    cwd: ROOT,
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(r.stdout), stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `${program} ${args.join(" ")} exited ${r.code}:\n${stdout}\n${stderr}`);
  return { stdout, stderr };
}

Deno.test("install: the launcher lands in $DENO_INSTALL_ROOT/bin, runs offline, and uninstalls", async () => {
  const home = await Deno.makeTempDir({ prefix: "chat-install-" });
  try {
    const root = join(home, "deno-root");
    const env = {
      ...cliEnv({ home }),
      PATH: `${dirname(Deno.execPath())}:${Deno.env.get("PATH") ?? ""}`,
      DENO_INSTALL_ROOT: root,
      NO_COLOR: "1",
      // No network: every request goes to a closed port. The packages come from Deno's cache.
      HTTP_PROXY: "http://127.0.0.1:9",
      HTTPS_PROXY: "http://127.0.0.1:9",
    };
    await runOk(Deno.execPath(), ["task", "-q", "install"], env);
    const launcher = join(root, "bin", "chat-p2p");
    assert.ok(((await Deno.stat(launcher)).mode! & 0o111) !== 0, "the launcher is executable");
    assert.match(await Deno.readTextFile(launcher), /cli\/main\.ts/, "it runs this checkout");

    const version = await runOk(launcher, ["--version"], env);
    assert.match(version.stdout, new RegExp(`^chat-p2p ${cliPackage.version} \\(protocol v2`));
    const key = (await runOk(launcher, ["init"], env)).stdout.trim();
    assert.equal((await runOk(launcher, ["id"], env)).stdout.split("\n")[0], key);

    await runOk(Deno.execPath(), ["task", "-q", "uninstall"], env);
    await assert.rejects(Deno.stat(launcher), Deno.errors.NotFound);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("install: the launcher gets the cli task's permissions", async () => {
  const { tasks } = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const perms = (task: string) => task.split(/\s+/).filter((w) => w.startsWith("--allow-")).sort();
  assert.deepEqual(perms(tasks.install), perms(tasks.cli));
  assert.match(tasks.install, /--name chat-p2p\b.*cli\/main\.ts$/);
});

/** `chat-p2p <command>` as the CLI's hints and usage lines, and the README's examples, name it. */
function namedCommands(text: string, codeBlocks: boolean): string[] {
  const found = [...text.matchAll(/(?:`|Usage: )chat-p2p (?:--\S+ \S+ )*([a-z][a-z-]*)/g)];
  if (codeBlocks) {
    for (const block of text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)) {
      const code = block[1].replace(/#.*$/gm, "");
      found.push(...code.matchAll(/(?:^|[\s|=])chat-p2p (?:--\S+ \S+ )*([a-z][a-z-]*)/gm));
    }
  }
  return found.map((m) => m[1]);
}

Deno.test("install: every `chat-p2p <command>` the CLI's hints and the README name exists", async () => {
  const known = new Set(COMMANDS.map((c) => c.name));
  const sources = (await listFiles(ROOT, (n) => n.endsWith(".ts") && !n.endsWith("_test.ts")))
    .filter((f) => f.startsWith("cli/"));
  const named: Array<[string, string]> = [];
  for (const f of sources) {
    for (const c of namedCommands(await Deno.readTextFile(join(ROOT, f)), false)) {
      named.push([f, c]);
    }
  }
  for (const c of namedCommands(await Deno.readTextFile(join(ROOT, "README.md")), true)) {
    named.push(["README.md", c]);
  }
  assert.ok(named.length > 30, `only ${named.length} commands named`);
  assert.deepEqual(named.filter(([, c]) => !known.has(c)), []);
});
