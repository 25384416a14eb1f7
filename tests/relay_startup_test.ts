/** The relay's start-up failures say what is wrong and which flag fixes it (real processes). */
import assert from "node:assert/strict";
import { RelayProcess } from "./relay_process.ts";

/** The error `RelayProcess.start` rejects with when the relay exits before listening. */
async function startFailure(opts: Parameters<typeof RelayProcess.start>[0]): Promise<string> {
  const err = await RelayProcess.start(opts).then(
    async (relay) => {
      await relay.stop();
      return undefined;
    },
    (e: Error) => e,
  );
  assert.ok(err, "the relay started, but should have refused");
  return err.message;
}

async function healthy(port: number): Promise<boolean> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  await res.body?.cancel();
  return res.ok;
}

Deno.test("relay start-up: a port in use names the port and --port, and exits 1", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = taken.addr.port;
  const dataDir = await Deno.makeTempDir({ prefix: "chat-relay-" });
  try {
    const message = await startFailure({ dataDir, port });
    assert.match(message, /^relay exited \(1\) before listening/);
    assert.match(
      message,
      new RegExp(
        `"msg":"cannot start relay","err":"port ${port} on 127\\.0\\.0\\.1 is already in use ` +
          `\\(another relay\\?\\): stop that process, or choose another port with --port`,
      ),
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("relay start-up: a second relay on the same data directory refuses to start", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "chat-relay-" });
  try {
    await using first = await RelayProcess.start({ dataDir });
    const message = await startFailure({ dataDir });
    assert.match(message, /^relay exited \(1\) before listening/);
    assert.ok(
      message.includes(
        `data directory ${dataDir} is in use by another relay (pid ${first.pid}, since `,
      ),
      message,
    );
    assert.match(message, /give this one its own --data-dir \(or RELAY_DATA_DIR\)/);
    // The first relay is untouched, and once it is gone (even by SIGKILL) the directory is free.
    assert.ok(await healthy(first.port));
    await first.stop("SIGKILL");
    await using second = await RelayProcess.start({ dataDir });
    assert.ok(await healthy(second.port));
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
