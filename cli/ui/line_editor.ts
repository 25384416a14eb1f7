/**
 * The draft being typed in the chat: a sequence of grapheme clusters with a cursor, the editing
 * operations of a shell line editor, a history of sent messages, and the length limits (text past
 * them is refused whole, so a draft never holds more than can be sent). No terminal I/O: the
 * chat screen draws it from {@linkcode layoutRows}.
 *
 * Lengths count grapheme clusters, what a person sees as one character: 8,193 emoji are 8,193
 * characters. Every other limit (the byte size the protocol allows) is the caller's `check` on
 * the whole draft: chat gives the client library's `checkMessage`.
 *
 * @example
 * ```ts
 * import { LineEditor } from "./line_editor.ts";
 * const ed = new LineEditor({ maxLength: 10 });
 * ed.insert("hello");
 * ed.insert(" world"); // "not added: the message would be 11 characters; the limit is 10"
 * ed.text; // "hello"
 * ```
 *
 * @module
 */
import { graphemes, graphemeWidth } from "./text_width.ts";

/** How long a draft may be. */
export interface EditorLimits {
  /** The most grapheme clusters a message may have. */
  maxLength: number;
  /**
   * Any other limit, on the whole draft as it would be: why it may not be sent (one sentence),
   * or undefined. Called on every insertion that passes `maxLength`.
   */
  check?: (text: string) => string | undefined;
}

/** Characters a draft never holds: controls other than newline and tab. */
// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

const count = (n: number): string => n.toLocaleString("en-US");

function isSpace(g: string): boolean {
  return g === " " || g === "\n" || g === "\t";
}

/**
 * Where each screen row of a draft starts (indices into `gs`), on rows `width` columns wide: a
 * `\n` ends its row (it takes one column, where the cursor can stand), a cluster that does not
 * fit starts the next row, and a full last row is followed by an empty one for the cursor.
 */
export function layoutRows(
  gs: readonly string[],
  widths: readonly number[],
  width: number,
): number[] {
  const starts = [0];
  let col = 0;
  for (let i = 0; i < gs.length; i++) {
    const w = gs[i] === "\n" ? 1 : widths[i];
    if (col + w > width && col > 0) {
      starts.push(i);
      col = 0;
    }
    col += w;
    if (gs[i] === "\n") {
      starts.push(i + 1);
      col = 0;
    }
  }
  if (col >= width) starts.push(gs.length);
  return starts;
}

/** A draft's rows and where its cursor is among them. */
export interface Layout {
  /** Index of the first cluster of each row. */
  starts: number[];
  /** The cursor's row. */
  row: number;
  /** The cursor's column within its row. */
  col: number;
}

/** The line editor. */
export class LineEditor {
  #g: string[] = [];
  #w: number[] = [];
  #cursor = 0;
  #history: string[] = [];
  #historyAt = 0;
  #stash = "";
  readonly #limits: EditorLimits;

  /** An empty draft with `limits`. */
  constructor(limits: EditorLimits) {
    this.#limits = { ...limits };
  }

  /** The draft's text. */
  get text(): string {
    return this.#g.join("");
  }

  /** The draft's grapheme clusters (do not modify). */
  get clusters(): readonly string[] {
    return this.#g;
  }

  /** Column widths of {@linkcode clusters}, one each. */
  get widths(): readonly number[] {
    return this.#w;
  }

  /** Length in grapheme clusters. */
  get length(): number {
    return this.#g.length;
  }

  /** Cursor position: the index of the cluster it stands before. */
  get cursor(): number {
    return this.#cursor;
  }

  /** The limit on the length, in grapheme clusters. */
  get maxLength(): number {
    return this.#limits.maxLength;
  }

