/**
 * Small text formatting helpers shared by the commands (times, names, previews).
 *
 * @module
 */

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** Local `YYYY-MM-DD HH:MM` of an ISO time; the input itself when it is not a valid time. */
export function formatDateTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Local `HH:MM` when `iso` is on the same local day as `now`, else `YYYY-MM-DD HH:MM`. */
export function formatShortTime(iso: string, now: Date): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const sameDay = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() &&
    d.getDate() === now.getDate();
  return sameDay ? `${pad(d.getHours())}:${pad(d.getMinutes())}` : formatDateTime(iso);
}

/** How a peer is named on screen: the contact name, or its fingerprint in brackets. */
export function peerLabel(name: string | null, fingerprint: string): string {
  return name ?? `[${fingerprint}]`;
}

/** The first `max` characters of `text` on one line, with an ellipsis when cut. */
export function preview(text: string, max = 40): string {
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > max ? one.slice(0, max - 1) + "…" : one;
}

/**
 * Replaces control characters (other than tab) so a received message cannot move the cursor,
 * clear the screen or fake other lines on the terminal. Newlines become "⏎ ".
 */
export function sanitizeForTerminal(text: string): string {
  let out = "";
  for (const ch of text.replace(/\r?\n/g, "⏎ ")) {
    const c = ch.codePointAt(0)!;
    const control = (c < 0x20 && c !== 0x09) || (c >= 0x7f && c <= 0x9f);
    out += control ? `\\u${c.toString(16).padStart(4, "0")}` : ch;
  }
  return out;
}
