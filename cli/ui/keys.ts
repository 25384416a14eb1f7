/**
 * Turns what a terminal in raw mode sends into editing actions: runs of typed text, whole
 * bracketed pastes, and named keys (arrows, Home/End, Ctrl and Alt combinations). Escape
 * sequences split across reads are kept until the rest arrives; an unknown sequence is dropped,
 * never typed as text.
 *
 * @example
 * ```ts
 * import { KeyDecoder } from "./keys.ts";
 * const keys = new KeyDecoder();
 * keys.feed("hi\x1b[D\r"); // [{ kind: "text", text: "hi" }, { kind: "key", name: "left" }, { kind: "key", name: "enter" }]
 * ```
 *
 * @module
 */

/** What a named key does in the chat's line editor. */
export type KeyName =
  /** Enter: send the message. */
  | "enter"
  /** Alt-Enter, Ctrl-J, Shift-Enter (where the terminal tells it apart): a newline in the draft. */
  | "newline"
  | "backspace"
  | "delete"
  | "left"
  | "right"
  | "up"
  | "down"
  /** Home, Ctrl-A. */
  | "home"
  /** End, Ctrl-E. */
  | "end"
  /** Ctrl-Left, Alt-B. */
  | "wordLeft"
  /** Ctrl-Right, Alt-F. */
  | "wordRight"
  /** Ctrl-W, Alt-Backspace. */
  | "deleteWordBack"
  /** Alt-D. */
  | "deleteWordForward"
  /** Ctrl-U. */
  | "killToStart"
  /** Ctrl-K. */
  | "killToEnd"
  /** Ctrl-C. */
  | "interrupt"
  /** Ctrl-D. */
  | "eof"
  /** Ctrl-L. */
  | "redraw"
  /** Esc on its own. */
  | "escape";

/** One decoded input event. */
export type Key =
  /** Typed printable text (a run of it when it arrived together). */
  | { kind: "text"; text: string }
  /**
   * Everything between the bracketed-paste markers, newlines as `\n`; `dropped` characters past
   * the decoder's cap were counted but not kept.
   */
  | { kind: "paste"; text: string; dropped: number }
  /** A named key. */
  | { kind: "key"; name: KeyName };

const ESC = "\x1b";
const PASTE_START = "\x1b[200~";
const PASTE_END = "\x1b[201~";

/** Control bytes (as characters) and the keys they are. */
const CONTROL: Record<string, KeyName> = {
  "\x01": "home", // Ctrl-A
  "\x02": "left", // Ctrl-B
  "\x03": "interrupt", // Ctrl-C
  "\x04": "eof", // Ctrl-D
  "\x05": "end", // Ctrl-E
  "\x06": "right", // Ctrl-F
  "\x08": "backspace", // Ctrl-H
  "\x0a": "newline", // Ctrl-J (LF)
  "\x0b": "killToEnd", // Ctrl-K
  "\x0c": "redraw", // Ctrl-L
  "\x0d": "enter", // CR
  "\x0e": "down", // Ctrl-N
  "\x10": "up", // Ctrl-P
  "\x15": "killToStart", // Ctrl-U
  "\x17": "deleteWordBack", // Ctrl-W
  "\x7f": "backspace",
};

/** ESC + character (Alt/Meta held) and the keys they are. */
const ALT: Record<string, KeyName> = {
  "\r": "newline",
  "\n": "newline",
  "\x7f": "deleteWordBack",
  "\x08": "deleteWordBack",
  b: "wordLeft",
  f: "wordRight",
  d: "deleteWordForward",
};

/** Final byte of CSI / SS3 cursor keys. */
const CURSOR: Record<string, KeyName> = {
  A: "up",
  B: "down",
  C: "right",
  D: "left",
  H: "home",
  F: "end",
};

/** `CSI <n> ~` keys. */
const TILDE: Record<string, KeyName> = {
  "1": "home",
  "7": "home",
  "4": "end",
  "8": "end",
  "3": "delete",
};

/** Decodes a CSI sequence's parameters and final byte; undefined for keys we do not use. */
function csiKey(params: string, final: string): KeyName | undefined {
  const [first, modifier] = params.split(";");
  const ctrlOrAlt = modifier === "5" || modifier === "3";
  if (final === "~") {
    // xterm's modifyOtherKeys: CSI 27 ; <mod> ; 13 ~ is a modified Enter.
    if (first === "27" && params.endsWith(";13")) return "newline";
    return TILDE[first];
  }
  if (final === "u" && first === "13") return "newline"; // CSI u (kitty, foot): modified Enter
  if (ctrlOrAlt && final === "C") return "wordRight";
  if (ctrlOrAlt && final === "D") return "wordLeft";
  return CURSOR[final];
}

/**
 * A stateful decoder: feed it each chunk read from the terminal (already UTF-8 decoded, with
 * `TextDecoder`'s `stream` option so characters split across reads stay whole).
 */
