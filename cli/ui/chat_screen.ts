/**
 * The interactive chat screen: the conversation scrolls in the terminal's own scrollback, and the
 * draft being typed stays below it, redrawn after every line printed above, however many rows it
 * wraps over (CJK and emoji take two columns). Delivery marks update the message's own line in
 * place while it is on the screen. Pastes arrive whole (bracketed paste) and become one message,
 * newlines and blank lines kept; input past the length limits is refused at once with a notice.
 *
 * Drawing costs the rows that are visible, not the draft's length: the draft shows at most half
 * the screen, scrolled to the cursor, and a 16,384-character paste is inserted and drawn once.
 *
 * Only for a terminal: with stdin or stdout piped, chat prints plain lines and never opens it.
 * Everything shown goes through {@linkcode sanitizeForTerminal}, so text from others cannot move
 * the cursor or fake lines, and widths are measured on what is actually drawn. While the screen
 * is open, all output must go through it; after it closes (the user left, or
 * {@linkcode ChatScreen.close}), its print calls write plain lines.
 *
 * The terminal is restored (raw mode off, bracketed paste off, cursor shown, the draft area
 * erased so the shell prompt starts on a fresh line) on every way out: leaving, `close()`,
 * SIGTERM, SIGHUP or SIGINT (the screen closes saying which; the caller then ends), an uncaught
 * error, and the process exiting.
 *
 * Keys: Enter sends; Alt-Enter, Ctrl-J or a trailing `\` before Enter insert a newline; ←/→,
 * Home/End, Ctrl-A/E, Ctrl-←/→ or Alt-B/F move; Backspace/Delete, Ctrl-U/K/W and Alt-D delete;
 * ↑/↓ move between the draft's rows, then through the messages sent; Ctrl-L redraws; Ctrl-D on
 * an empty draft leaves; Ctrl-C leaves, asking first when there is a draft to lose.
 *
 * @example
 * ```ts
 * import { openChatScreen } from "./chat_screen.ts";
 * const screen = openChatScreen({ color: true, limits: { maxLength: 16_384 } });
 * try {
 *   screen.printLine([{ text: "chat with bob", style: "dim" }]);
 *   for await (const text of screen) {
 *     if (text === "/quit") break;
 *     const id = crypto.randomUUID();
 *     screen.printMessage(id, [{ text: "you", style: "cyan" }, { text: `: ${text}` }], "sending");
 *     // ... later, when the relay accepts it:
 *     screen.setMark(id, "accepted");
 *   }
 * } finally {
 *   screen.close();
 * }
 * ```
 *
 * @module
 */
import { styleText } from "node:util";
import type { Style } from "../context.ts";
import { sanitizeForTerminal } from "./format.ts";
import { type Key, KeyDecoder } from "./keys.ts";
import { type EditorLimits, LineEditor } from "./line_editor.ts";
import { denoTerminal, type QuitSignal, type Terminal } from "./terminal.ts";
import { rowsOf, TAB_WIDTH, textWidth, truncateToWidth } from "./text_width.ts";

/** A piece of a line, drawn in `style` when colour is allowed. */
export interface Span {
  /** The text; sanitized before it is shown (control characters made visible). */
  text: string;
  /** How to draw it. */
  style?: Style;
}

/** A line to show: plain text, or styled pieces. Newlines in it start indented rows. */
export type Line = string | readonly Span[];

/** A message's delivery state, shown at the end of its line. */
export type Mark = "sending" | "accepted" | "delivered" | "failed";

/** The glyphs of {@linkcode Mark}s, each two columns (so changing one never re-wraps a line). */
export const MARK_GLYPHS: Readonly<Record<Mark, string>> = {
  sending: "… ",
  accepted: "✓ ",
  delivered: "✓✓",
  failed: "✗ ",
};

const MARK_STYLES: Readonly<Record<Mark, Style>> = {
  sending: "dim",
  accepted: "dim",
  delivered: "green",
  failed: "red",
};

/** Why the screen closed. */
export type CloseReason =
  /** The caller called {@linkcode ChatScreen.close}. */
  | "closed"
  /** Ctrl-D on an empty draft, or the terminal's input ended. */
  | "eof"
  /** Ctrl-C (confirmed when there was a draft). */
  | "interrupt"
  /** An error inside the screen (the iterator throws it). */
  | "error"
  /**
   * That signal arrived (SIGTERM, SIGHUP, SIGINT): the caller should end promptly, by convention
   * with exit code 128 + its number (`QUIT_SIGNALS` in terminal.ts).
   */
  | QuitSignal;

