/** The docs stay true: every setting and error code the code knows is documented. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SETTINGS } from "../relay/config.ts";
import { CLOSE_CODES, ERROR_CODES } from "@chat-p2p/protocol";
import { ROOT } from "./relay_process.ts";

const readme = await Deno.readTextFile(join(ROOT, "README.md"));
const protocol = await Deno.readTextFile(join(ROOT, "docs/PROTOCOL.md"));

Deno.test("docs: the README's first screen gives the two commands", () => {
  const firstScreen = readme.split("\n").slice(0, 20).join("\n");
  assert.match(firstScreen, /deno task relay/);
  assert.match(firstScreen, /deno task test/);
});

Deno.test("docs: every relay setting is in the README's table with its flag and default", () => {
  for (const s of Object.values(SETTINGS)) {
    const { flag, env: envName } = s;
    const def = s.shown ?? s.default ?? "";
    const row = readme.split("\n").find((l) =>
      l.includes("`" + envName + "`") && l.startsWith("|")
    );
    assert.ok(row, `README has no row for ${envName}`);
    assert.ok(row.includes("`" + flag + "`"), `README row for ${envName} lacks ${flag}`);
    const shown = def.startsWith("(") ? def : "`" + def + "`";
    assert.ok(row.includes(shown), `README row for ${envName} lacks default ${def}`);
  }
});

Deno.test("docs: every error code and close code is in PROTOCOL.md", () => {
  for (const code of Object.keys(ERROR_CODES)) {
    assert.ok(protocol.includes("`" + code + "`"), `PROTOCOL.md does not document ${code}`);
  }
  for (const n of Object.values(CLOSE_CODES)) {
    assert.ok(protocol.includes(String(n)), `PROTOCOL.md does not document close code ${n}`);
  }
});

/** The files git tracks, relative to the root (the repository as a clean clone has it). */
async function trackedFiles(): Promise<string[]> {
  const out = await new Deno.Command("git", { args: ["ls-files", "-z"], cwd: ROOT }).output();
  assert.equal(out.code, 0, "git ls-files failed");
  return new TextDecoder().decode(out.stdout).split("\0").filter((f) => f !== "");
}

/**
 * Paths a document names: `code` spans that look like repository paths, and link targets. A name
 * with a slash must end a tracked path (sections name files relative to their folder, such as
 * `core/session.ts` under relay/); a bare `*.ts` name must be a tracked file's name.
 */
function pathsIn(text: string): string[] {
  const names = new Set<string>();
  for (const m of text.matchAll(/`([^`\s]+)`/g)) names.add(m[1]);
  for (const m of text.matchAll(/\]\(([^)\s#]+)/g)) names.add(m[1]);
  return [...names].filter((t) =>
    !t.includes("://") && !t.startsWith("~") && !t.includes("<") && !t.includes("*") &&
    (/^(\.{1,2}\/)*[\w.-]+(\/[\w.-]*)+$/.test(t) || /^[\w-]+\.ts$/.test(t))
  );
}

Deno.test("docs: every path docs/ARCHITECTURE.md names is in the repository", async () => {
  const files = await trackedFiles();
  const dirs = new Set(
    files.flatMap((f) =>
      f.split("/").slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join("/") + "/")
    ),
  );
  const known = [...files, ...dirs].map((p) => "/" + p);
  const text = await Deno.readTextFile(join(ROOT, "docs/ARCHITECTURE.md"));
  const names = pathsIn(text);
  assert.ok(names.length > 50, `found only ${names.length} paths: the extraction broke`);
  const missing = names.filter((t) => {
    const bare = t.replace(/^(\.\.?\/)+/, "");
    return !known.some((p) => p.endsWith("/" + bare) || p.endsWith("/" + bare + "/"));
  });
  assert.deepEqual(missing, [], "docs/ARCHITECTURE.md names paths that do not exist");
});

Deno.test("docs: nothing in the repository points at files outside it", async () => {
  const outside: string[] = [];
  for (const f of await trackedFiles()) {
    // Tests may hold hostile paths as data (path traversal attempts); they are not references.
    if (!/\.(ts|md|json|sh|ya?ml|py|toml)$/.test(f) || /(_test\.ts|fixtures\/)/.test(f)) continue;
    const dir = f.split("/").slice(0, -1);
    const text = await Deno.readTextFile(join(ROOT, f));
    for (const m of text.matchAll(/(?<![\w./-])((?:\.\.\/)+)([\w.-]+)/g)) {
      const ups = m[1].length / 3;
      if (ups > dir.length) outside.push(`${f}: ${m[0]}`);
    }
  }
  assert.deepEqual(outside, [], "these references leave the repository");
});
