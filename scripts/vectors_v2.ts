/**
 * Writes protocol/vectors_v2.json from the code: `deno run -A scripts/vectors_v2.ts`. Run it only
 * when a v2 construct changes on purpose, then run docs/vectors_check.py and the tests.
 */
import { buildVectorsV2 } from "../protocol/_vectors_v2.ts";

const out = new URL("../protocol/vectors_v2.json", import.meta.url);
await Deno.writeTextFile(out, JSON.stringify(await buildVectorsV2(), null, 2) + "\n");
console.log(`wrote ${out.pathname}`);
