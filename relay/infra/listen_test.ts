import assert from "node:assert/strict";
import { ListenError, serveOrExplain } from "./listen.ts";

const handler = () => new Response("ok");

Deno.test("listen: a port in use is a ListenError naming the port and --port", () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr;
  assert.throws(
    () => serveOrExplain({ hostname: "127.0.0.1", port, onListen: () => {} }, handler),
    (e: unknown) => {
      assert.ok(e instanceof ListenError);
      assert.ok(e.cause instanceof Deno.errors.AddrInUse);
      assert.match(e.message, new RegExp(`^port ${port} on 127\\.0\\.0\\.1 is already in use`));
      assert.match(e.message, /--port \(or RELAY_PORT\)$/);
      return true;
    },
  );
});

Deno.test("listen: an address this machine does not have names --host", () => {
  // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to a real interface.
  assert.throws(
    () => serveOrExplain({ hostname: "192.0.2.1", port: 0, onListen: () => {} }, handler),
    /^ListenError: cannot listen on 192\.0\.2\.1: this machine has no such address; choose another with --host/,
  );
});

Deno.test("listen: a free port serves as Deno.serve does", async () => {
  const server = serveOrExplain({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const res = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  assert.equal(await res.text(), "ok");
  await server.shutdown();
});
