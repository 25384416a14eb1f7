/**
 * The build files that cannot run here stay true: the Deno version pinned in one place, the
 * relay image's file list, compose, and the release workflow (which only GitHub runs).
 */
import assert from "node:assert/strict";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse as parseYaml } from "yaml";
import { listFiles } from "./import_rules.ts";
import { ROOT } from "./relay_process.ts";

const SELF = fileURLToPath(import.meta.url);
const read = (path: string) => readFile(join(ROOT, path), "utf8");

/** DENO_VERSION from the root .env, the one place it is pinned. */
async function pinnedDenoVersion(): Promise<string> {
  const m = /^DENO_VERSION=(\S+)$/m.exec(await read(".env"));
  assert.ok(m, ".env sets DENO_VERSION");
  return m[1];
}

/** Ways a file can pin a Deno version; the capture is the version. */
const VERSION_PINS = [
  /\bdeno@v?(\d+\.\d+[\w.-]*)/g, // npm install deno@2.9.6
  /\bdenoland\/deno:v?(\d+\.\d+[\w.-]*)/g, // FROM denoland/deno:2.9.6
  /\bDENO_VERSION[ \t]*[=:][ \t]*["']?v?(\d+\.\d+[\w.-]*)/g, // ARG DENO_VERSION=2.9.6
  /\bdeno-version:[ \t]*["']?v?(\d+\.\d+[\w.-]*)/g, // setup-deno's input
];

/** Every version pinned in `text`. */
function versionPins(text: string): string[] {
  return VERSION_PINS.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]));
}

Deno.test("packaging: the Deno version is pinned once, in .env, and no file names another", async () => {
  assert.deepEqual(
    versionPins("npm i deno@2.8.0; FROM denoland/deno:2.7.1\nDENO_VERSION=2.6.0 deno-version: 2.5"),
    ["2.8.0", "2.7.1", "2.6.0", "2.5"],
    "the scanner sees every form of pin",
  );
  const version = await pinnedDenoVersion();
  const pins = new Map<string, string[]>();
  // bench/ keeps measurement records, which name the version they ran on.
  const files = await listFiles(ROOT, (name) => name !== "deno.lock");
  for (const path of files.filter((f) => !f.startsWith("bench/"))) {
    const text = await read(path);
    if (text.includes("\0") || join(ROOT, path) === SELF) continue; // binary; this file's examples
    const found = versionPins(text);
    if (found.length > 0) pins.set(path, found);
  }
  const others = [...pins].filter(([, vs]) => vs.some((v) => v !== version));
  assert.deepEqual(others, [], `files pinning a Deno version other than .env's ${version}`);
  assert.deepEqual([...pins.keys()].filter((p) => p !== ".env" && p !== "README.md"), []);
  // The consumers take it from .env rather than repeating it.
  assert.match(await read(".ci/run"), /^\. \.\/\.env\b/m);
  assert.match(await read("Dockerfile"), /^ARG DENO_VERSION$/m);
  assert.match(await read("Dockerfile"), /^FROM denoland\/deno:\$\{DENO_VERSION\}$/m);
});

Deno.test("packaging: compose builds the relay image with .env's Deno version", async () => {
  const compose = parseYaml(await read("compose.yaml"), { merge: true });
  const built = Object.entries(compose.services as Record<string, { build?: unknown }>)
    .filter(([, s]) => s.build !== undefined);
  assert.deepEqual(built.map(([name]) => name).sort(), ["relay1", "relay2"]);
  for (const [name, s] of built) {
    const build = s.build as { context: string; args: Record<string, string> };
    assert.equal(build.context, ".", name);
    assert.match(build.args.DENO_VERSION, /^\$\{DENO_VERSION(:\?[^}]*)?\}$/, name);
  }
});

