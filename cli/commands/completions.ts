/**
 * `chat-p2p completions bash|zsh|fish`: a completion script for the shell, generated from the
 * command table: the command names and summaries, and each command's options as its help lists
 * them, so the completions change with the commands (app_test checks that every option a help
 * text lists is one its command accepts).
 *
 * @module
 */
import { type Command, type Context, parseCommandArgs } from "../context.ts";
import { UsageError } from "../errors.ts";
import type { CommandTable } from "./help.ts";

/** The shells there are completions for. */
export const SHELLS = ["bash", "zsh", "fish"] as const;
/** A shell there are completions for. */
export type Shell = typeof SHELLS[number];

/** A command whose positional arguments come from a fixed list (help's command names, ...). */
export interface ArgumentWords {
  /** The words its arguments can be, for completion. */
  readonly argumentWords?: () => readonly string[];
}

/** An option as a help text lists it: `  -h, --help   show this help`. */
export interface DocumentedOption {
  /** Long name, without the dashes. */
  long: string;
  /** One-letter name, if any. */
  short?: string;
  /** Name of its value (`--timeout <seconds>`), when it takes one. */
  value?: string;
  /** Its description, up to the first clause's end. */
  description: string;
}

/** The options listed under the line matching `heading` in `help`, up to the next blank line. */
export function documentedOptions(help: string, heading = /^Options:$/): DocumentedOption[] {
  const lines = help.split("\n");
  const start = lines.findIndex((l) => heading.test(l));
  const options: DocumentedOption[] = [];
  if (start < 0) return options;
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith("  ")) break;
    const m = /^ {2}(?:-(\w), )?--([a-z][\w-]*)(?: <([^>]+)>)?(?: {2,}(.*))?$/.exec(line);
    if (m) options.push({ short: m[1], long: m[2], value: m[3], description: m[4] ?? "" });
    else if (options.length > 0) options[options.length - 1].description += " " + line.trim();
  }
  // A completion menu has room for the first clause only.
  for (const o of options) o.description = o.description.split(/ \(|; |\. /)[0].replace(/\.$/, "");
  return options;
}

/** What a completion script is generated from. */
interface Spec {
  globals: DocumentedOption[];
  commands: { name: string; summary: string; options: DocumentedOption[]; args: string[] }[];
  /** `--name` of every option that takes a value: the word after it is not a command. */
  valued: string[];
}

function specOf(table: CommandTable): Spec {
  const globals = documentedOptions(table.usage(), /^Global options/);
  const commands = table.commands().flatMap((c) =>
    [c.name, ...(c.aliases ?? [])].map((name) => ({
      name,
      summary: name === c.name ? c.summary : `same as ${c.name}`,
      options: documentedOptions(c.usage),
      args: [...((c as Command & ArgumentWords).argumentWords?.() ?? [])],
    }))
  );
  const all = [...globals, ...commands.flatMap((c) => c.options)];
  for (const word of [...commands.flatMap((c) => [c.name, ...c.args]), ...all.map((o) => o.long)]) {
    // Everything below is pasted into shell code unquoted.
    if (!/^[a-z][\w-]*$/.test(word)) throw new Error(`cannot complete ${JSON.stringify(word)}`);
  }
  const valued = [...new Set(all.filter((o) => o.value !== undefined).map((o) => `--${o.long}`))];
  return { globals, commands, valued };
}

const longs = (options: DocumentedOption[]) => options.map((o) => `--${o.long}`);

/** Options offered after a command: its own, then the global ones it does not repeat. */
function optionsAfter(spec: Spec, own: DocumentedOption[]): DocumentedOption[] {
  const names = new Set(own.map((o) => o.long));
  return [...own, ...spec.globals.filter((g) => !names.has(g.long) && g.long !== "version")];
}

/** `'text'` for bash and zsh. */
const shQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
/** `'text'` for fish. */
const fishQuote = (s: string) => `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;

/** The shell loop that finds the command word, skipping options and their values. */
function findCommand(spec: Spec, words: string, from: number, to: string): string {
  return `  local cmd= i
  for ((i = ${from}; i < ${to}; i++)); do
    case \${${words}[i]} in
      ${spec.valued.join("|")}) ((i++)) ;;
      -*) ;;
      *) cmd=\${${words}[i]}; break ;;
    esac
  done`;
}

function bash(spec: Spec): string {
  const branch = (name: string, options: string[], args: string[]) =>
    `    ${name === "" ? "''" : name})
      if [[ $cur == -* ]]; then words=${shQuote(options.join(" "))}
      else words=${shQuote(args.join(" "))}; fi ;;`;
  return `# chat-p2p completion for bash. Load it from ~/.bashrc:
#   eval "$(chat-p2p completions bash)"
# or save it as ~/.local/share/bash-completion/completions/chat-p2p
_chat_p2p() {
  local cur=\${COMP_WORDS[COMP_CWORD]} words
${findCommand(spec, "COMP_WORDS", 1, "COMP_CWORD")}
  case \${COMP_WORDS[COMP_CWORD-1]} in
    ${spec.valued.join("|")}) COMPREPLY=(); return ;;
  esac
  case $cmd in
