/** The docs stay true: every setting and error code the code knows is documented. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SETTINGS } from "../relay/config.ts";
import { CLOSE_CODES, ERROR_CODES } from "@chat-p2p/protocol";
import { ROOT } from "./relay_process.ts";

const readme = await Deno.readTextFile(join(ROOT, "README.md"));
const protocol = await Deno.readTextFile(join(ROOT, "docs/PROTOCOL.md"));

Deno.test("docs: the README's first screen gives the two commands", () => {
  const firstScreen = readme.split("\n").slice(0, 20).join("\n");
  assert.match(firstScreen, /deno task relay/);
  assert.match(firstScreen, /deno task test/);
});

Deno.test("docs: every relay setting is in the README's table with its flag and default", () => {
  for (const s of Object.values(SETTINGS)) {
    const { flag, env: envName } = s;
    const def = s.shown ?? s.default ?? "";
    const row = readme.split("\n").find((l) =>
      l.includes("`" + envName + "`") && l.startsWith("|")
    );
    assert.ok(row, `README has no row for ${envName}`);
    assert.ok(row.includes("`" + flag + "`"), `README row for ${envName} lacks ${flag}`);
    const shown = def.startsWith("(") ? def : "`" + def + "`";
    assert.ok(row.includes(shown), `README row for ${envName} lacks default ${def}`);
  }
});

Deno.test("docs: every error code and close code is in PROTOCOL.md", () => {
  for (const code of Object.keys(ERROR_CODES)) {
    assert.ok(protocol.includes("`" + code + "`"), `PROTOCOL.md does not document ${code}`);
  }
  for (const n of Object.values(CLOSE_CODES)) {
    assert.ok(protocol.includes(String(n)), `PROTOCOL.md does not document close code ${n}`);
  }
});
