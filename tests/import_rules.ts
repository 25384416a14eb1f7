/**
 * The workspace's import rules, checked over a checkout: imports go only cli → client → protocol
 * and relay → protocol, and the two libraries stay usable anywhere (the protocol does no I/O, the
 * client has no terminal code). `imports_test.ts` runs it on this repository and on a small tree
 * that breaks every rule.
 *
 * Imports come from Deno's own module graph (`deno info --json`), so workspace specifiers
 * (`@chat-p2p/...`), the import map, relative paths, `export ... from`, type-only imports and
 * literal `import()` are resolved exactly as Deno resolves them. Two things the graph does not
 * list are read from the source with comments removed: `new URL("./x.ts", import.meta.url)`
 * (workers) and `import()` of a computed specifier, which cannot be checked and so is refused.
 *
 * The rules, by where the importing file lives:
 *
 * - a package (a workspace member: protocol/, client/, relay/, cli/) imports its own files, and
 *   other packages only by their `@chat-p2p/<name>` specifier (their `exports`), never a path
 *   into their folders; which packages it may import is {@linkcode MAY_IMPORT}.
 * - its `_test.ts` files follow the same rules and may also import the shared helpers in
 *   `tests/` (not another suite's `_test.ts`), which start relays and CLIs as a user would.
 * - protocol, outside its `_test.ts` files: npm packages only from {@linkcode PROTOCOL_NPM}
 *   (crypto), no node: module that does I/O, no `Deno.*` API but timers, no fetch, WebSocket or
 *   Worker. Its tests may do I/O (they read vector files).
 * - client, outside its `_test.ts` files: no terminal: no node:readline/tty/repl, no
 *   Deno.stdin/stdout/stderr/consoleSize.
 * - tests/, bench/ and scripts/ are tools around the packages: they may import anything in the
 *   repository (white-box tests read relay/config.ts), and no package file imports them.
 * - docs/ holds examples for users: they import packages only by their `@chat-p2p/` exports.
 *
 * @module
 */
import { readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";

/** Which packages each package may import (its own files aside). */
export const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  protocol: [],
  client: ["protocol"],
  relay: ["protocol"],
  cli: ["client", "protocol"],
};

/** npm packages the protocol may use: crypto only, nothing that can reach a file or a socket. */
export const PROTOCOL_NPM = [/^tweetnacl@/, /^ed2curve@/, /^@noble\//];

/** node: modules that do file, network, process or terminal I/O (none of them in protocol). */
export const IO_NODE_MODULES = [
  "fs",
  "fs/promises",
  "net",
  "tls",
  "dgram",
  "dns",
  "dns/promises",
  "http",
  "https",
  "http2",
  "child_process",
  "cluster",
  "worker_threads",
  "process",
  "os",
  "readline",
  "readline/promises",
  "repl",
  "tty",
  "sqlite",
  "inspector",
];

/** node: modules of terminal UI (not in the client library). */
export const TERMINAL_NODE_MODULES = ["readline", "readline/promises", "repl", "tty"];

/** The only `Deno.*` APIs the protocol may touch: timers. */
export const PROTOCOL_DENO_APIS = ["unrefTimer", "refTimer"];

/** `Deno.*` APIs that are the terminal (not in the client library). */
export const TERMINAL_DENO_APIS = ["stdin", "stdout", "stderr", "consoleSize"];

/** Folders that are not sources: VCS, service state, build output. */
const NOT_SOURCES = new Set([".git", ".services", "relay-data", "dist", "node_modules"]);

/** Folders of tools around the packages. */
const TOOLS = new Set(["tests", "bench", "scripts"]);

/** A broken rule: where, and what. */
export interface Violation {
  /** Path from the checked root, with the line (1-based): `relay/x.ts:12`. */
  where: string;
  /** What is wrong. */
  message: string;
}

/** Every file under `dir` (relative to `root`, `/`-separated) whose name passes `keep`. */
export async function listFiles(
  root: string,
  keep: (name: string) => boolean,
  dir = root,
): Promise<string[]> {
  const found: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (NOT_SOURCES.has(e.name)) continue;
    const path = join(dir, e.name);
    if (e.isDirectory()) found.push(...await listFiles(root, keep, path));
    else if (e.isFile() && keep(e.name)) found.push(relative(root, path).split(sep).join("/"));
  }
  return found.sort();
}

/** A workspace member as its deno.json describes it. */
export interface Member {
  /** Folder under the root, e.g. "protocol". */
  dir: string;
  /** The parsed deno.json. */
  config: { name?: string; version?: string; exports?: string | Record<string, string> };
}

