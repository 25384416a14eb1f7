/**
 * The terminal the chat screen runs on, as a small port: raw keyboard bytes in, text out, raw
 * mode, the window size and the signals that end or resize a terminal program.
 * {@linkcode denoTerminal} is the process's own terminal; tests and other hosts can pass their
 * own.
 *
 * @module
 */

/** Signals after which the chat screen restores the terminal and closes, with their numbers. */
export const QUIT_SIGNALS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/** One of {@linkcode QUIT_SIGNALS}. */
export type QuitSignal = keyof typeof QUIT_SIGNALS;

/** A terminal: what the chat screen reads, writes and listens to. */
export interface Terminal {
  /** Keyboard input: bytes as the terminal sends them once raw mode is on. Read once. */
  readonly input: ReadableStream<Uint8Array>;
  /** Writes `text` (escape sequences included) at once. */
  write(text: string): void;
  /** Raw mode on (every key arrives as bytes, no echo, Ctrl-C is a byte) or off. */
  setRaw(raw: boolean): void;
  /** The window's size now. */
  size(): { columns: number; rows: number };
  /** Calls `listener` when the window is resized; returns the function that stops it. */
  onResize(listener: () => void): () => void;
  /**
   * Calls `listener` on one of {@linkcode QUIT_SIGNALS} instead of the default action (the
   * process ending), until the returned function is called.
   */
  onSignal(listener: (signal: QuitSignal) => void): () => void;
}

function writeAll(text: string): void {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/**
 * The process's terminal: stdin and stdout, `Deno.consoleSize`, SIGWINCH and the quit signals.
 * Throws when stdin or stdout is not a terminal (a pipe or a file: chat then prints plain lines
 * without the screen).
 */
export function denoTerminal(): Terminal {
  if (!Deno.stdin.isTerminal() || !Deno.stdout.isTerminal()) {
    throw new Error("the chat screen needs a terminal on stdin and stdout");
  }
  return {
    input: Deno.stdin.readable,
    write: writeAll,
    setRaw: (raw) => Deno.stdin.setRaw(raw),
    size: () => Deno.consoleSize(),
    onResize(listener) {
      Deno.addSignalListener("SIGWINCH", listener);
      return () => Deno.removeSignalListener("SIGWINCH", listener);
    },
    onSignal(listener) {
      const signals = Object.keys(QUIT_SIGNALS) as QuitSignal[];
      const handlers = signals.map((signal) => {
        const handler = () => listener(signal);
        Deno.addSignalListener(signal, handler);
        return () => Deno.removeSignalListener(signal, handler);
      });
      return () => handlers.forEach((remove) => remove());
    },
  };
}
