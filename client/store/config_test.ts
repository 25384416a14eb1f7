import assert from "node:assert/strict";
import { join } from "node:path";
import { ClientError } from "../errors.ts";
import { ProfileConfig } from "./config.ts";
import { ProfileStore } from "./profile_store.ts";

Deno.test("config: set, get, unset a relay; 0600; unknown keys kept; corrupt file is an error", () => {
  const home = Deno.makeTempDirSync({ prefix: "chat-config-" });
  try {
    const store = new ProfileStore({ home, profile: "p" });
    const config = new ProfileConfig(store);
    assert.equal(config.get("relay"), undefined);
    assert.equal(config.set("relay", "http://Relay.example:8080"), "ws://relay.example:8080/ws");
    assert.equal(config.get("relay"), "ws://relay.example:8080/ws");
    const path = join(store.dir, "config.json");
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.throws(
      () => config.set("relay", "ftp://x"),
      (e: unknown) =>
        e instanceof ClientError && e.code === "bad_config" && /not a relay URL/.test(e.message),
    );
    Deno.writeTextFileSync(path, JSON.stringify({ relay: "wss://a/ws", future: { x: 1 } }));
    assert.deepEqual(config.all(), { relay: "wss://a/ws" });
    assert.equal(config.unset("relay"), true);
    assert.equal(config.unset("relay"), false);
    assert.deepEqual(JSON.parse(Deno.readTextFileSync(path)), { future: { x: 1 } });
    Deno.writeTextFileSync(path, "[1,2");
    assert.throws(() => config.get("relay"), /config\.json is corrupt/);
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
});