/** The root deno.json's workspace members, each with its own deno.json. */
export async function workspaceMembers(root: string): Promise<Member[]> {
  const rootConfig = JSON.parse(await readFile(join(root, "deno.json"), "utf8"));
  const members: Member[] = [];
  for (const m of rootConfig.workspace as string[]) {
    const dir = relative(root, resolve(root, m)).split(sep).join("/");
    members.push({ dir, config: JSON.parse(await readFile(join(root, dir, "deno.json"), "utf8")) });
  }
  return members;
}

interface GraphResolution {
  specifier?: string;
  error?: string;
  span: { start: { line: number } };
}
interface GraphDependency {
  specifier: string;
  code?: GraphResolution;
  type?: GraphResolution;
}
interface GraphModule {
  specifier: string;
  dependencies?: GraphDependency[];
  error?: string;
}

/** One import of one file: what it wrote, what Deno resolved it to, and where. */
export interface Import {
  /** The importing file, relative to the root. */
  from: string;
  /** Line, 1-based. */
  line: number;
  /** The specifier as written. */
  written: string;
  /** The resolved specifier (file:, node:, npm:, ...). */
  resolved: string;
}

/**
 * Every import of every `.ts` file under `root`, resolved by `deno info` with the root's
 * deno.json. Modules Deno could not load are returned as errors.
 */
export async function moduleGraph(
  root: string,
  files: string[],
  opts: { frozen?: boolean } = {},
): Promise<{ imports: Import[]; errors: Violation[] }> {
  const tmp = await Deno.makeTempDir({ dir: tmpdir(), prefix: "chat-imports-" });
  try {
    const entry = join(tmp, "all.ts");
    await Deno.writeTextFile(
      entry,
      files.map((f) => `import ${JSON.stringify(pathToFileURL(join(root, f)).href)};\n`).join(""),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "info",
        "--json",
        "--config",
        join(root, "deno.json"),
        ...(opts.frozen ? ["--frozen"] : ["--no-lock"]),
        entry,
      ],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`deno info failed:\n${new TextDecoder().decode(out.stderr)}`);
    const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: GraphModule[] };
    const imports: Import[] = [];
    const errors: Violation[] = [];
    const rootUrl = pathToFileURL(root + sep).href;
    for (const m of graph.modules) {
      if (!m.specifier.startsWith(rootUrl)) continue;
      const from = m.specifier.slice(rootUrl.length);
      if (m.error) errors.push({ where: from, message: m.error });
      for (const d of m.dependencies ?? []) {
        const target = d.code ?? d.type;
        if (!target) continue;
        if (target.specifier === undefined) {
          const where = `${from}:${target.span.start.line + 1}`;
          errors.push({ where, message: `cannot resolve ${d.specifier}: ${target.error}` });
          continue;
        }
        imports.push({
          from,
          line: target.span.start.line + 1,
          written: d.specifier,
          resolved: target.specifier,
        });
      }
    }
    return { imports, errors };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Output ending in a keyword after which "/" starts a regular expression, not a division. */
const KEYWORD_BEFORE_REGEX =
  /(?:^|[^\w$.])(?:return|typeof|case|do|else|in|of|void|yield|await|throw|new|delete)\s*$/;

/**
 * `source` with comments blanked out (newlines kept, so lines still count), and string, template
 * and regular expression literals left as they are.
 */
export function withoutComments(source: string): string {
  let out = "";
  let i = 0;
  // The last significant character outside literals: decides whether "/" starts a regex.
  let prev = "";
  const templateDepth: number[] = []; // brace depth at each open `${`
  let braces = 0;
  const copyQuoted = (quote: string) => {
    const start = i++;
    while (i < source.length && source[i] !== quote && source[i] !== "\n") {
      i += source[i] === "\\" ? 2 : 1;
    }
    i++;
    out += source.slice(start, i);
  };
  const copyTemplate = () => { // from just after "`" or "}" to the closing "`" or "${"
    const start = i;
    while (i < source.length && source[i] !== "`") {
      if (source[i] === "\\") i += 2;
      else if (source[i] === "$" && source[i + 1] === "{") {
        i += 2;
        templateDepth.push(braces);
        out += source.slice(start, i);
        return;
      } else i++;
    }
    i++;
    out += source.slice(start, i);
  };
  while (i < source.length) {
    const c = source[i], next = source[i + 1];
    if (c === "/" && next === "/") {
      const end = source.indexOf("\n", i);
      const stop = end < 0 ? source.length : end;
      out += " ".repeat(stop - i);
      i = stop;
    } else if (c === "/" && next === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? source.length : end + 2;
      out += source.slice(i, stop).replace(/[^\n]/g, " ");
      i = stop;
    } else if (c === '"' || c === "'") {
      copyQuoted(c);
      prev = c;
    } else if (c === "`") {
      out += c;
      i++;
      copyTemplate();
      prev = "`";
    } else if (
      c === "/" &&
      (prev === "" || "(,=:[!&|?{};+-*%<>~^".includes(prev) || KEYWORD_BEFORE_REGEX.test(out))
    ) {
      const start = i++;
      let inClass = false;
      while (i < source.length && source[i] !== "\n") {
        const r = source[i];
        if (r === "\\") i++;
        else if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        else if (r === "/" && !inClass) break;
        i++;
      }
      i++;
      out += source.slice(start, i);
      prev = "/";
    } else if (c === "}" && templateDepth.length > 0 && templateDepth.at(-1) === braces) {
      templateDepth.pop();
      out += c;
      i++;
      copyTemplate();
      prev = "`";
    } else {
      if (c === "{") braces++;
      if (c === "}") braces--;
      if (!/\s/.test(c)) prev = /[\w$)\]]/.test(c) ? "a" : c;
      out += c;
      i++;
    }
  }
  return out;
}

