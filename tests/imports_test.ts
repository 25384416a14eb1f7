/**
 * Imports go only cli → client → protocol and relay → protocol; the rules and how test files are
 * treated are in import_rules.ts. The second test proves the checker fails: a small workspace
 * that breaks each rule once must produce exactly those violations.
 */
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  checkMemberConfigs,
  importRuleViolations,
  loadRepository,
  unusedImportMapEntries,
  withoutComments,
} from "./import_rules.ts";
import { ROOT } from "./relay_process.ts";

const show = (vs: { where: string; message: string }[]) =>
  vs.map((v) => `  ${v.where}: ${v.message}`).join("\n");

const repo = await loadRepository(ROOT, { frozen: true });

Deno.test("imports: every file keeps the workspace's import rules", () => {
  assert.ok(repo.files.length > 100 && repo.imports.length > 300, "the whole tree was read");
  const violations = importRuleViolations(repo);
  assert.equal(violations.length, 0, `import rules broken:\n${show(violations)}`);
});

Deno.test("imports: every package's deno.json has a name, a version and exports that exist", async () => {
  const problems = await checkMemberConfigs(ROOT);
  assert.equal(problems.length, 0, show(problems));
  assert.deepEqual(repo.members.sort(), ["cli", "client", "protocol", "relay"]);
});

Deno.test("imports: every import-map entry is used", async () => {
  assert.deepEqual(await unusedImportMapEntries(repo), []);
});

/** A workspace breaking each rule once: path → contents. */
const BROKEN: Record<string, string> = {
  "deno.json": JSON.stringify({
    workspace: ["./protocol", "./client", "./relay", "./cli"],
    imports: { "unused-pkg": "npm:left-pad@1.3.0" },
  }),
  "protocol/deno.json": JSON.stringify({
    name: "@chat-p2p/protocol",
    version: "1.0.0",
    exports: { ".": "./mod.ts" },
  }),
  "protocol/mod.ts": `import "@chat-p2p/client";
import { readFileSync } from "node:fs";
export const t = setTimeout(() => {}, 1); Deno.unrefTimer(t);
// Deno.readTextFile in a comment is fine
export const url = "http://x/*not a comment*/";
export const f = () => Deno.readTextFile("x") && readFileSync;
export const w = new Worker(new URL("./w.ts", import.meta.url));
`,
  "protocol/w.ts": "export {};\n",
  "protocol/mod_test.ts": 'Deno.test("reads files", () => void Deno.readTextFileSync("x"));\n',
  "client/deno.json": JSON.stringify({
    name: "@chat-p2p/client",
    version: "1.0.0",
    exports: "./mod.ts",
  }),
  "client/mod.ts": `import { createInterface } from "node:readline";
import "../relay/mod.ts";
export const tty = () => [createInterface, Deno.stdout.isTerminal()];
`,
  "client/mod_test.ts": `import "../tests/helper.ts";
import "../tests/other_test.ts";
`,
  "relay/deno.json": JSON.stringify({
    name: "@chat-p2p/relay",
    version: "1.0.0",
    exports: { ".": "./mod.ts", "./x": "./missing.ts" },
  }),
  "relay/mod.ts": `import "@chat-p2p/client";
import "../protocol/w.ts";
export const load = (name: string) => import(name);
`,
  "cli/deno.json": JSON.stringify({ name: "cli", version: "one", exports: { "./m": "./main.ts" } }),
  "cli/main.ts": `import "@chat-p2p/relay";
import "@chat-p2p/protocol";
import "../tests/helper.ts";
`,
  "tests/helper.ts": 'import "../relay/mod.ts";\n',
  "tests/other_test.ts": "export {};\n",
  "docs/bot.ts": 'import "../client/mod.ts";\n',
};

Deno.test("imports: a tree that breaks every rule fails with each break named", async () => {
  const root = await Deno.makeTempDir({ prefix: "chat-imports-broken-" });
  try {
    for (const [path, text] of Object.entries(BROKEN)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), text);
    }
    const found = importRuleViolations(await loadRepository(root));
    assert.deepEqual(found.map((v) => `${v.where}: ${v.message}`), [
      "cli/main.ts:1: cli must not import relay (@chat-p2p/relay)",
      "cli/main.ts:3: cli imports tests/helper.ts, outside the packages",
      "client/mod_test.ts:2: client imports tests/other_test.ts, outside the packages and tests/ helpers",
      "client/mod.ts:1: the client library has no terminal code, but imports node:readline",
      "client/mod.ts:2: client must not import relay (../relay/mod.ts)",
      "client/mod.ts:3: the client library has no terminal code, yet uses Deno.stdout",
      "docs/bot.ts:1: a docs example reaches into client/mod.ts: use @chat-p2p/client's exports",
      "protocol/mod.ts:1: protocol must not import client (@chat-p2p/client)",
      "protocol/mod.ts:2: protocol does no I/O, but imports node:fs",
      "protocol/mod.ts:6: protocol does no I/O and uses no Deno API but timers, yet uses Deno.readTextFile",
      "protocol/mod.ts:7: protocol does no I/O, yet uses new Worker",
      "relay/mod.ts:1: relay must not import client (@chat-p2p/client)",
      "relay/mod.ts:2: relay reaches into protocol/w.ts by path: import @chat-p2p/protocol instead",
      "relay/mod.ts:3: import() of a computed specifier: the import rules cannot check it",
    ]);
    assert.deepEqual(show(await checkMemberConfigs(root)).split("\n"), [
      "  relay/deno.json: export ./x points at ./missing.ts, which does not exist",
      "  cli/deno.json: name should be @chat-p2p/cli",
      "  cli/deno.json: version should be semver (x.y.z)",
      '  cli/deno.json: exports should name the "." entry point',
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("imports: comments are removed, strings and regular expressions kept", () => {
  assert.equal(
    withoutComments("f = () => { return /'/; }; // x"),
    "f = () => { return /'/; };     ",
  );
  const src = `const a = "//x"; // gone
const r = /["'/]+/g; /* gone
too */ const t = \`\${a /* gone */ + "}"} // kept\`;`;
  assert.equal(
    withoutComments(src),
    `const a = "//x"; ${" ".repeat(7)}
const r = /["'/]+/g; ${" ".repeat(7)}
${" ".repeat(6)} const t = \`\${a ${" ".repeat(10)} + "}"} // kept\`;`,
  );
});
