import assert from "node:assert/strict";
import { fingerprint, generateKeyPair, type KeyPair, toBase64 } from "@chat-p2p/protocol";
import { ProfileStore } from "@chat-p2p/client";
import { runInProcess, tempHome } from "../testing.ts";

interface Setup {
  home: string;
  me: KeyPair;
  bob: KeyPair;
  stranger: KeyPair;
}

async function withConversation(fn: (s: Setup) => Promise<void>): Promise<void> {
  const home = tempHome();
  try {
    const store = new ProfileStore({ home, profile: "default" });
    const me = generateKeyPair();
    const bob = generateKeyPair();
    const stranger = generateKeyPair();
    store.saveIdentity(me);
    store.saveContacts([{ name: "bob", key: toBase64(bob.publicKey) }]);
    const log = store.history(toBase64(bob.publicKey));
    const t = (m: number) => new Date(Date.UTC(2025, 0, 2, 10, m)).toISOString();
    log.appendMessage({ id: "out-0001", dir: "out", text: "hello bob", sent_at: t(0), at: t(0) });
    log.appendState("out-0001", "accepted", t(0));
    log.appendMessage({
      id: "in-00001",
      dir: "in",
      text: "hi \x1b[2Jthere",
      sent_at: t(1),
      at: t(2),
    });
    log.appendState("out-0001", "delivered", t(2));
    log.appendMessage({
      id: "out-0002",
      dir: "out",
      text: "still there?",
      sent_at: t(3),
      at: t(3),
    });
    log.appendMessage({ id: "out-0003", dir: "out", text: "lost", sent_at: t(4), at: t(4) });
    log.appendState("out-0003", "failed", t(4));
    log.appendMessage({ id: "out-0002", dir: "out", text: "dup", sent_at: t(5), at: t(5) });
    store.history(toBase64(stranger.publicKey)).appendMessage({
      id: "strange1",
      dir: "in",
      text: "who am I",
      sent_at: t(6),
      at: t(6),
    });
    await fn({ home, me, bob, stranger });
  } finally {
    Deno.removeSync(home, { recursive: true });
  }
}

Deno.test("history: oldest first, with direction and folded delivery state", async () => {
  await withConversation(async ({ home }) => {
    const r = await runInProcess(["history", "bob"], { home, env: { TZ: "UTC" } });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 4);
    assert.match(lines[0], /^\[2025-01-02 \d\d:00\] you → bob: hello bob {2}✓✓$/);
    assert.match(lines[1], /bob → you: hi \\u001b\[2Jthere$/, "control characters neutralised");
    assert.match(lines[2], /you → bob: still there\? {2}…$/);
    assert.match(lines[3], /you → bob: lost {2}✗ failed$/);
  });
});

Deno.test("history --json: one object per line with state", async () => {
  await withConversation(async ({ home, me, bob }) => {
    const r = await runInProcess(["history", "bob", "--json"], { home });
    const rows = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(rows.map((o) => [o.id, o.dir, o.state]), [
      ["out-0001", "out", "delivered"],
      ["in-00001", "in", "received"],
      ["out-0002", "out", "sending"],
      ["out-0003", "out", "failed"],
    ]);
    assert.equal(rows[0].from, toBase64(me.publicKey));
    assert.equal(rows[0].to, toBase64(bob.publicKey));
    assert.equal(rows[1].text, "hi \x1b[2Jthere", "JSON keeps the exact text");
    assert.equal(rows[0].contact, "bob");
  });
});

Deno.test("history of a non-contact by key or fingerprint", async () => {
  await withConversation(async ({ home, stranger }) => {
    const key = toBase64(stranger.publicKey);
    for (const who of [key, fingerprint(stranger.publicKey)]) {
      const r = await runInProcess(["history", who], { home });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\[[0-9a-f ]{24}\] → you: who am I/);
    }
    const unknown = await runInProcess(["history", "carol"], { home });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown contact "carol"; known contacts: bob/);
  });
});