  /**
   * Inserts `text` at the cursor (control characters other than newline and tab dropped), or
   * refuses it whole when the draft would pass a limit; `dropped` more characters that were
   * received but not kept (a huge paste) make it refused too. Returns the refusal, a one-line
   * sentence, or undefined when inserted.
   */
  insert(text: string, dropped = 0): string | undefined {
    const limit = this.#limits.maxLength;
    if (dropped > 0) {
      return `not added: the paste is far too long (${
        count(text.length + dropped)
      } characters); the limit is ${count(limit)}`;
    }
    const clean = text.replace(CONTROLS, "");
    if (clean === "") return undefined;
    // Clusters can join across the insertion point (a combining accent after "e", the second
    // half of a flag), so the neighbours are segmented again with the new text.
    const from = Math.max(0, this.#cursor - 1);
    const to = Math.min(this.#g.length, this.#cursor + 1);
    const before = this.#g.slice(from, this.#cursor).join("");
    const after = this.#g.slice(this.#cursor, to).join("");
    const segs = graphemes(before + clean + after);
    const newLength = this.#g.length - (to - from) + segs.length;
    if (newLength > limit) {
      return `not added: the message would be ${count(newLength)} characters; the limit is ${
        count(limit)
      }`;
    }
    if (this.#limits.check) {
      const draft = this.#g.slice(0, from).join("") + before + clean + after +
        this.#g.slice(to).join("");
      const refused = this.#limits.check(draft);
      if (refused !== undefined) return `not added: ${refused}`;
    }
    this.#g.splice(from, to - from, ...segs);
    this.#w.splice(from, to - from, ...segs.map(graphemeWidth));
    const keptAfter = after !== "" && segs[segs.length - 1] === after ? 1 : 0;
    this.#cursor = from + segs.length - keptAfter;
    return undefined;
  }

  /** Replaces the whole draft (cursor at the end); used for history. Limits are not checked. */
  #set(text: string): void {
    this.#g = graphemes(text);
    this.#w = this.#g.map(graphemeWidth);
    this.#cursor = this.#g.length;
  }

  /** Empties the draft, returning its text. */
  clear(): string {
    const text = this.text;
    this.#set("");
    this.#historyAt = this.#history.length;
    return text;
  }

  /** Takes the draft as sent: returns its text, remembers it in the history, empties it. */
  submit(): string {
    const text = this.clear();
    if (text.trim() !== "" && this.#history[this.#history.length - 1] !== text) {
      this.#history.push(text);
      if (this.#history.length > 100) this.#history.shift();
    }
    this.#historyAt = this.#history.length;
    return text;
  }

  #delete(from: number, to: number): boolean {
    if (to <= from) return false;
    this.#g.splice(from, to - from);
    this.#w.splice(from, to - from);
    this.#cursor = from;
    return true;
  }

  #moveTo(i: number): boolean {
    const to = Math.max(0, Math.min(this.#g.length, i));
    if (to === this.#cursor) return false;
    this.#cursor = to;
    return true;
  }

  /** Start of the logical line (after the last `\n` before `i`). */
  #lineStart(i: number): number {
    while (i > 0 && this.#g[i - 1] !== "\n") i--;
    return i;
  }

  /** End of the logical line (the next `\n` at or after `i`, or the end). */
  #lineEnd(i: number): number {
    while (i < this.#g.length && this.#g[i] !== "\n") i++;
    return i;
  }

  #wordStartBefore(i: number): number {
    while (i > 0 && isSpace(this.#g[i - 1])) i--;
    while (i > 0 && !isSpace(this.#g[i - 1])) i--;
    return i;
  }

  #wordEndAfter(i: number): number {
    while (i < this.#g.length && isSpace(this.#g[i])) i++;
    while (i < this.#g.length && !isSpace(this.#g[i])) i++;
    return i;
  }

  /** Cursor one cluster left; false when it did not move. */
  left(): boolean {
    return this.#moveTo(this.#cursor - 1);
  }

  /** Cursor one cluster right. */
  right(): boolean {
    return this.#moveTo(this.#cursor + 1);
  }

  /** Cursor to the start of its line (of the draft's lines, not screen rows). */
  home(): boolean {
    return this.#moveTo(this.#lineStart(this.#cursor));
  }

  /** Cursor to the end of its line. */
  end(): boolean {
    return this.#moveTo(this.#lineEnd(this.#cursor));
  }

  /** Cursor to the start of the word before it. */
  wordLeft(): boolean {
    return this.#moveTo(this.#wordStartBefore(this.#cursor));
  }

  /** Cursor to the end of the word after it. */
  wordRight(): boolean {
    return this.#moveTo(this.#wordEndAfter(this.#cursor));
  }

  /** Deletes the cluster before the cursor. */
  backspace(): boolean {
    return this.#delete(Math.max(0, this.#cursor - 1), this.#cursor);
  }

  /** Deletes the cluster at the cursor. */
  deleteForward(): boolean {
    return this.#delete(this.#cursor, Math.min(this.#g.length, this.#cursor + 1));
  }

  /** Deletes the word before the cursor (Ctrl-W). */
  deleteWordBack(): boolean {
    return this.#delete(this.#wordStartBefore(this.#cursor), this.#cursor);
  }

  /** Deletes the word after the cursor (Alt-D). */
  deleteWordForward(): boolean {
    return this.#delete(this.#cursor, this.#wordEndAfter(this.#cursor));
  }

  /** Deletes from the start of the line to the cursor (Ctrl-U). */
  killToStart(): boolean {
    return this.#delete(this.#lineStart(this.#cursor), this.#cursor);
  }

  /** Deletes from the cursor to the end of the line, or the newline there (Ctrl-K). */
  killToEnd(): boolean {
    const end = this.#lineEnd(this.#cursor);
    return this.#delete(this.#cursor, end === this.#cursor ? end + 1 : end);
  }

  /** The draft's rows on a screen `width` columns wide, and the cursor's place among them. */
  layout(width: number): Layout {
    const starts = layoutRows(this.#g, this.#w, width);
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) { // the last row starting at or before the cursor
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= this.#cursor) lo = mid;
      else hi = mid - 1;
    }
    let col = 0;
    for (let i = starts[lo]; i < this.#cursor; i++) col += this.#w[i];
    return { starts, row: lo, col };
  }

  /**
   * Cursor one screen row up (`-1`) or down (`1`) at about the same column; at the first or last
   * row it walks the history of sent messages instead. False when nothing changed.
   */
  vertical(direction: -1 | 1, width: number): boolean {
    const { starts, row, col } = this.layout(width);
    const target = row + direction;
    if (target < 0 || target >= starts.length) return this.#walkHistory(direction);
    const end = target + 1 < starts.length ? starts[target + 1] : this.#g.length;
    let i = starts[target];
    let c = 0;
    while (i < end && this.#g[i] !== "\n" && c + this.#w[i] <= col) c += this.#w[i++];
    if (i === end && end < this.#g.length && target + 1 < starts.length) i = end - 1;
    return this.#moveTo(i);
  }

  #walkHistory(direction: -1 | 1): boolean {
    const at = this.#historyAt + direction;
    if (at < 0 || at > this.#history.length) return false;
    if (this.#historyAt === this.#history.length) this.#stash = this.text;
    this.#historyAt = at;
    this.#set(at === this.#history.length ? this.#stash : this.#history[at]);
    return true;
  }
}