/** Options for {@linkcode openChatScreen}. */
export interface ChatScreenOptions {
  /** The terminal (default: the process's, {@linkcode denoTerminal}). */
  terminal?: Terminal;
  /** Whether colour is allowed (a terminal, and `NO_COLOR` unset). */
  color: boolean;
  /** How long a message may be. */
  limits: EditorLimits;
  /** The prompt before the draft (default "> "). */
  prompt?: string;
  /**
   * Ask the terminal for bracketed paste (default true). Without it, a paste is recognised by
   * several keys arriving at once, and its newlines stay in the draft.
   */
  bracketedPaste?: boolean;
}

/** The chat screen; iterate it for the messages the user sends. */
export interface ChatScreen extends AsyncIterable<string>, Disposable {
  /** Prints `line` above the draft (a received message, a notice, history). */
  printLine(line: Line): void;
  /** Prints a message line with a delivery mark that {@linkcode setMark} can change later. */
  printMessage(id: string, line: Line, mark: Mark): void;
  /**
   * Changes message `id`'s mark: on its own line while that is on the screen, else (it scrolled
   * away, or the screen closed) on a short copy of the line printed anew. Unknown ids are ignored.
   */
  setMark(id: string, mark: Mark): void;
  /** Shows `text` on the status row under the draft until replaced ("" removes it). */
  status(text: string): void;
  /** Resolves when the screen has closed, with why. */
  readonly closed: Promise<CloseReason>;
  /** Restores the terminal and ends the iteration. Idempotent. */
  close(): void;
}

/** How many printed lines are kept to redraw the screen after a resize. */
const KEPT_LINES = 500;
/** How many messages' marks can still be changed. */
const KEPT_MESSAGES = 10_000;
/** A lone ESC is the Esc key once nothing follows it for this long. */
const ESC_TIMEOUT_MS = 50;
/** An Enter that came with other keys waits this long: if more input follows, it was pasted. */
const PASTED_ENTER_MS = 30;
/** Indent of a message's continuation lines. */
const INDENT = "  ";

const CSI = "\x1b[";
const up = (n: number): string => (n > 0 ? `${CSI}${n}A` : "");
const down = (n: number): string => (n > 0 ? `${CSI}${n}B` : "");
const column = (col: number): string => `${CSI}${col + 1}G`;
const HIDE_CURSOR = `${CSI}?25l`;
const SHOW_CURSOR = `${CSI}?25h`;
const ERASE_LINE = `${CSI}2K`;
const PASTE_ON = `${CSI}?2004h`;
const PASTE_OFF = `${CSI}?2004l`;

/** A line as it is drawn: sanitized pieces, `\n` + indent between rows. */
interface Printed {
  spans: Span[];
  id?: string;
  mark?: Mark;
  /** Rows it takes at {@linkcode width}. */
  rows: number;
  width: number;
  /** Output row index of its first row (see ChatScreenImpl.#outRows); -Infinity: not on screen. */
  first: number;
}

/** The spans of `line`, sanitized, tabs as spaces, newlines followed by the indent. */
function sanitizeLine(line: Line): Span[] {
  const spans = typeof line === "string" ? [{ text: line }] : line;
  return spans.map(({ text, style }) => ({
    text: text.split(/\r?\n/).map((part) =>
      sanitizeForTerminal(part).replaceAll("\t", " ".repeat(TAB_WIDTH))
    ).join("\n" + INDENT),
    style,
  }));
}

function markSpans(mark: Mark | undefined): Span[] {
  return mark ? [{ text: "  " }, { text: MARK_GLYPHS[mark], style: MARK_STYLES[mark] }] : [];
}

function plainText(spans: readonly Span[]): string {
  return spans.map((s) => s.text).join("");
}

const count = (n: number): string => n.toLocaleString("en-US");

