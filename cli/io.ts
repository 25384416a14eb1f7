/**
 * The process boundary: where commands write output, read input and look at the environment.
 * Commands only talk to an {@linkcode Io}, so tests run them in-process with captured output.
 *
 * @module
 */

/** A text sink such as stdout or stderr. */
export interface Output {
  /**
   * Writes `text` as is (no newline added), all of it, before returning (nothing is buffered in
   * the process). A closed pipe is not an error: `closed` says so from then on.
   */
  write(text: string): void;
  /** True once a write found the reader gone (a closed pipe). */
  readonly closed?: boolean;
  /** True when the sink is an interactive terminal. */
  readonly isTerminal: boolean;
}

/** A byte source such as stdin. */
export interface Input {
  /** True when the source is an interactive terminal. */
  readonly isTerminal: boolean;
  /** The bytes, as a stream; read it at most once. */
  readable(): ReadableStream<Uint8Array>;
  /**
   * Terminals only: switches raw mode (no echo, no line editing, Ctrl-C arrives as a byte).
   * Used to read a passphrase; absent where there is no terminal to switch.
   */
  setRaw?(raw: boolean): void;
  /**
   * One read of at most `buf.length` bytes straight from the source, without a stream's
   * read-ahead (so later readers of stdin lose nothing); null at EOF. Used for prompts.
   */
  read?(buf: Uint8Array): Promise<number | null>;
}

/** Everything a command may touch outside its profile directory and the network. */
export interface Io {
  /** Standard output: only what a script would pipe. */
  readonly stdout: Output;
  /** Standard error: diagnostics, warnings, progress. */
  readonly stderr: Output;
  /** Standard input. */
  readonly stdin: Input;
  /** Reads an environment variable. */
  env(name: string): string | undefined;
  /** The current time. */
  now(): Date;
}

/** An {@linkcode Output} over a file (stdout, stderr) with blocking writes. */
function fileOutput(file: typeof Deno.stdout): Output {
  let closed = false;
  return {
    write(text) {
      const bytes = new TextEncoder().encode(text);
      let off = 0;
      try {
        while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
      } catch (e) {
        // A closed pipe (`chat-p2p id | head -1`) is not an error worth a stack trace.
        if (!(e instanceof Deno.errors.BrokenPipe)) throw e;
        closed = true;
      }
    },
    get closed() {
      return closed;
    },
    get isTerminal() {
      return file.isTerminal();
    },
  };
}

/** The real process: Deno's stdio and environment. */
export function denoIo(): Io {
  return {
    stdout: fileOutput(Deno.stdout),
    stderr: fileOutput(Deno.stderr),
    stdin: {
      get isTerminal() {
        return Deno.stdin.isTerminal();
      },
      readable: () => Deno.stdin.readable,
      setRaw: (raw) => Deno.stdin.setRaw(raw),
      read: (buf) => Deno.stdin.read(buf),
    },
    env: (name) => Deno.env.get(name),
    now: () => new Date(),
  };
}

/** Splits a byte stream into text lines (without their `\n` or `\r\n`), last partial line included. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of stream) {
    buf += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      yield line.endsWith("\r") ? line.slice(0, -1) : line;
    }
  }
  buf += decoder.decode();
  if (buf.length > 0) yield buf.endsWith("\r") ? buf.slice(0, -1) : buf;
}
