import assert from "node:assert/strict";
import { Bitmap } from "@paulmillr/qr";
import { _tests as qrDecoder } from "@paulmillr/qr/decode.js";
import { runInProcess, withHome } from "../testing.ts";

/** The quiet zone `drawQr` leaves around the code, in modules. */
const BORDER = 4;

/**
 * Reads the half-block drawing back module by module (each character is two modules stacked; a
 * block's painted half is a light module) and decodes that matrix with the QR library's own
 * decoder. The matrix, not a picture of it: the library's image detector fails on about 1 in 200
 * of these codes at a given pixel scale (each decodes at some other scale), which made this test
 * fail now and then; what is drawn is checked exactly either way.
 */
function decodeDrawing(text: string): string {
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
  const width = light[0].length;
  // An odd number of module rows leaves half a character row below the code.
  assert.ok(light.length === width || light.length === width + 1, "the drawing is not square");
  for (let i = 0; i < BORDER; i++) {
    for (const y of [i, width - 1 - i]) assert.ok(light[y].every((v) => v), "no quiet zone");
    assert.ok(light.slice(0, width).every((r) => r[i] && r[width - 1 - i]), "no quiet zone");
  }
  const size = width - 2 * BORDER;
  const data = light.slice(BORDER, BORDER + size).map((r) =>
    r.slice(BORDER, BORDER + size).map((v) => !v)
  );
  return qrDecoder.decodeBitmap(new Bitmap(size, data));
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
      assert.equal(decodeDrawing(drawing.join("\n")), key);
    });
  });
}

Deno.test("id --json --qr: stdout stays one JSON document, the drawing goes to stderr", async () => {
  await withHome(async (home) => {
    const key = (await runInProcess(["init"], { home })).stdout.trim();
    const r = await runInProcess(["id", "--json", "--qr"], { home });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).public_key, key);
    assert.equal(decodeDrawing(r.stderr), key);
  });
});
