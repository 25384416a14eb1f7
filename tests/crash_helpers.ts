/**
 * Helpers for crash tests: send a burst and SIGKILL the relay mid-way; drain a mailbox.
 *
 * @module
 */
import { envelope, RawClient, type TestMailbox } from "./raw_client.ts";
import type { RelayProcess } from "./relay_process.ts";

/**
 * Registers `box` (one open), sends `total` envelopes to it as fast as the socket takes them,
 * kills the relay with SIGKILL once `killAfter` are accepted, and returns the ids that were
 * accepted.
 */
export async function sendThenKill(
  relay: RelayProcess,
  box: TestMailbox,
  total: number,
  killAfter: number,
): Promise<Set<string>> {
  await RawClient.register(relay.url, box);
  const envs = Array.from({ length: total }, () => envelope(box));
  const c = await RawClient.connect(relay.url);
  for (const e of envs) c.sendEnvelope(e);
  const accepted = new Set<string>();
  try {
    while (accepted.size < killAfter) accepted.add((await c.next("accepted", 20_000)).id);
  } finally {
    await relay.stop("SIGKILL");
  }
  // frames that arrived before the socket died count too
  for (const f of c.frames) if (f.type === "accepted") accepted.add(f.id);
  await c.close();
  return accepted;
}

/** Opens `box`, drains everything pending, acks it, and returns the ids in order. */
export async function drainAll(url: string, box: TestMailbox): Promise<string[]> {
  await using c = await RawClient.connect(url);
  const ids = (await c.openAndSync(box, 20_000)).map((e) => e.id);
  if (ids.length) {
    for (let i = 0; i < ids.length; i += 1000) c.ack(box, ids.slice(i, i + 1000));
    c.send({ v: 2, type: "ping", nonce: "acked" });
    await c.next("pong");
  }
  return ids;
}
