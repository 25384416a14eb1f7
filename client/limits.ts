/**
 * How long a message may be: the one place the client, the CLI's `send`, piped `chat` and the
 * chat screen learn the limits, so they agree and a refused message never reaches the wire.
 *
 * Two limits, both checked before anything is written or sent:
 *
 * - **characters**: what a person sees as one character, an extended grapheme cluster
 *   (`Intl.Segmenter`): `é` written as e + U+0301 is one, a family emoji is one, 8,193 emoji are
 *   8,193. At most {@linkcode MAX_MESSAGE_CHARACTERS}.
 * - **bytes**: the text's size as the protocol encodes it (UTF-8 inside the message's JSON, where
 *   a newline, a tab, `"` and `\` take two bytes and other control characters six). At most
 *   {@linkcode MAX_MESSAGE_BYTES}, so the sealed message fits in one frame the relay accepts:
 *   16,384 ASCII characters fit, 16,384 CJK characters (49,152 bytes) do not.
 *
 * Protocol v1 adds a third rule its receivers check, {@linkcode MAX_TEXT_CHARS} UTF-16 code
 * units (an emoji takes two), so 8,193 emoji cannot be sent over v1 although they are 8,193
 * characters and 32,772 bytes. The v1 rule goes when the client speaks v2, whose only limit is the
 * padded payload's size: change {@linkcode MAX_MESSAGE_BYTES} and drop the rule here, nowhere else.
 *
 * @example
 * ```ts
 * import { checkMessage } from "@chat-p2p/client";
 *
 * checkMessage("hi bob"); // undefined: it may be sent
 * checkMessage("中".repeat(16_384))?.code; // "too_large"
 * checkMessage("😀".repeat(8_193))?.message;
 * // "the message is 8,193 characters, but protocol v1 counts 16,386 (an emoji counts as 2) and
 * //  carries at most 16,384"
 * ```
 *
 * @module
 */
import { MAX_TEXT_CHARS } from "@chat-p2p/protocol";

/** The most characters (grapheme clusters) a message may have. */
export const MAX_MESSAGE_CHARACTERS = 16_384;

/**
 * The most bytes a message's text may take, encoded as the protocol carries it. Protocol v1 seals
 * the text in a JSON payload (71 bytes around it), encrypts it (16 more) and sends it as base64
 * in a frame of 245 more bytes, which must fit the relay's 65,536 (`DEFAULT_MAX_FRAME_BYTES`):
 * 48,879 bytes of text would, and this leaves room for a longer id or date.
 */
export const MAX_MESSAGE_BYTES = 48_000;

/** A message's size, counted both ways. */
export interface MessageSize {
  /** Grapheme clusters: what a person sees as characters. */
  characters: number;
  /** Bytes of the text as the protocol encodes it (UTF-8, JSON escapes). */
  bytes: number;
}

/** Why a message may not be sent. */
export interface MessageRefusal {
  /** `empty`: nothing but white space; `too_long`: too many characters; `too_large`: too many bytes. */
  code: "empty" | "too_long" | "too_large";
  /** One sentence in lower case, with both counts and the limit. */
  message: string;
  /** The message's size. */
  size: MessageSize;
}

const segmenter = new Intl.Segmenter();
const utf8 = new TextEncoder();

/** Grapheme clusters in `text`: what a person counts as characters. */
export function countCharacters(text: string): number {
  let n = 0;
  for (const _ of segmenter.segment(text)) n++;
  return n;
}

/** The bytes `text` takes in the message, as the protocol encodes it (JSON string, UTF-8). */
export function encodedBytes(text: string): number {
  return utf8.encode(JSON.stringify(text)).length - 2; // without the quotes
}

const count = (n: number): string => n.toLocaleString("en-US");

/**
 * Checks `text` against the limits; returns why it may not be sent, or undefined when it may.
 * Empty means nothing but white space.
 */
export function checkMessage(text: string): MessageRefusal | undefined {
  const bytes = encodedBytes(text);
  // A cluster is at least one UTF-16 unit: a text no longer than the limit needs no counting
  // unless it is refused (a keystroke on a long draft stays cheap).
  const fits = text.length <= MAX_MESSAGE_CHARACTERS && bytes <= MAX_MESSAGE_BYTES &&
    text.length <= MAX_TEXT_CHARS;
  if (fits && text.trim() !== "") return undefined;
  const size = { characters: countCharacters(text), bytes };
  const refuse = (code: MessageRefusal["code"], message: string): MessageRefusal => ({
    code,
    message,
    size,
  });
  if (text.trim() === "") return refuse("empty", "the message is empty");
  if (size.characters > MAX_MESSAGE_CHARACTERS) {
    return refuse(
      "too_long",
      `the message is ${count(size.characters)} characters; at most ${
        count(MAX_MESSAGE_CHARACTERS)
      } are allowed`,
    );
  }
  if (size.bytes > MAX_MESSAGE_BYTES) {
    return refuse(
      "too_large",
      `the message is ${count(size.characters)} characters but ${
        count(size.bytes)
      } bytes encoded; at most ${count(MAX_MESSAGE_BYTES)} bytes fit in one message`,
    );
  }
  // Protocol v1 only (its receivers count UTF-16 code units); protocol v2 has no such rule.
  if (text.length > MAX_TEXT_CHARS) {
    return refuse(
      "too_large",
      `the message is ${count(size.characters)} characters, but protocol v1 counts ${
        count(text.length)
      } (an emoji counts as 2) and carries at most ${count(MAX_TEXT_CHARS)}`,
    );
  }
  return undefined;
}