/** Line (1-based) of offset `at` in `text`. */
function lineAt(text: string, at: number): number {
  return text.slice(0, at).split("\n").length;
}

/** Imports the graph does not list (workers' URLs), and computed `import()`s as violations. */
function sourceImports(
  root: string,
  from: string,
  code: string,
): { imports: Import[]; computed: Violation[] } {
  const imports: Import[] = [];
  for (const m of code.matchAll(/new URL\(\s*(["'])([^"']+)\1\s*,\s*import\.meta\.url\s*\)/g)) {
    const resolved = new URL(m[2], pathToFileURL(join(root, from))).href;
    imports.push({ from, line: lineAt(code, m.index), written: m[2], resolved });
  }
  const computed = [...code.matchAll(/\bimport\s*\(\s*(?!["'])/g)].map((m) => ({
    where: `${from}:${lineAt(code, m.index)}`,
    message: "import() of a computed specifier: the import rules cannot check it",
  }));
  return { imports, computed };
}

/** The area a file belongs to: a member folder, a tool folder, "docs", or "" (anything else). */
function areaOf(path: string, members: string[]): string {
  const top = path.split("/")[0];
  return members.includes(top) || TOOLS.has(top) || top === "docs" ? top : "";
}

const isTestFile = (path: string) => path.endsWith("_test.ts");

/** What the rules are checked against: the files under a root and all their imports. */
export interface Repository {
  root: string;
  /** Workspace member folders. */
  members: string[];
  /** Source files, relative to the root. */
  files: string[];
  /** Every import of every file: Deno's module graph plus workers' URLs. */
  imports: Import[];
  /** Each file's code, comments removed. */
  code: Map<string, string>;
  /** Modules Deno could not load, and `import()`s of computed specifiers in packages. */
  unresolved: Violation[];
}

/** Reads the sources under `root` and resolves their imports (`frozen`: the lock must match). */
export async function loadRepository(
  root: string,
  opts: { frozen?: boolean } = {},
): Promise<Repository> {
  const members = (await workspaceMembers(root)).map((m) => m.dir);
  const files = await listFiles(root, (n) => /\.(ts|tsx|mts|js|mjs)$/.test(n));
  const { imports, errors } = await moduleGraph(root, files, opts);
  const unresolved = [...errors];
  const code = new Map<string, string>();
  for (const f of files) {
    const text = withoutComments(await readFile(join(root, f), "utf8"));
    code.set(f, text);
    const found = sourceImports(root, f, text);
    imports.push(...found.imports);
    if (members.includes(areaOf(f, members))) unresolved.push(...found.computed);
  }
  return { root, members, files, imports, code, unresolved };
}

/** Every violation of the import rules in `repo`; [] when it keeps them. */
export function importRuleViolations(repo: Repository): Violation[] {
  const { root, members, imports, code } = repo;
  const violations = [...repo.unresolved];
  const rootUrl = pathToFileURL(root + sep).href;
  for (const imp of imports) {
    const area = areaOf(imp.from, members);
    const where = `${imp.from}:${imp.line}`;
    const bad = (message: string) => violations.push({ where, message });
    if (imp.resolved.startsWith(rootUrl)) {
      const target = imp.resolved.slice(rootUrl.length);
      const targetArea = areaOf(target, members);
      if (targetArea === area) continue;
      if (members.includes(area)) {
        const test = isTestFile(imp.from);
        if (targetArea === "tests" && test && !isTestFile(target)) continue;
        if (!members.includes(targetArea)) {
          bad(
            `${area} imports ${target}, outside the packages${test ? " and tests/ helpers" : ""}`,
          );
        } else if (!MAY_IMPORT[area]?.includes(targetArea)) {
          bad(`${area} must not import ${targetArea} (${imp.written})`);
        } else if (!imp.written.startsWith("@chat-p2p/")) {
          bad(`${area} reaches into ${target} by path: import @chat-p2p/${targetArea} instead`);
        }
      } else if (area === "docs" && members.includes(targetArea)) {
        if (!imp.written.startsWith("@chat-p2p/")) {
          bad(`a docs example reaches into ${target}: use @chat-p2p/${targetArea}'s exports`);
        }
      }
    } else if (/^https?:|^jsr:/.test(imp.resolved) && area !== "") {
      bad(`remote import ${imp.resolved}: dependencies come through the import map and the lock`);
    } else if (isTestFile(imp.from)) {
      continue; // the I/O and terminal rules are about the libraries' code, not their tests
    } else if (area === "protocol" && imp.resolved.startsWith("node:")) {
      const mod = imp.resolved.slice("node:".length);
      if (IO_NODE_MODULES.includes(mod)) bad(`protocol does no I/O, but imports ${imp.resolved}`);
    } else if (area === "protocol" && imp.resolved.startsWith("npm:")) {
      const pkg = imp.resolved.replace(/^npm:\/?/, "");
      if (!PROTOCOL_NPM.some((re) => re.test(pkg))) {
        bad(`protocol may use only crypto packages from npm, not ${imp.written}`);
      }
    } else if (area === "client" && imp.resolved.startsWith("node:")) {
      const mod = imp.resolved.slice("node:".length);
      if (TERMINAL_NODE_MODULES.includes(mod)) {
        bad(`the client library has no terminal code, but imports ${imp.resolved}`);
      }
    }
  }
  for (const [f, text] of code) {
    const area = areaOf(f, members);
    if (area === "protocol" && !isTestFile(f)) {
      for (const m of text.matchAll(/\bDeno\s*(?:\.\s*(\w+)|\[)/g)) {
        if (m[1] && PROTOCOL_DENO_APIS.includes(m[1])) continue;
        violations.push({
          where: `${f}:${lineAt(text, m.index)}`,
          message: `protocol does no I/O and uses no Deno API but timers, yet uses ${m[0]}`,
        });
      }
      for (const m of text.matchAll(/\b(fetch\s*\(|new\s+(?:WebSocket|Worker)\b)/g)) {
        violations.push({
          where: `${f}:${lineAt(text, m.index)}`,
          message: `protocol does no I/O, yet uses ${m[1]}`,
        });
      }
    }
    if (area === "client" && !isTestFile(f)) {
      for (const m of text.matchAll(/\bDeno\s*\.\s*(\w+)/g)) {
        if (!TERMINAL_DENO_APIS.includes(m[1])) continue;
        violations.push({
          where: `${f}:${lineAt(text, m.index)}`,
          message: `the client library has no terminal code, yet uses Deno.${m[1]}`,
        });
      }
    }
  }
  return violations.sort((a, b) => a.where.localeCompare(b.where, "en", { numeric: true }));
}

/** Problems with the members' deno.json: name, version, exports, and export paths that exist. */
export async function checkMemberConfigs(root: string): Promise<Violation[]> {
  const problems: Violation[] = [];
  for (const { dir, config } of await workspaceMembers(root)) {
    const where = `${dir}/deno.json`;
    if (config.name !== `@chat-p2p/${basename(dir)}`) {
      problems.push({ where, message: `name should be @chat-p2p/${basename(dir)}` });
    }
    if (!/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(config.version ?? "")) {
      problems.push({ where, message: "version should be semver (x.y.z)" });
    }
    const exports = typeof config.exports === "string" ? { ".": config.exports } : config.exports;
    if (!exports || !exports["."]) {
      problems.push({ where, message: 'exports should name the "." entry point' });
    }
    for (const [key, path] of Object.entries(exports ?? {})) {
      try {
        await Deno.stat(join(root, dir, path));
      } catch {
        problems.push({ where, message: `export ${key} points at ${path}, which does not exist` });
      }
    }
  }
  return problems;
}

/** Import-map entries of the root deno.json that no file in `repo` uses. */
export async function unusedImportMapEntries(repo: Repository): Promise<string[]> {
  const config = JSON.parse(await readFile(join(repo.root, "deno.json"), "utf8"));
  const written = new Set(repo.imports.map((i) => i.written));
  return Object.keys(config.imports ?? {}).filter((key) =>
    ![...written].some((w) => key.endsWith("/") ? w.startsWith(key) : w === key)
  );
}
