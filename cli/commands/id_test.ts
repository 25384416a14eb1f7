import assert from "node:assert/strict";
import { decodeQR } from "@paulmillr/qr/decode.js";
import { runInProcess, withHome } from "../testing.ts";

/** Pixels per QR module in the image handed to the decoder. */
const SCALE = 4;

/**
 * Turns the half-block drawing back into an RGBA image, as a camera would see the screen: each
 * character is two modules stacked, a block's painted half is light, the rest dark.
 */
function drawingToImage(text: string): { width: number; height: number; data: Uint8Array } {
  // deno-lint-ignore no-control-regex
  const rows = text.replace(/\x1b\[[0-9;]*m/g, "").split("\n").filter((r) => r !== "");
  const halves: Record<string, [boolean, boolean]> = {
    "█": [true, true],
    "▀": [true, false],
    "▄": [false, true],
    " ": [false, false],
  };
  const light: boolean[][] = [];
  for (const row of rows) {
    const pairs = [...row].map((ch) => {
      const h = halves[ch];
      assert.ok(h, `unexpected character ${JSON.stringify(ch)} in the drawing`);
      return h;
    });
    light.push(pairs.map((p) => p[0]), pairs.map((p) => p[1]));
  }
  const width = light[0].length * SCALE, height = light.length * SCALE;
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = light[Math.floor(y / SCALE)][Math.floor(x / SCALE)] ? 255 : 0;
      data.set([v, v, v, 255], (y * width + x) * 4);
    }
  }
  return { width, height, data };
}

for (const terminal of [false, true]) {
  Deno.test(`id --qr: the drawing decodes to the public key (${terminal ? "colour terminal" : "plain"})`, async () => {
    await withHome(async (home) => {
      const init = await runInProcess(["init"], { home });
      assert.equal(init.code, 0, init.stderr);
      const key = init.stdout.trim();
      const r = await runInProcess(["id", "--qr"], { home, stdoutTty: terminal });
      assert.equal(r.code, 0, r.stderr);
      const [first, , , ...drawing] = r.stdout.split("\n");
      assert.equal(first, key);
      assert.equal(r.stdout.includes("\x1b["), terminal, "escape codes only on a terminal");
      assert.equal(decodeQR(drawingToImage(drawing.join("\n"))), key);
    });
  });
}

Deno.test("id --json --qr: stdout stays one JSON document, the drawing goes to stderr", async () => {
  await withHome(async (home) => {
    const key = (await runInProcess(["init"], { home })).stdout.trim();
    const r = await runInProcess(["id", "--json", "--qr"], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).public_key, key);
    assert.equal(decodeQR(drawingToImage(r.stderr)), key);
  });
});