${branch("", longs(spec.globals), spec.commands.map((c) => c.name))}
${
    spec.commands.map((c) => branch(c.name, longs(optionsAfter(spec, c.options)), c.args)).join(
      "\n",
    )
  }
    *) words= ;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _chat_p2p chat-p2p
`;
}

function zsh(spec: Spec): string {
  const described = (pairs: [string, string][]) =>
    pairs.map(([w, d]) => shQuote(`${w.replaceAll(":", "\\:")}:${d}`)).join(" ");
  const options = (os: DocumentedOption[]) =>
    described(os.map((o) => [`--${o.long}`, o.description]));
  const branch = (name: string, opts: string, args: string) =>
    `    ${name === "" ? "''" : name})
      if [[ $PREFIX == -* ]]; then described=(${opts})
      else described=(${args}); fi ;;`;
  return `#compdef chat-p2p
# chat-p2p completion for zsh. Load it from ~/.zshrc, after compinit:
#   eval "$(chat-p2p completions zsh)"
# or save it as _chat-p2p in a directory on $fpath
_chat_p2p() {
  local -a described
${findCommand(spec, "words", 2, "CURRENT")}
  case \${words[CURRENT-1]} in
    ${spec.valued.join("|")}) return 1 ;;
  esac
  case $cmd in
${branch("", options(spec.globals), described(spec.commands.map((c) => [c.name, c.summary])))}
${
    spec.commands.map((c) =>
      branch(
        c.name,
        options(optionsAfter(spec, c.options)),
        described(c.args.map((a) => [a, a])),
      )
    ).join("\n")
  }
  esac
  (( \${#described} )) && _describe -t values chat-p2p described
}
if [[ \${zsh_eval_context[-1]} == loadautofunc ]]; then
  _chat_p2p "$@"
else
  compdef _chat_p2p chat-p2p
fi
`;
}

function fish(spec: Spec): string {
  const option = (o: DocumentedOption, when: string) =>
    `complete -c chat-p2p${when}${o.short ? ` -s ${o.short}` : ""} -l ${o.long}${
      o.value !== undefined ? " -x" : ""
    } -d ${fishQuote(o.description)}`;
  const lines = [
    "# chat-p2p completion for fish. Save it where fish finds it:",
    "#   chat-p2p completions fish > ~/.config/fish/completions/chat-p2p.fish",
    "function __chat_p2p_command",
    "    set -l tokens (commandline -opc)",
    "    set -e tokens[1]",
    "    while set -q tokens[1]",
    "        switch $tokens[1]",
    `            case ${spec.valued.join(" ")}`,
    "                set -e tokens[1]",
    "            case '-*'",
    "            case '*'",
    "                echo $tokens[1]",
    "                return 0",
    "        end",
    "        set -e tokens[1]",
    "    end",
    "    return 1",
    "end",
    "complete -c chat-p2p -f",
    ...spec.globals.map((o) =>
      option(o, o.long === "version" ? " -n 'not __chat_p2p_command'" : "")
    ),
    ...spec.commands.map((c) =>
      `complete -c chat-p2p -n 'not __chat_p2p_command' -a ${c.name} -d ${fishQuote(c.summary)}`
    ),
    ...spec.commands.flatMap((c) => {
      const when = ` -n 'test "$(__chat_p2p_command)" = ${c.name}'`;
      const globals = new Set(spec.globals.map((g) => g.long));
      return [
        ...c.options.filter((o) => !globals.has(o.long)).map((o) => option(o, when)),
        ...(c.args.length > 0
          ? [`complete -c chat-p2p${when} -a ${fishQuote(c.args.join(" "))}`]
          : []),
      ];
    }),
  ];
  return lines.join("\n") + "\n";
}

const GENERATORS: Record<Shell, (spec: Spec) => string> = { bash, zsh, fish };

/** The completion script for `shell`, from `table`. */
export function completionScript(shell: Shell, table: CommandTable): string {
  return GENERATORS[shell](specOf(table));
}

const USAGE = `Usage: chat-p2p completions <shell>

Prints a completion script for bash, zsh or fish: commands, their options, and the commands
after \`help\`. Load it once per shell session, or save it where the shell looks:

  bash   eval "$(chat-p2p completions bash)"                      (in ~/.bashrc)
  zsh    eval "$(chat-p2p completions zsh)"                       (in ~/.zshrc, after compinit)
  fish   chat-p2p completions fish > ~/.config/fish/completions/chat-p2p.fish

Options:
  -h, --help   show this help`;

/** The `completions` command, for the commands of `table`. */
export function completionsCommand(table: CommandTable): Command & ArgumentWords {
  return {
    name: "completions",
    summary: "print a shell completion script (bash, zsh, fish)",
    usage: USAGE,
    argumentWords: () => SHELLS,
    run(args: string[], ctx: Context): Promise<void> {
      const { positionals: [shell] } = parseCommandArgs(this, args, {}, ["shell"]);
      if (!(SHELLS as readonly string[]).includes(shell)) {
        throw new UsageError(`completions: no completions for ${JSON.stringify(shell)}`, USAGE);
      }
      ctx.io.stdout.write(completionScript(shell as Shell, table));
      return Promise.resolve();
    },
  };
}