class ChatScreenImpl implements ChatScreen {
  readonly #term: Terminal;
  readonly #color: boolean;
  readonly #prompt: string;
  readonly #editor: LineEditor;
  readonly #keys = new KeyDecoder();
  readonly #cleanups: Array<() => void> = [];
  readonly #closed: Promise<CloseReason>;
  #resolveClosed!: (reason: CloseReason) => void;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  /** Submitted texts not yet taken by the iterator, and the iterator waiting for one. */
  readonly #submitted: string[] = [];
  #wake: (() => void) | undefined;
  #error: unknown;
  #isClosed = false;
  #restored = false;

  /** Printed lines kept for redraws (newest last), and messages by id. */
  #lines: Printed[] = [];
  readonly #messages = new Map<string, Printed>();
  /** Lines printed but not yet drawn (drawn together at the end of the current task). */
  #pending: Printed[] = [];
  #renderQueued = false;

  /**
   * Rows of output drawn so far (a running index); with #areaTop it tells where a printed line
   * is: its first row is #areaTop - (#outRows - first) rows from the top of the screen.
   */
  #outRows = 0;
  /**
   * Screen row of the draft area's first row. Unknown at the start, so taken as 0: it is never
   * more than the real row, so a line believed on screen really is.
   */
  #areaTop = 0;
  /** Rows of the draft area as last drawn. */
  #areaHeight = 1;
  /** The cursor's row within the draft area, and its column. */
  #cursorRow = 0;
  #cursorCol = 0;
  /** The first draft row shown (the draft scrolls when it has more rows than fit). */
  #viewTop = 0;

