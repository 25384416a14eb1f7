// `deno bench bench/base64_bench.ts`: the strict base64 check of an envelope body (812
// characters, 609 bytes) against the regular expression it replaced (bench/README.md, finding 8).
import { base64ByteLength, toBase64 } from "@chat-p2p/protocol";

const GRAMMAR =
  /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$/;
// Fresh strings, as JSON.parse gives the relay, so no one text stays hot in the cache.
const bodies: string[] = Array.from(
  { length: 64 },
  () => JSON.parse(JSON.stringify(toBase64(crypto.getRandomValues(new Uint8Array(609))))),
);
let i = 0;

Deno.bench("regular expression (before)", { baseline: true }, () => {
  GRAMMAR.test(bodies[i++ & 63]);
});
Deno.bench("base64ByteLength", () => {
  base64ByteLength(bodies[i++ & 63]);
});
