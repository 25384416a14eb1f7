import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { DataDirInUseError, DataDirLock, LOCK_FILE } from "./data_dir_lock.ts";

Deno.test("data dir lock: a second holder is refused at once, naming the first; release frees it", async () => {
  const dir = join(await Deno.makeTempDir({ prefix: "chat-lock-" }), "data");
  try {
    const first = await DataDirLock.acquire(dir);
    assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
    const err = await DataDirLock.acquire(dir).then(() => undefined, (e) => e);
    assert.ok(err instanceof DataDirInUseError, String(err));
    assert.match(
      err.message,
      new RegExp(
        `^data directory ${dir} is in use by another relay \\(pid ${Deno.pid}, since \\d{4}-`,
      ),
    );
    assert.match(err.message, /--data-dir \(or RELAY_DATA_DIR\)$/);
    first.release();
    first.release(); // idempotent
    const again = await DataDirLock.acquire(dir);
    again.release();
    assert.ok((await Deno.stat(join(dir, LOCK_FILE))).isFile, "the lock file stays");
  } finally {
    await Deno.remove(dirname(dir), { recursive: true });
  }
});

Deno.test("data dir lock: a holder killed with SIGKILL leaves no stale lock", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-lock-" });
  try {
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { DataDirLock } from ${
          JSON.stringify(new URL("./data_dir_lock.ts", import.meta.url).href)
        };
         await DataDirLock.acquire(${JSON.stringify(dir)}); console.log("held");
         setInterval(() => {}, 1000);`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value?.trim(), "held");
    await assert.rejects(DataDirLock.acquire(dir), DataDirInUseError);
    holder.kill("SIGKILL");
    await holder.status;
    await reader.cancel();
    (await DataDirLock.acquire(dir)).release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
