import assert from "node:assert/strict";
import {
  MAX_RELAY_URL_CHARS,
  normalizeRelayUrl,
  normalizeRelayUrlV2,
  parseRelayUrl,
} from "./mod.ts";

Deno.test("relay URL: canonical forms", () => {
  const cases: [string, string][] = [
    ["ws://localhost:8080/ws", "ws://localhost:8080/ws"],
    ["HTTPS://Relay.Example.COM:443/", "wss://relay.example.com/ws"],
    ["http://relay.example:80", "ws://relay.example/ws"],
    ["wss://relay.example:80/ws", "wss://relay.example:80/ws"],
    ["ws://[0:0:0:0:0:0:0:1]:9000", "ws://[::1]:9000/ws"],
    ["ws://[2001:DB8:0:0:1:0:0:1]/", "ws://[2001:db8::1:0:0:1]/ws"],
    ["ws://[1:0:0:2:0:0:0:3]", "ws://[1:0:0:2::3]/ws"],
    ["ws://[1:2:3:4:5:6:7::]", "ws://[1:2:3:4:5:6:7:0]/ws"],
    ["ws://[::ffff:192.0.2.1]", "ws://[::ffff:c000:201]/ws"],
    ["ws://[::]", "ws://[::]/ws"],
    ["wss://relay.example/chat/ws/", "wss://relay.example/chat/ws/"],
    ["ws://xn--bcher-kva.example", "ws://xn--bcher-kva.example/ws"],
    ["ws://10.0.0.255:65535/a_b~c.d-e", "ws://10.0.0.255:65535/a_b~c.d-e"],
  ];
  for (const [input, want] of cases) assert.equal(normalizeRelayUrlV2(input), want, input);
});

Deno.test("relay URL: refused forms, with the reason", () => {
  const cases: [string, RegExp][] = [
    ["", /empty/],
    ["relay.example:8080", /does not start with/],
    ["ftp://relay.example/ws", /scheme 'ftp'/],
    ["ws://user:pass@relay.example/ws", /user info/],
    ["ws://relay.example/ws?x=1", /a query/],
    ["ws://relay.example/ws#y", /a fragment/],
    ["ws://relay.example/w%73", /percent-escape/],
    ["ws://relay.example\\ws", /backslash/],
    ["ws://bücher.example/ws", /non-ASCII/],
    ["ws://relay example/ws", /space/],
    ["ws://127.1/", /not an IPv4 address/],
    ["ws://010.0.0.1/", /not an IPv4 address/],
    ["ws://256.0.0.1/", /not an IPv4 address/],
    ["ws://x.123/", /not an IPv4 address/],
    ["ws://-relay.example/", /not a host name/],
    ["ws://relay.example./", /not a host name/],
    ["ws://relay..example/", /not a host name/],
    ["ws://relay_1.example/", /not a host name/],
    [`ws://${"a".repeat(64)}.example/`, /not a host name/],
    ["ws:///ws", /host is empty/],
    ["ws://[1::2::3]/", /not an IPv6 address/],
    ["ws://[::1/", /must end with '\]'/],
    ["ws://[::1]x/", /only ':port' may follow/],
    ["ws://[12345::1]/", /not an IPv6 address/],
    ["ws://[1:2:3:4:5:6:7:8:9]/", /not an IPv6 address/],
    ["ws://h:0/", /port '0'/],
    ["ws://h:08080/", /port '08080'/],
    ["ws://h:/", /port ''/],
    ["ws://h:65536/", /port '65536'/],
    ["ws://h/./ws", /path segment '\.'/],
    ["ws://h/a/../ws", /path segment '\.\.'/],
    ["ws://h/a+b", /path segment 'a\+b'/],
    [`ws://h/${"a".repeat(MAX_RELAY_URL_CHARS)}`, /longer than 2048/],
  ];
  for (const [input, why] of cases) {
    const r = parseRelayUrl(input);
    assert.equal(r.ok, false, input);
    if (!r.ok) assert.match(r.message, why, input);
  }
});

Deno.test("relay URL: where both accept, v2 agrees with v1's WHATWG-based normalisation", () => {
  const inputs = [
    "ws://localhost:8080/ws",
    "ws://localhost:80/ws",
    "wss://relay.example:443/ws",
    "http://relay.example:8080",
    "https://relay.example/",
    "http://relay.example:443/",
    "ws://Relay.EXAMPLE/chat/ws",
    "WS://[::1]:9000",
    "ws://[2001:DB8:0:0:1:0:0:1]/",
    "ws://[::ffff:192.0.2.1]",
    "wss://relay.example/chat/ws/",
    "ws://127.0.0.1:8080",
  ];
  for (const input of inputs) {
    assert.ok(normalizeRelayUrlV2(input), input);
    assert.equal(normalizeRelayUrlV2(input), normalizeRelayUrl(input), input);
  }
});

Deno.test("relay URL: the canonical text is a fixed point", () => {
  for (const input of ["HTTPS://Relay.Example:443/", "ws://[0::1]:80", "wss://a.b/c/"]) {
    const once = normalizeRelayUrlV2(input)!;
    assert.equal(normalizeRelayUrlV2(once), once);
  }
});
