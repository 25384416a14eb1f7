/**
 * Helpers for crash tests: send a burst and SIGKILL the relay mid-way; drain a mailbox.
 *
 * @module
 */
import { type KeyPair, sealEnvelope, toBase64 } from "@chat-p2p/protocol";
import { RawClient } from "./raw_client.ts";
import type { RelayProcess } from "./relay_process.ts";

/**
 * Sends `total` envelopes from `from` to `to` as fast as the socket takes them, kills the relay
 * with SIGKILL once `killAfter` are accepted, and returns the ids that were accepted.
 */
export async function sendThenKill(
  relay: RelayProcess,
  from: KeyPair,
  to: KeyPair,
  total: number,
  killAfter: number,
): Promise<Set<string>> {
  const envs = Array.from(
    { length: total },
    (_, i) =>
      sealEnvelope(
        { v: 1, kind: "message", text: `m${i}`, sent_at: "" },
        from,
        toBase64(to.publicKey),
      ),
  );
  const c = await RawClient.authed(relay.url, from);
  for (const e of envs) c.send({ v: 1, type: "send", envelope: e });
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

/** Connects as `who`, drains everything pending, acks it, and returns the ids in order. */
export async function drainAll(url: string, who: KeyPair): Promise<string[]> {
  await using c = await RawClient.authed(url, who);
  const ids: string[] = [];
  for (;;) {
    const f = await c.next(undefined, 20_000);
    if (f.type === "deliver") ids.push(f.envelope.id);
    if (f.type === "synced") break;
  }
  if (ids.length) {
    for (let i = 0; i < ids.length; i += 1000) {
      c.send({ v: 1, type: "ack", ids: ids.slice(i, i + 1000) });
    }
    c.send({ v: 1, type: "ping", nonce: "acked" });
    await c.next("pong");
  }
  return ids;
}
