import assert from "node:assert/strict";
import { join } from "node:path";
import { COMMANDS } from "../app.ts";
import { runInProcess, withHome } from "../testing.ts";
import { documentedOptions, type Shell, SHELLS } from "./completions.ts";

/** Command names, from the table the completions are generated from. */
const NAMES = COMMANDS.flatMap((c) => [c.name, ...(c.aliases ?? [])]).sort();

/** What a shell offers after `chat-p2p <words...>` (the last word is the one being typed). */
type Offer = (script: string, words: string[]) => Promise<string[]>;

async function shell(program: string, args: string[]): Promise<string[]> {
  const r = await new Deno.Command(program, { args, stdout: "piped", stderr: "piped" }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `${program} failed: ${stderr}`);
  assert.equal(stderr, "", `${program} complained`);
  const lines = new TextDecoder().decode(r.stdout).split("\n").filter((l) => l !== "");
  return lines.map((l) => l.split("\t")[0]).sort();
}

/** A bash array literal of `words`. */
const array = (words: string[]) => `(${words.map((w) => `'${w}'`).join(" ")})`;

/** Each shell, driven through its own completion machinery (zsh's compsys functions stubbed). */
const OFFERS: Record<Shell, Offer> = {
  bash: (script, words) =>
    shell("bash", [
      "--norc",
      "-c",
      `source '${script}'; COMP_WORDS=${array(["chat-p2p", ...words])}; ` +
      `COMP_CWORD=${words.length}; _chat_p2p; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ]),
  zsh: (script, words) =>
    shell("zsh", [
      "-f",
      "-c",
      // compdef registers, _describe offers 'word:description' pairs from the named array.
      `compdef() { :; }; _describe() { print -rl -- "\${(@P)\${@[-1]}%%:*}"; }; ` +
      `source '${script}'; words=${array(["chat-p2p", ...words])}; ` +
      `CURRENT=${words.length + 1}; PREFIX='${words.at(-1)}'; _chat_p2p; :`,
    ]).then((ws) => ws.filter((w) => w.startsWith(words.at(-1)!))),
  fish: (script, words) =>
    shell("fish", [
      "--no-config",
      "-c",
      `source '${script}'; complete -C '${["chat-p2p", ...words].join(" ")}'`,
    ]),
};

/** Command lines and what each shell must offer for the last word. */
const CASES: Array<[string[], string[]]> = [
  [[""], NAMES],
  [["i"], ["id", "inbox", "init"]],
  [["--profile", "alice", "h"], ["help", "history"]],
  [["--verbose", "--"], ["--help", "--profile", "--verbose", "--version"]],
  [["id", "--"], ["--help", "--json", "--profile", "--qr", "--verbose"]],
  [["--profile", "bob", "init", "--f"], ["--force"]],
  [["sync", "--timeout", "5", "--j"], ["--json"]],
  [["help", ""], NAMES],
  [["help", "co"], ["completions", "config", "contacts"]],
  [["completions", ""], ["bash", "fish", "zsh"]],
];

async function installed(program: string): Promise<boolean> {
  try {
    return (await new Deno.Command(program, { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

for (const sh of SHELLS) {
  Deno.test({
    name: `completions ${sh}: the shell offers the commands, their options and help's arguments`,
    // .ci/run installs every shell; elsewhere a missing one is skipped, never under CI.
    ignore: Deno.env.get("CI") !== "true" && !await installed(sh),
    fn: async () => {
      await withHome(async (home) => {
        const r = await runInProcess(["completions", sh], { home });
        assert.equal(r.code, 0, r.stderr);
        const script = join(home, `chat-p2p.${sh}`);
        await Deno.writeTextFile(script, r.stdout);
        for (const [words, expected] of CASES) {
          const got = await OFFERS[sh](script, words);
          // Fish adds the usual short options (-h) to what starts with "-".
          assert.deepEqual(got.filter((w) => !/^-\w$/.test(w)), expected, words.join(" "));
        }
      });
    },
  });
}

Deno.test("completions: an unknown shell, or none, is a usage error", async () => {
  await withHome(async (home) => {
    for (const argv of [["completions", "tcsh"], ["completions"]]) {
      const r = await runInProcess(argv, { home });
      assert.equal(r.code, 2, argv.join(" "));
      assert.match(r.stderr, /Usage: chat-p2p completions <shell>/);
    }
  });
});

Deno.test("completions: every option a command's help lists is one the command accepts", async () => {
  await withHome(async (home) => {
    let checked = 0;
    for (const c of COMMANDS) {
      for (const o of documentedOptions(c.usage)) {
        if (o.long === "help") continue; // global: handled before the command runs
        const given = [`--${o.long}`, ...(o.value === undefined ? [] : ["1"])];
        // The unknown option after it is what must be refused, before the command does anything.
        const r = await runInProcess([c.name, ...given, "--zz-unknown"], { home });
        assert.equal(r.code, 2, `${c.name} ${given.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /Unknown option '--zz-unknown'/, `${c.name} accepts --${o.long}`);
        checked++;
      }
    }
    assert.ok(checked >= 10, `only ${checked} options documented`);
  });
});
