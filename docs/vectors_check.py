#!/usr/bin/env python3
"""Cross-check protocol/vectors.json against libsodium (through PyNaCl).

Recomputes, independently of the TypeScript code (tweetnacl + ed2curve), every crypto value in
the golden vectors: Ed25519 public keys from seeds, fingerprints, Ed25519 -> X25519 key
conversion, the crypto_box shared keys, every sealed box (and opens it again), and every
relay-authentication signature.

    pip install pynacl
    python3 docs/vectors_check.py [path/to/vectors.json]

Exits 0 and prints "N passed, 0 failed" when every value matches.
"""
import base64
import binascii
import hashlib
import json
import pathlib
import sys

from nacl import bindings as b
from nacl.signing import SigningKey

path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else (
    pathlib.Path(__file__).resolve().parent.parent / "protocol" / "vectors.json")
v = json.loads(path.read_text(encoding="utf-8"))

passed = 0
failed = 0


def check(name, got, want):
    global passed, failed
    if got == want:
        passed += 1
    else:
        failed += 1
        print(f"MISMATCH {name}:\n  libsodium: {got}\n  vectors:   {want}")


hx = binascii.unhexlify
b64 = lambda data: base64.b64encode(data).decode("ascii")

ids = {}
for ident in v["identities"]:
    n = ident["name"]
    sk = SigningKey(hx(ident["seed_hex"]))
    pk = bytes(sk.verify_key)
    ed_sk = bytes(sk._signing_key)  # libsodium layout: seed || public key (as tweetnacl)
    ids[n] = (pk, ed_sk)
    check(f"{n} public_key_hex", pk.hex(), ident["public_key_hex"])
    check(f"{n} public_key_base64", b64(pk), ident["public_key_base64"])
    fp = hashlib.sha512(pk).hexdigest()[:20]
    check(f"{n} fingerprint", " ".join(fp[i:i + 4] for i in range(0, 20, 4)), ident["fingerprint"])
    check(f"{n} x25519_public_key_hex",
          b.crypto_sign_ed25519_pk_to_curve25519(pk).hex(), ident["x25519_public_key_hex"])
    check(f"{n} x25519_secret_key_hex",
          b.crypto_sign_ed25519_sk_to_curve25519(ed_sk).hex(), ident["x25519_secret_key_hex"])


def curve(name):
    pk, ed_sk = ids[name]
    return (b.crypto_sign_ed25519_pk_to_curve25519(pk),
            b.crypto_sign_ed25519_sk_to_curve25519(ed_sk))


for s in v["shared_keys"]:
    a_pk, a_sk = curve(s["a"])
    b_pk, b_sk = curve(s["b"])
    check(f"shared {s['a']}->{s['b']}", b.crypto_box_beforenm(b_pk, a_sk).hex(), s["shared_key_hex"])
    check(f"shared {s['b']}->{s['a']}", b.crypto_box_beforenm(a_pk, b_sk).hex(), s["shared_key_hex"])

for box in v["boxes"]:
    snd_pk, snd_sk = curve(box["sender"])
    rcp_pk, rcp_sk = curve(box["recipient"])
    nonce = hx(box["nonce_hex"])
    plain = box["payload_json"].encode("utf-8")
    check(f"{box['id']} payload_utf8_hex", plain.hex(), box["payload_utf8_hex"])
    check(f"{box['id']} nonce_base64", b64(nonce), box["nonce_base64"])
    # PyNaCl's crypto_box returns tag || encrypted bytes, the crypto_box_easy layout.
    ct = b.crypto_box(plain, nonce, rcp_pk, snd_sk)
    check(f"{box['id']} ciphertext_hex", ct.hex(), box["ciphertext_hex"])
    check(f"{box['id']} ciphertext_base64", b64(ct), box["ciphertext_base64"])
    env = box["envelope"]
    check(f"{box['id']} envelope", (env["from"], env["to"], env["nonce"], env["ciphertext"]),
          (b64(ids[box["sender"]][0]), b64(ids[box["recipient"]][0]), b64(nonce), b64(ct)))
    opened = b.crypto_box_open(base64.b64decode(env["ciphertext"]), base64.b64decode(env["nonce"]),
                               snd_pk, rcp_sk)
    check(f"{box['id']} opens", opened.decode("utf-8"), box["payload_json"])

for a in v["auth"]:
    pk, ed_sk = ids[a["identity"]]
    msg = f"chat-p2p-auth/1\n{a['relay_url']}\n{a['challenge']}\n{b64(pk)}".encode("utf-8")
    check(f"auth {a['identity']} message_utf8", msg.decode("utf-8"), a["message_utf8"])
    check(f"auth {a['identity']} message_hex", msg.hex(), a["message_hex"])
    sig = SigningKey(ed_sk[:32]).sign(msg).signature
    check(f"auth {a['identity']} signature_base64", b64(sig), a["signature_base64"])

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