Deno.test("packaging: the Dockerfile copies enough of the workspace to cache and start the relay", async () => {
  const dockerfile = await read("Dockerfile");
  const copies = [...dockerfile.matchAll(/^COPY (?!--)(.+)$/gm)].map((m) => m[1].split(/\s+/));
  const run = /^RUN (deno cache [^&\\\n]+)/m.exec(dockerfile);
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
  assert.ok(copies.length > 0 && run && cmd, "COPY, RUN deno cache and CMD lines");
  const app = await mkdtemp(join(tmpdir(), "chat-image-"));
  try {
    for (const parts of copies) {
      const dest = parts.at(-1)!;
      for (const src of parts.slice(0, -1)) {
        const to = dest.endsWith("/") && !src.endsWith("/")
          ? join(app, dest, src.split("/").at(-1)!)
          : join(app, dest);
        await cp(join(ROOT, src), to, { recursive: true });
      }
    }
    const deno = async (args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args,
        cwd: app,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `deno ${args.join(" ")} in the image's /app:\n${text}`);
      assert.doesNotMatch(text, /Workspace member .* not found/, "every member's deno.json");
      return text;
    };
    await deno(run[1].trim().split(/\s+/).slice(1));
    const [program, ...args] = JSON.parse(cmd[1]) as string[];
    assert.equal(program, "deno");
    assert.match(await deno([...args, "--help"]), /--data-dir/, "the relay's help");
  } finally {
    await rm(app, { recursive: true, force: true });
  }
});

/** What `deno compile --target` accepts, as this Deno lists it. */
async function compileTargets(): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["compile", "--target", "not-a-target", "x.ts"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const m = /possible values: ([^\n]+)/.exec(new TextDecoder().decode(out.stderr));
  assert.ok(m, "deno compile lists its targets");
  return m[1].split(",").map((t) => t.trim());
}

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string | string[];
  permissions?: Record<string, string>;
  strategy?: { matrix: { target: string[] } };
  steps: Step[];
}

Deno.test("packaging: the release workflow tests, compiles for five platforms and publishes sums", async () => {
  const wf = parseYaml(await read(".github/workflows/release.yml"));
  assert.deepEqual(Object.keys(wf.on), ["push"]);
  assert.deepEqual(Object.keys(wf.on.push), ["tags"], "runs on tags only");
  const jobs = wf.jobs as Record<string, Job>;
  const runs = (job: Job) => job.steps.map((s) => s.run ?? "").join("\n");

  assert.match(runs(jobs.test), /^bash \.ci\/run$/m, "the tests run as CI runs them");
  await Deno.stat(join(ROOT, ".ci/run"));
  assert.equal(jobs.build.needs, "test", "nothing is built unless the tests pass");
  assert.equal(jobs.publish.needs, "build");

  const targets = jobs.build.strategy!.matrix.target;
  const valid = await compileTargets();
  for (const t of targets) assert.ok(valid.includes(t), `${t} is not a deno compile target`);
  for (
    const platform of [
      /x86_64-.*linux/,
      /aarch64-.*linux/,
      /x86_64-apple/,
      /aarch64-apple/,
      /windows/,
    ]
  ) assert.ok(targets.some((t) => platform.test(t)), `no target for ${platform}`);

  const compile = /deno compile ((?:\\\n|[^\n])+)/.exec(runs(jobs.build));
  assert.ok(compile, "a deno compile step");
  const argv = compile[1].replace(/\\\n/g, " ").trim().split(/\s+/);
  assert.match(argv.join(" "), /--target "\$TARGET"/);
  const entry = argv.at(-1)!;
  assert.equal(entry, "cli/main.ts");
  await Deno.stat(join(ROOT, entry)); // throws when the entry point is gone
  const task = JSON.parse(await read("deno.json")).tasks.compile as string;
  const perms = (words: string[]) => words.filter((w) => w.startsWith("--allow-")).sort();
  assert.deepEqual(perms(argv), perms(task.split(/\s+/)), "the compile task's permissions");
  assert.match(runs(jobs.build), /^\. \.\/\.env$/m, "Deno at the version pinned in .env");

  assert.equal(jobs.publish.permissions?.contents, "write");
  assert.match(runs(jobs.publish), /sha256sum chat-p2p-\* > SHA256SUMS/);
  assert.match(runs(jobs.publish), /gh release create "\$GITHUB_REF_NAME" dist\/\*/);
  for (const job of Object.values(jobs)) {
    for (const s of job.steps) if (s.uses) assert.match(s.uses, /@v\d+$/, `${s.uses} is pinned`);
  }
});
