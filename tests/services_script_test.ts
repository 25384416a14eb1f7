/**
 * scripts/services.sh and the test harness clean up after themselves (issue 12, item 10): a test
 * run stops the services it started; the script recognises its own stale Redis (pidfile gone,
 * checkout deleted) and stops it instead of failing on "port taken", and names a foreign holder.
 * Each test uses its own state folder and free ports, never the suite's services.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { closedPort as freePort } from "./fake_relay.ts";
import { ROOT, SERVICES_SCRIPT } from "./services.ts";

const ci = (Deno.env.get("CI") ?? "").toLowerCase() === "true";
const haveRedis = await new Deno.Command("redis-server", { args: ["--version"] }).output()
  .then((o) => o.success, () => false);
if (!haveRedis && ci) throw new Error("CI=true forbids skipping: redis-server is not installed");
const haveKafka = haveRedis &&
  await new Deno.Command("java", { args: ["-version"], stderr: "null" }).output()
    .then((o) => o.success, () => false);

function portOpen(port: number): Promise<boolean> {
  return Deno.connect({ hostname: "127.0.0.1", port }).then((c) => {
    c.close();
    return true;
  }, () => false);
}

/** Runs services.sh with its own state folder and ports. */
async function script(env: Record<string, string>, ...args: string[]) {
  const out = await new Deno.Command("bash", {
    args: [SERVICES_SCRIPT, ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

async function scratch() {
  const dir = await Deno.makeTempDir({ prefix: "chat-services-" });
  const env = {
    CHAT_SERVICES_DIR: join(dir, ".services"),
    CHAT_REDIS_PORT: String(freePort()),
    CHAT_KAFKA_PORT: String(freePort()),
    CHAT_KAFKA_CONTROLLER_PORT: String(freePort()),
  };
  return { dir, env, redisPort: Number(env.CHAT_REDIS_PORT) };
}

const redisPid = async (stateDir: string) =>
  Number((await Deno.readTextFile(join(stateDir, "redis", "redis.pid"))).trim());

Deno.test({
  name: "services.sh: a Redis of ours whose pidfile is gone is stopped, not 'port taken'",
  ignore: !haveRedis,
  fn: async () => {
    const { dir, env, redisPort } = await scratch();
    try {
      assert.equal((await script(env, "up", "redis")).code, 0);
      const first = await redisPid(env.CHAT_SERVICES_DIR);
      await Deno.remove(join(env.CHAT_SERVICES_DIR, "redis", "redis.pid"));
      const again = await script(env, "up", "redis");
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stderr, /stopping a stale redis of ours/);
      assert.notEqual(await redisPid(env.CHAT_SERVICES_DIR), first);
      assert.ok(await portOpen(redisPort));
    } finally {
      await script(env, "down", "redis");
      await Deno.remove(dir, { recursive: true });
    }
    assert.equal(await portOpen(redisPort), false, "down stopped it");
  },
});

Deno.test({
  name: "services.sh: a Redis left by a deleted checkout is stopped; a foreign holder is named",
  ignore: !haveRedis,
  fn: async () => {
    const old = await scratch();
    assert.equal((await script(old.env, "up", "redis")).code, 0);
    const orphan = await redisPid(old.env.CHAT_SERVICES_DIR);
    await Deno.remove(old.dir, { recursive: true }); // the checkout is gone, its Redis is not
    const fresh = await scratch();
    const env = { ...fresh.env, CHAT_REDIS_PORT: old.env.CHAT_REDIS_PORT };
    try {
      const r = await script(env, "up", "redis");
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`stale redis of ours on port ${old.redisPort} \\(pid ${orphan}\\)`),
      );
      await script(env, "down", "redis");

      using foreign = Deno.listen({ hostname: "127.0.0.1", port: old.redisPort });
      const taken = await script(env, "up", "redis");
      assert.equal(taken.code, 1);
      assert.match(
        taken.stderr,
        new RegExp(`port 127\\.0\\.0\\.1:${old.redisPort} is taken by pid ${Deno.pid}`),
      );
      assert.match(taken.stderr, /set CHAT_REDIS_PORT/);
      void foreign;
    } finally {
      await script(env, "down", "redis");
      await Deno.remove(fresh.dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "services: a test run stops the Redis and Kafka it started (unless CHAT_KEEP_SERVICES=1)",
  ignore: !haveKafka,
  sanitizeOps: false,
  fn: async () => {
    const { dir, env, redisPort } = await scratch();
    const kafkaPort = Number(env.CHAT_KAFKA_PORT);
    const probe = join(dir, "probe_test.ts");
    await Deno.writeTextFile(
      probe,
      `import { requireServices } from ${JSON.stringify(join(ROOT, "tests", "services.ts"))};\n` +
        `Deno.test("needs services", async () => {\n` +
        `  const s = await requireServices();\n` +
        `  if ("skip" in s) throw new Error(s.skip);\n` +
        `});\n`,
    );
    const inherited = Object.fromEntries(
      Object.entries(Deno.env.toObject()).filter(([k]) =>
        !/^(KAFKA_BROKERS|REDIS_URL|CHAT_KEEP_SERVICES)$/.test(k)
      ),
    );
    try {
      const run = await new Deno.Command(Deno.execPath(), {
        args: ["test", "--allow-all", probe],
        cwd: ROOT,
        env: { ...inherited, ...env },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
      assert.equal(run.code, 0, text);
      assert.match(text, /stopping kafka/);
      assert.equal(await portOpen(redisPort), false, "Redis was left running");
      assert.equal(await portOpen(kafkaPort), false, "Kafka was left running");
    } finally {
      await script(env, "down");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
