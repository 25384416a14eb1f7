/**
 * An echo bot on the client library alone: it answers every message with "echo: <text>".
 *
 *   CHAT_PROFILE=bot deno run -A docs/examples/echo_bot.ts ws://127.0.0.1:8080/ws
 *
 * The profile needs an identity first (`CHAT_PROFILE=bot deno task cli init`). A message is
 * acked only once the answer is in the bot's history, from where the outbox sends it (again after
 * a restart if need be); until then the relay keeps the message.
 */
import { ChatClient } from "@chat-p2p/client";

const url = Deno.args[0] ?? "ws://127.0.0.1:8080/ws";
const bot = await ChatClient.open({
  profile: Deno.env.get("CHAT_PROFILE") ?? "bot",
  passphrase: Deno.env.get("CHAT_PASSPHRASE"),
  ackMode: "manual",
});
bot.on("message", ({ message, duplicate }) => {
  // A duplicate was delivered before (an ack was lost): it has its answer already.
  if (!duplicate) bot.send(message.from, `echo: ${message.text}`);
  bot.ack(message.id);
});
bot.on("connection", (e) => console.error(`relay ${e.state} ${e.error?.message ?? ""}`));
bot.on("accepted", (e) => console.error(`answered ${e.message.peer}`));
Deno.addSignalListener("SIGTERM", () => bot.close().then(() => Deno.exit(0)));
await bot.connect(url);
console.error(`echo bot ${bot.key} listening on ${url}`);
