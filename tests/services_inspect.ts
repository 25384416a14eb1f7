/**
 * Reads what Redis and Kafka really hold, with the services' own clients (redis-cli, Kafka's
 * ConsoleConsumer), so tests can check that only ciphertext is stored.
 *
 * @module
 */
import { join } from "node:path";

const DUMP_ALL = `
local out = {}
for _, k in ipairs(redis.call('KEYS', '*')) do
  local t = redis.call('TYPE', k)['ok']
  table.insert(out, k)
  if t == 'string' then table.insert(out, redis.call('GET', k))
  elseif t == 'hash' then for _, v in ipairs(redis.call('HGETALL', k)) do table.insert(out, v) end
  elseif t == 'zset' then for _, v in ipairs(redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')) do table.insert(out, v) end
  elseif t == 'list' then for _, v in ipairs(redis.call('LRANGE', k, 0, -1)) do table.insert(out, v) end
  elseif t == 'set' then for _, v in ipairs(redis.call('SMEMBERS', k)) do table.insert(out, v) end
  end
end
return out`;

/** Runs one `redis-cli --raw` command against the Redis at `url`; its output, or a throw. */
export async function redisCli(url: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args: ["-u", url, "--raw", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`redis-cli failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** Every key and every value in the Redis at `url`, as text, via `redis-cli EVAL`. */
export function dumpRedis(url: string): Promise<string> {
  return redisCli(url, "EVAL", DUMP_ALL, "0");
}

/** The folder of Kafka's jars that scripts/services.sh fetched. */
export function kafkaLibs(): string {
  const explicit = Deno.env.get("CHAT_KAFKA_CACHE");
  if (explicit) return join(explicit, "libs");
  const base = join(
    Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME")!, ".cache"),
    "chat-p2p",
  );
  const dirs = [...Deno.readDirSync(base)].filter((d) =>
    d.isDirectory && d.name.startsWith("kafka-")
  )
    .map((d) => d.name).sort();
  if (dirs.length === 0) throw new Error(`no Kafka jars under ${base}: run scripts/services.sh up`);
  return join(base, dirs[dirs.length - 1], "libs");
}

/**
 * Every record of `topic` from the beginning (key and value), via Kafka's own ConsoleConsumer.
 * Stops once `expect` records are read or after `timeoutMs` without a new one.
 */
export async function readKafkaTopic(
  brokers: string[],
  topic: string,
  expect: number,
  timeoutMs = 15_000,
): Promise<string> {
  const out = await new Deno.Command("java", {
    args: [
      "-Xmx256m",
      "-cp",
      `${kafkaLibs()}/*`,
      "org.apache.kafka.tools.consumer.ConsoleConsumer",
      "--bootstrap-server",
      brokers.join(","),
      "--topic",
      topic,
      "--from-beginning",
      "--max-messages",
      String(expect),
      "--timeout-ms",
      String(timeoutMs),
      "--property",
      "print.key=true",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout);
}