  #status = "";
  #notice = "";
  #confirmingDiscard = false;
  #escTimer: ReturnType<typeof setTimeout> | undefined;
  #enterTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: ChatScreenOptions) {
    this.#term = opts.terminal ?? denoTerminal();
    this.#color = opts.color;
    this.#prompt = opts.prompt ?? "> ";
    this.#editor = new LineEditor(opts.limits);
    this.#closed = new Promise((resolve) => this.#resolveClosed = resolve);
    const restoreOnExit = () => this.#restore();
    for (const event of ["error", "unhandledrejection", "unload"]) {
      globalThis.addEventListener(event, restoreOnExit);
      this.#cleanups.push(() => globalThis.removeEventListener(event, restoreOnExit));
    }
    this.#cleanups.push(this.#term.onResize(() => this.#guard(() => this.#redrawAll())));
    // The screen's listener replaces the signal's default action until the screen closes.
    this.#cleanups.push(this.#term.onSignal((signal) => this.#finish(signal)));
    this.#term.setRaw(true);
    this.#term.write(
      (opts.bracketedPaste ?? true ? PASTE_ON : "") + "\r" + ERASE_LINE + this.#drawArea(),
    );
    this.#readLoop();
  }

  get closed(): Promise<CloseReason> {
    return this.#closed;
  }

  // --- output -------------------------------------------------------------------------------

  printLine(line: Line): void {
    this.#print(sanitizeLine(line));
  }

  printMessage(id: string, line: Line, mark: Mark): void {
    this.#print(sanitizeLine(line), id, mark);
  }

  #print(spans: Span[], id?: string, mark?: Mark): void {
    const p: Printed = { spans, id, mark, rows: 0, width: 0, first: -Infinity };
    if (id !== undefined) {
      this.#messages.delete(id);
      this.#messages.set(id, p);
      if (this.#messages.size > KEPT_MESSAGES) {
        this.#messages.delete(this.#messages.keys().next().value!);
      }
    }
    if (this.#isClosed) {
      this.#writePlain(p);
      return;
    }
    this.#lines.push(p);
    if (this.#lines.length > KEPT_LINES) this.#lines.splice(0, this.#lines.length - KEPT_LINES);
    this.#pending.push(p);
    this.#queueRender();
  }

  setMark(id: string, mark: Mark): void {
    const p = this.#messages.get(id);
    if (!p || p.mark === mark) return;
    p.mark = mark;
    if (this.#pending.includes(p)) return; // drawn soon, with the new mark
    const { columns } = this.#size();
    const distance = this.#outRows - p.first; // rows from its first row down to the draft area
    if (!this.#isClosed && p.width === columns && this.#areaTop - distance >= 0) {
      // On screen: go up to it, draw it again (same cells but the mark), come back.
      const back = this.#outRows + this.#cursorRow - (p.first + p.rows - 1);
      this.#term.write(
        HIDE_CURSOR + "\r" + up(this.#cursorRow + distance) + this.#styled(this.#spansOf(p)) +
          "\r" + down(back) + column(this.#cursorCol) + SHOW_CURSOR,
      );
      return;
    }
    // Scrolled away (or closed): a one-row copy with the new mark, which later marks update.
    const room = Math.max(1, columns - textWidth(plainText(markSpans(mark))));
    const short = truncateToWidth(plainText(p.spans).replaceAll("\n" + INDENT, "⏎ "), room);
    this.#print([{ text: short, style: "dim" }], id, mark);
  }

  status(text: string): void {
    this.#status = sanitizeForTerminal(text);
    if (!this.#isClosed) this.#queueRender();
  }

  #spansOf(p: Printed): Span[] {
    return [...p.spans, ...markSpans(p.mark)];
  }

  #styled(spans: readonly Span[]): string {
    let out = "";
    for (const { text, style } of spans) {
      const drawn = text.replaceAll("\n", "\r\n");
      out += style && this.#color ? styleText(style, drawn, { validateStream: false }) : drawn;
    }
    return out;
  }

  #writePlain(p: Printed): void {
    this.#term.write(this.#styled(this.#spansOf(p)).replaceAll("\r\n", "\n") + "\n");
  }

  #size(): { columns: number; rows: number } {
    const { columns, rows } = this.#term.size();
    return { columns: Math.max(4, columns), rows: Math.max(2, rows) };
  }

  #measure(p: Printed, columns: number): void {
    p.width = columns;
    p.rows = rowsOf(plainText(this.#spansOf(p)), columns);
  }

  // --- drawing ------------------------------------------------------------------------------

  #queueRender(): void {
    if (this.#renderQueued) return;
    this.#renderQueued = true;
    queueMicrotask(() => {
      this.#renderQueued = false;
      this.#guard(() => this.#render());
    });
  }

  /** Erases the draft area, draws the pending lines where it was, and draws it again below. */
  #render(): void {
    if (this.#isClosed) return;
    const { columns, rows } = this.#size();
    let out = HIDE_CURSOR + this.#eraseArea();
    let drawn = 0;
    for (const p of this.#pending) {
      this.#measure(p, columns);
      p.first = this.#outRows + drawn;
      drawn += p.rows;
      out += this.#styled(this.#spansOf(p)) + "\r\n";
    }
    this.#pending = [];
    this.#outRows += drawn;
    const area = this.#drawArea();
    this.#areaTop = Math.min(this.#areaTop + drawn, rows - this.#areaHeight);
    this.#term.write(out + area);
  }

  /** Clears the screen and draws the latest lines that fit, then the draft (resize, Ctrl-L). */
  #redrawAll(): void {
    if (this.#isClosed) return;
    const { columns } = this.#size();
    const area = this.#drawArea(); // first, for its height
    const room = this.#size().rows - this.#areaHeight;
    let used = 0;
    let from = this.#lines.length;
    while (from > 0) {
      const p = this.#lines[from - 1];
      this.#measure(p, columns);
      if (used + p.rows > room) break;
      used += p.rows;
      from--;
    }
    for (const p of this.#lines.slice(0, from)) p.first = -Infinity;
    let out = HIDE_CURSOR + `${CSI}H${CSI}2J`;
    this.#outRows = 0;
    for (const p of this.#lines.slice(from)) {
      p.first = this.#outRows;
      this.#outRows += p.rows;
      out += this.#styled(this.#spansOf(p)) + "\r\n";
    }
    this.#pending = [];
    this.#areaTop = this.#outRows;
    this.#term.write(out + area);
  }

  /**
   * Erases the draft area row by row and leaves the cursor at the start of its first row. (Not
   * with "erase below": at the top of the screen tmux takes that for clearing the screen, and
   * scrolls a copy of it into the scrollback.)
   */
  #eraseArea(): string {
    const rows = this.#areaHeight;
    return "\r" + up(this.#cursorRow) + `${ERASE_LINE}${CSI}B`.repeat(rows - 1) + ERASE_LINE +
      up(rows - 1);
  }

  /**
   * The draft area, drawn from its first row: the visible rows of the draft, then the status
   * row when there is something to say; leaves the cursor at the draft's cursor.
   */
  #drawArea(): string {
    const { columns, rows } = this.#size();
    const ed = this.#editor;
    const promptWidth = textWidth(this.#prompt);
    const width = Math.max(1, columns - promptWidth);
    const { starts, row, col } = ed.layout(width);
    const visible = Math.min(starts.length, Math.max(1, Math.floor(rows / 2)));
    if (row < this.#viewTop) this.#viewTop = row;
    if (row >= this.#viewTop + visible) this.#viewTop = row - visible + 1;
    this.#viewTop = Math.max(0, Math.min(this.#viewTop, starts.length - visible));
    const lines: string[] = [];
    for (let r = this.#viewTop; r < this.#viewTop + visible; r++) {
      const end = r + 1 < starts.length ? starts[r + 1] : ed.length;
      let text = "";
      for (let i = starts[r]; i < end; i++) {
        const g = ed.clusters[i];
        text += g === "\n" ? "" : g === "\t" ? " ".repeat(TAB_WIDTH) : g;
      }
      const prefix = r === 0 ? this.#paint("bold", this.#prompt) : " ".repeat(promptWidth);
      lines.push(prefix + text);
    }
    // The length shows once the draft wraps, or nears the limit.
    const statusRow = this.#statusRow(
      columns,
      starts.length > 1 || ed.length >= ed.maxLength * 0.9,
    );
    if (statusRow !== undefined) lines.push(statusRow);
    this.#areaHeight = lines.length;
    this.#cursorRow = row - this.#viewTop;
    this.#cursorCol = promptWidth + col;
    return lines.join("\r\n") + "\r" + up(lines.length - 1 - this.#cursorRow) +
      column(this.#cursorCol) + SHOW_CURSOR;
  }

  /** The status row: the notice (or else the status), and the length once the draft wraps. */
  #statusRow(columns: number, showLength: boolean): string | undefined {
    const counter = showLength
      ? `${count(this.#editor.length)}/${count(this.#editor.maxLength)}`
      : "";
    const left = this.#notice || this.#status;
    if (!left && !counter) return undefined;
    const room = Math.max(0, columns - 1 - (counter ? counter.length + 2 : 0));
    const text = truncateToWidth(left, room);
    const gap = " ".repeat(Math.max(0, columns - 1 - textWidth(text) - counter.length));
    return this.#paint(this.#notice ? "yellow" : "dim", text) + gap + this.#paint("dim", counter);
  }

  #paint(style: Style, text: string): string {
    return this.#color && text ? styleText(style, text, { validateStream: false }) : text;
  }

  // --- input --------------------------------------------------------------------------------

  async #readLoop(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      this.#reader = this.#term.input.getReader();
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done || this.#isClosed) break;
        this.#onInput(decoder.decode(value, { stream: true }));
      }
      this.#finish("eof");
    } catch (e) {
      this.#fail(e);
    }
  }

  /** Runs `f`; an exception in it closes the screen and is thrown by the iterator. */
  #guard(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.#fail(e);
    }
  }

  #onInput(chunk: string): void {
    clearTimeout(this.#escTimer);
    const keys = this.#keys.feed(chunk);
    if (this.#enterTimer !== undefined) {
      // More text right after a waiting Enter: the paste goes on, the Enter was a newline in it.
      // Any other key: it was a real Enter.
      clearTimeout(this.#enterTimer);
      this.#enterTimer = undefined;
      if (keys[0]?.kind === "text") this.#insert("\n");
      else keys.unshift({ kind: "key", name: "enter" });
    }
    this.#handleKeys(keys);
    if (this.#keys.hasPending) {
      this.#escTimer = setTimeout(
        () => this.#guard(() => this.#handleKeys(this.#keys.flush())),
        ESC_TIMEOUT_MS,
      );
    }
  }

  #handleKeys(keys: Key[]): void {
    // Text and Enters that arrive together were pasted (no one types that fast): without
    // bracketed paste a pasted newline comes as Enter. One at the end waits to see if more follows.
    const pasted = keys.length > 1 &&
      keys.every((k) => k.kind === "text" || (k.kind === "key" && k.name === "enter"));
    for (let i = 0; i < keys.length && !this.#isClosed; i++) {
      const key = keys[i];
      if (pasted && key.kind === "key") {
        if (i < keys.length - 1) {
          this.#insert("\n");
          continue;
        }
        this.#enterTimer = setTimeout(() => {
          this.#enterTimer = undefined;
          this.#guard(() => this.#handleKeys([key]));
        }, PASTED_ENTER_MS);
        continue;
      }
      this.#handleKey(key);
    }
    if (!this.#isClosed) this.#queueRender();
  }

  #insert(text: string, dropped = 0): void {
    const refused = this.#editor.insert(text, dropped);
    if (refused) this.#notice = refused;
  }

  #handleKey(key: Key): void {
    const ed = this.#editor;
    const wasConfirming = this.#confirmingDiscard;
    this.#confirmingDiscard = false;
    this.#notice = "";
    if (key.kind !== "key") {
      this.#insert(key.text, key.kind === "paste" ? key.dropped : 0);
      return;
    }
    const width = Math.max(1, this.#size().columns - textWidth(this.#prompt));
    switch (key.name) {
      case "enter":
        if (ed.cursor === ed.length && ed.clusters[ed.length - 1] === "\\") {
          ed.backspace();
          this.#insert("\n");
        } else if (ed.text.trim() !== "") {
          this.#submit(ed.submit());
        }
        break;
      case "newline":
        this.#insert("\n");
        break;
      case "interrupt":
        if (ed.length === 0 || wasConfirming) {
          this.#finish("interrupt");
        } else {
          this.#confirmingDiscard = true;
          this.#notice = "Ctrl-C again discards the draft and leaves; any other key keeps it";
        }
        break;
      case "eof":
        if (ed.length === 0) this.#finish("eof");
        else ed.deleteForward();
        break;
      case "redraw":
        this.#redrawAll();
        break;
      case "escape":
        break;
      case "up":
        ed.vertical(-1, width);
        break;
      case "down":
        ed.vertical(1, width);
        break;
      case "left":
        ed.left();
        break;
      case "right":
        ed.right();
        break;
      case "home":
        ed.home();
        break;
      case "end":
        ed.end();
        break;
      case "wordLeft":
        ed.wordLeft();
        break;
      case "wordRight":
        ed.wordRight();
        break;
      case "backspace":
        ed.backspace();
        break;
      case "delete":
        ed.deleteForward();
        break;
      case "deleteWordBack":
        ed.deleteWordBack();
        break;
      case "deleteWordForward":
        ed.deleteWordForward();
        break;
      case "killToStart":
        ed.killToStart();
        break;
      case "killToEnd":
        ed.killToEnd();
        break;
    }
  }

  // --- the iterator and closing -------------------------------------------------------------

  #submit(text: string): void {
    this.#submitted.push(text);
    this.#wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<string> {
    for (;;) {
      const next = this.#submitted.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#isClosed) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
  }

  close(): void {
    this.#finish("closed");
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #fail(e: unknown): void {
    if (this.#isClosed) return;
    this.#error = e;
    this.#finish("error");
  }

  #finish(reason: CloseReason): void {
    if (this.#isClosed) return;
    this.#restore();
    this.#isClosed = true;
    for (const cleanup of this.#cleanups.splice(0)) cleanup();
    this.#reader?.cancel().catch(() => {});
    this.#resolveClosed(reason);
    this.#wake?.();
  }

  /** Puts the terminal back as it was. Safe to call more than once, and when it is gone. */
  #restore(): void {
    if (this.#restored) return;
    this.#restored = true;
    clearTimeout(this.#escTimer);
    clearTimeout(this.#enterTimer);
    this.#enterTimer = undefined;
    try {
      // Lines printed but not yet drawn, then the draft area erased: the cursor ends at the start
      // of an empty row, where the shell's prompt will be.
      let out = this.#eraseArea();
      for (const p of this.#pending) out += this.#styled(this.#spansOf(p)) + "\r\n";
      this.#pending = [];
      this.#term.write(out + PASTE_OFF + SHOW_CURSOR);
    } catch { /* the terminal is gone (hangup) */ }
    try {
      this.#term.setRaw(false);
    } catch { /* the terminal is gone */ }
  }
}

/**
 * Opens the chat screen on a terminal: raw mode on, bracketed paste on, the prompt drawn where
 * the cursor is. Throws when the terminal is not a terminal (see {@linkcode denoTerminal}).
 */
export function openChatScreen(options: ChatScreenOptions): ChatScreen {
  return new ChatScreenImpl(options);
}
