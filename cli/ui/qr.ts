/**
 * Drawing text as a QR code on the terminal (`id --qr`, `verify --qr`).
 *
 * @module
 */

/**
 * `text` as a QR code in half-block characters, two modules a character row, light modules drawn
 * as blocks with a four-module quiet zone. Plain, it suits the usual dark terminal background;
 * with `color`, every row is painted white on black, so it scans on light themes too.
 */
export async function drawQr(text: string, color: boolean): Promise<string> {
  // Loaded only here, so the other commands' cold start does not pay for it.
  const { encodeQR } = await import("@paulmillr/qr");
  const rows = encodeQR(text, "ascii", { border: 4 }).split("\n").filter((r) => r !== "");
  return rows.map((r) => (color ? `\x1b[97;40m${r}\x1b[0m` : r) + "\n").join("");
}
