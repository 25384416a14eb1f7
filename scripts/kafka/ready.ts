/**
 * Readiness probe used by scripts/services.sh: one metadata request (describeCluster) through
 * kafkajs, the same client the relay uses. Exit 0 when a broker answers, 1 otherwise.
 *
 * Usage: deno run --allow-net --allow-env scripts/kafka/ready.ts 127.0.0.1:9192 [timeoutMs]
 *
 * @module
 */
import process from "node:process";
import { Kafka, logLevel } from "kafkajs";

// kafkajs 2.2.4 sets a negative timer delay (harmless); keep its warning out of probe.log.
const emitWarning = process.emitWarning;
process.emitWarning = ((w: unknown, ...rest: unknown[]) => {
  if (rest[0] === "TimeoutNegativeWarning" || (w as Error)?.name === "TimeoutNegativeWarning") {
    return;
  }
  (emitWarning as (...a: unknown[]) => void).call(process, w, ...rest);
}) as typeof process.emitWarning;

const broker = Deno.args[0] ?? "127.0.0.1:9192";
const timeoutMs = Number(Deno.args[1] ?? 5000);

const kafka = new Kafka({
  clientId: "chat-p2p-ready",
  brokers: [broker],
  connectionTimeout: timeoutMs,
  requestTimeout: timeoutMs,
  retry: { retries: 0 },
  logLevel: logLevel.NOTHING,
});
const admin = kafka.admin();
let code = 1;
try {
  const timer = new Promise<never>((_, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    Deno.unrefTimer(t);
  });
  const cluster = await Promise.race([
    (async () => {
      await admin.connect();
      return await admin.describeCluster();
    })(),
    timer,
  ]);
  if (cluster.brokers.length > 0 && cluster.controller !== null) code = 0;
  else console.error(`kafka: metadata has no brokers or controller yet`);
} catch (e) {
  console.error(`kafka: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  await admin.disconnect().catch(() => {});
}
Deno.exit(code);
