/**
 * Readiness probe used by scripts/services.sh: one metadata request through @platformatic/kafka,
 * the same client the relay uses. Exit 0 when a broker and a controller are listed, 1 otherwise.
 *
 * Usage: deno run --allow-net --allow-env --allow-read scripts/kafka/ready.ts 127.0.0.1:9192
 *        [timeoutMs]
 *
 * @module
 */
import { Admin } from "@platformatic/kafka";
import { deadline, isTimeoutError } from "@chat-p2p/protocol/async";

const broker = Deno.args[0] ?? "127.0.0.1:9192";
const timeoutMs = Number(Deno.args[1] ?? 5000);

const admin = new Admin({
  clientId: "chat-p2p-ready",
  bootstrapBrokers: [broker],
  connectTimeout: timeoutMs,
  timeout: timeoutMs,
  retries: 0,
});
let code = 1;
try {
  const meta = await deadline(admin.metadata({ topics: [] }), timeoutMs);
  if (meta.brokers.size > 0 && meta.controllerId >= 0) code = 0;
  else console.error(`kafka: metadata has no brokers or controller yet`);
} catch (e) {
  const why = isTimeoutError(e)
    ? `no answer within ${timeoutMs} ms`
    : e instanceof Error
    ? e.message
    : String(e);
  console.error(`kafka: ${why}`);
} finally {
  await admin.close().catch(() => {});
}
Deno.exit(code);