export class KeyDecoder {
  #pending = "";
  #paste: string[] | undefined;
  #pasteKept = 0;
  #pasteDropped = 0;
  readonly #maxPaste: number;

  /**
   * @param maxPaste the most characters of one paste kept; beyond it the rest is counted but
   * dropped (the paste will be refused anyway), so a huge paste cannot exhaust memory.
   */
  constructor(maxPaste = 1 << 20) {
    this.#maxPaste = maxPaste;
  }

  /** True while inside a bracketed paste (its end marker has not arrived yet). */
  get inPaste(): boolean {
    return this.#paste !== undefined;
  }

  /** True when an escape sequence is incomplete: call {@linkcode flush} if nothing follows. */
  get hasPending(): boolean {
    return this.#pending.length > 0 && this.#paste === undefined;
  }

  /** Decodes `chunk` (and what was left over from the last one) into keys. */
  feed(chunk: string): Key[] {
    const keys: Key[] = [];
    let s = this.#pending + chunk;
    this.#pending = "";
    let i = 0;
    let text = "";
    const emitText = () => {
      if (text) keys.push({ kind: "text", text });
      text = "";
    };
    while (i < s.length) {
      if (this.#paste) {
        const end = s.indexOf(PASTE_END, i);
        if (end < 0) {
          // Keep a tail that may be the start of the end marker.
          let keep = Math.min(PASTE_END.length - 1, s.length - i);
          while (keep > 0 && !PASTE_END.startsWith(s.slice(s.length - keep))) keep--;
          this.#addPaste(s.slice(i, s.length - keep));
          this.#pending = s.slice(s.length - keep);
          return keys;
        }
        this.#addPaste(s.slice(i, end));
        keys.push(this.#takePaste());
        i = end + PASTE_END.length;
        continue;
      }
      const c = s[i];
      if (c !== ESC) {
        const name = CONTROL[c];
        if (name) {
          emitText();
          keys.push({ kind: "key", name });
        } else if (c === "\t" || c >= " ") {
          text += c;
        } // other control characters are dropped
        i++;
        continue;
      }
      emitText();
      const seq = this.#escape(s, i);
      if (seq === undefined) { // incomplete: wait for the next chunk
        this.#pending = s.slice(i);
        return keys;
      }
      i = seq.next;
      if (seq.paste) {
        this.#paste = [];
        this.#pasteKept = 0;
        this.#pasteDropped = 0;
        s = s.slice(i);
        i = 0;
      } else if (seq.key) {
        keys.push({ kind: "key", name: seq.key });
      }
    }
    emitText();
    return keys;
  }

  /**
   * Ends an incomplete escape sequence that nothing followed (call it a few tens of
   * milliseconds after a read left {@linkcode hasPending} true): a lone ESC is the Esc key,
   * ESC + a character is Alt + it.
   */
  flush(): Key[] {
    if (!this.hasPending) return [];
    const s = this.#pending;
    this.#pending = "";
    if (s === ESC) return [{ kind: "key", name: "escape" }];
    const alt = ALT[s[1]];
    return alt ? [{ kind: "key", name: alt }] : [];
  }

  /**
   * One escape sequence at `s[i]` (an ESC): where the next key starts and what this one is;
   * undefined when the sequence is cut off at the end of `s`.
   */
  #escape(
    s: string,
    i: number,
  ): { next: number; key?: KeyName; paste?: boolean } | undefined {
    if (i + 1 >= s.length) return undefined;
    const c = s[i + 1];
    if (c === "[") {
      let j = i + 2;
      while (j < s.length && s.charCodeAt(j) >= 0x20 && s.charCodeAt(j) <= 0x3f) j++;
      if (j >= s.length) return undefined;
      const params = s.slice(i + 2, j);
      const final = s[j];
      if (s.slice(i, j + 1) === PASTE_START) return { next: j + 1, paste: true };
      return { next: j + 1, key: csiKey(params, final) };
    }
    if (c === "O") {
      if (i + 2 >= s.length) return undefined;
      const final = s[i + 2];
      return { next: i + 3, key: final === "M" ? "enter" : CURSOR[final] };
    }
    if (c === ESC) return { next: i + 1, key: "escape" }; // Esc, then whatever follows
    return { next: i + 2, key: ALT[c] };
  }

  #addPaste(part: string): void {
    const room = Math.max(0, this.#maxPaste - this.#pasteKept);
    const kept = part.length <= room ? part : part.slice(0, room);
    if (kept) this.#paste!.push(kept);
    this.#pasteKept += kept.length;
    this.#pasteDropped += part.length - kept.length;
  }

  #takePaste(): Key {
    const kept = this.#paste!.join("");
    const dropped = this.#pasteDropped;
    this.#paste = undefined;
    // Terminals send the pasted newlines as CR; keep them as one newline each.
    return { kind: "paste", text: kept.replace(/\r\n?/g, "\n"), dropped };
  }
}
