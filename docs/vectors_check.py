#!/usr/bin/env python3
"""Cross-check protocol/vectors.json (v1) and protocol/vectors_v2.json (v2) independently.

v1: recomputes with libsodium (through PyNaCl), independently of the TypeScript code (tweetnacl +
ed2curve), every crypto value: Ed25519 public keys from seeds, fingerprints, Ed25519 -> X25519
key conversion, the crypto_box shared keys, every sealed box (and opens it again), and every
relay-authentication signature.

v2: a second implementation of the v2 specification (docs/PROTOCOL.md) from the JSON alone:
X25519, crypto_box, crypto_box_seal_open, XChaCha20-Poly1305 and BLAKE2b from libsodium, SHA-256,
HMAC and HKDF from hashlib/hmac, and the relay URL grammar, padding, mailbox derivations, open
signatures, envelopes and the Double Ratchet (with the per-peer session rule) written here. It
recomputes every derived value and replays both ratchet transcripts, byte for byte.

    pip install pynacl
    python3 docs/vectors_check.py [path/to/vectors.json [path/to/vectors_v2.json]]

Exits 0 and prints "N passed, 0 failed" when every value matches.
"""
import base64
import binascii
import hashlib
import ipaddress
import json
import pathlib
import sys

from nacl import bindings as b
from nacl.signing import SigningKey

PROTOCOL_DIR = pathlib.Path(__file__).resolve().parent.parent / "protocol"
path = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else PROTOCOL_DIR / "vectors.json"
path_v2 = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else PROTOCOL_DIR / "vectors_v2.json"
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

# ---------------------------------------------------------------------------------------------
# Protocol v2: an independent implementation of docs/PROTOCOL.md, checked against the vectors.

import copy
import hmac
import re

from nacl.hash import blake2b
from nacl.encoding import RawEncoder

SALT = b"chat-p2p/2"
LABELS = {
    "salt": "chat-p2p/2",
    "mailboxAuth": "mailbox auth",
    "mailboxBox": "mailbox box",
    "pairId": "chat-p2p/2 pair\0",
    "inboxId": "chat-p2p/2 inbox\0",
    "session": "chat-p2p/2 session",
    "ratchet": "chat-p2p/2 ratchet",
    "message": "chat-p2p/2 message",
    "messageAd": "chat-p2p/2 msg",
    "localStorage": "local storage",
}
MAX_SKIP = 1000
MAX_SKIPPED_KEYS = 2000
MAX_OLD_RATCHET_KEYS = 50
MAX_SESSIONS = 3
BUCKETS = [512 << i for i in range(8)]


def sha256(data):
    return hashlib.sha256(data).digest()


def hmac256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def hkdf(ikm, salt, info, length):
    """RFC 5869 with SHA-256."""
    prk = hmac256(salt, ikm)
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac256(prk, block + info + bytes([i]))
        out += block
        i += 1
    return out[:length]


def u32(x):
    return x.to_bytes(4, "big")


def x25519(secret, public):
    """libsodium crypto_scalarmult; it refuses an all-zero result (small-order point)."""
    try:
        return b.crypto_scalarmult(secret, public)
    except Exception:
        return None


def x25519_public(secret):
    return b.crypto_scalarmult_base(secret)


def lab(name):
    return LABELS[name].encode("ascii")


def ed_keys(seed):
    sk = SigningKey(seed)
    return bytes(sk.verify_key), bytes(sk._signing_key)


def ikx_public(ik):
    return b.crypto_sign_ed25519_pk_to_curve25519(ik)


def pair_secret(my_ed_sk, peer_ik):
    return x25519(b.crypto_sign_ed25519_sk_to_curve25519(my_ed_sk), ikx_public(peer_ik))


def mailbox_seed(secret, s_ik, r_ik, epoch):
    return hkdf(secret, SALT, lab("mailboxAuth") + s_ik + r_ik + u32(epoch), 32)


def mailbox_box_key(secret, s_ik, r_ik, epoch):
    return hkdf(secret, SALT, lab("mailboxBox") + s_ik + r_ik + u32(epoch), 32)


def session_key(secret, init_ik, resp_ik):
    return hkdf(secret, bytes(32), lab("session") + init_ik + resp_ik, 32)


def kdf_rk(rk, dh_out):
    out = hkdf(dh_out, rk, lab("ratchet"), 64)
    return out[:32], out[32:]


def kdf_ck(ck):
    return hmac256(ck, b"\x01"), hmac256(ck, b"\x02")  # (message key, next chain key)


def message_keys(mk):
    out = hkdf(mk, bytes(32), lab("message"), 56)
    return out[:32], out[32:]


def aead_encrypt(key, nonce, plaintext, ad):
    return b.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key)


def aead_decrypt(key, nonce, ciphertext, ad):
    try:
        return b.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key)
    except Exception:
        return None


def pad(p):
    size = next(s for s in BUCKETS if len(p) + 4 <= s)
    return u32(len(p)) + p + bytes(size - 4 - len(p))


def unpad(padded):
    if len(padded) not in BUCKETS:
        return None
    n = int.from_bytes(padded[:4], "big")
    if next((s for s in BUCKETS if n + 4 <= s), None) != len(padded):
        return None
    if any(padded[4 + n:]):
        return None
    return padded[4:4 + n]


# --- relay URL grammar (docs/PROTOCOL.md) ---

def relay_url(text):
    if not text or len(text) > 2048 or re.search(r"[^\x21-\x7e]", text):
        return None
    if any(c in text for c in "@?#%\\"):
        return None
    m = re.fullmatch(r"([A-Za-z]+)://([^/]*)(.*)", text)
    if not m:
        return None
    scheme = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}.get(m.group(1).lower())
    if not scheme:
        return None
    authority, path = m.group(2), m.group(3)
    hm = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*)(?::(.*))?", authority)
    if not hm:
        return None
    host_text, port = hm.group(1), hm.group(2)
    if host_text.startswith("["):
        inner = host_text[1:-1]
        if not re.fullmatch(r"[0-9A-Fa-f:.]+", inner):
            return None
        try:
            groups = [int(g, 16) for g in ipaddress.IPv6Address(inner).exploded.split(":")]
        except ValueError:
            return None
        best, best_len, i = -1, 1, 0
        while i < 8:
            if groups[i]:
                i += 1
                continue
            j = i
            while j < 8 and groups[j] == 0:
                j += 1
            if j - i > best_len:
                best, best_len = i, j - i
            i = j
        h = [format(g, "x") for g in groups]
        host = "[" + (":".join(h) if best < 0 else
                      ":".join(h[:best]) + "::" + ":".join(h[best + best_len:])) + "]"
    else:
        host = host_text.lower()
        labels = host.split(".")
        if not host or len(host) > 253:
            return None
        if labels[-1].isdigit():
            parts = host.split(".")
            if len(parts) != 4 or not all(re.fullmatch(r"0|[1-9][0-9]{0,2}", p) and int(p) < 256
                                          for p in parts):
                return None
        elif not all(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", x) for x in labels):
            return None
    port_text = ""
    if port is not None:
        if not re.fullmatch(r"[1-9][0-9]{0,4}", port) or int(port) > 65535:
            return None
        if port != ("80" if scheme == "ws" else "443"):
            port_text = ":" + port
    if path in ("", "/"):
        path = "/ws"
    for seg in path[1:].split("/"):
        if not re.fullmatch(r"[A-Za-z0-9._~-]*", seg) or seg in (".", ".."):
            return None
    return f"{scheme}://{host}{port_text}{path}"


# --- Double Ratchet and the per-peer session rule ---

HEADER = 41


def header(t, dh, pn, n):
    return bytes([2 if t == "init" else 1]) + dh + u32(pn) + u32(n)


def parse_header(m):
    if len(m) < HEADER or m[0] not in (1, 2):
        return None
    return {"type": "init" if m[0] == 2 else "normal", "dh": m[1:33],
            "pn": int.from_bytes(m[33:37], "big"), "n": int.from_bytes(m[37:41], "big")}


class Party:
    def __init__(self, name, seed, peer_ik, draws):
        self.name = name
        self.ik, self.ed_sk = ed_keys(seed)
        self.ikx_sk = b.crypto_sign_ed25519_sk_to_curve25519(self.ed_sk)
        self.peer = peer_ik
        self.draws = iter(bytes.fromhex(d) for d in draws)
        self.sessions = []
        self.retired = []
        self.rx = 0
        self.restarted_at = 0
        self.next_seq = 0

    def new_key(self):
        sk = next(self.draws)
        return sk, x25519_public(sk)

    def choose(self):
        live = [s for s in self.sessions if s["last_rx"] > self.restarted_at]
        last = max(live, key=lambda s: s["last_rx"]) if live else None
        if last and not last["last_rx_init"]:
            return last
        me_first = self.ik < self.peer
        cands = ([last] if last else []) + [
            s for s in self.sessions if s["initiator"] == "me" and not s["received"]]
        cands.sort(key=lambda s: (0 if (s["initiator"] == "me") == me_first else 1, -s["seq"]))
        return cands[0] if cands else None

    def add(self, s):
        s.update(seq=self.next_seq, last_rx=0, last_rx_init=False)
        self.next_seq += 1
        self.sessions.append(s)
        if len(self.sessions) > MAX_SESSIONS:
            cur = self.choose()
            keep = {s["id"], cur["id"] if cur else None}
            victim = sorted((x for x in self.sessions if x["id"] not in keep),
                            key=lambda x: (x["last_rx"], x["seq"]))[0]
            self.sessions.remove(victim)
            self.retired = (self.retired + [victim["id"]])[-100:]
        return s

    def start(self):
        esk, epk = self.new_key()
        sk = session_key(pair_secret(self.ed_sk, self.peer), self.ik, self.peer)
        dh_out = x25519(esk, ikx_public(self.peer))
        rk, ck = kdf_rk(sk, dh_out)
        s = {"id": epk, "initiator": "me", "received": False, "rk": rk, "dhs": (esk, epk),
             "dhr": ikx_public(self.peer), "cks": ck, "ckr": None, "ns": 0, "nr": 0, "pn": 0,
             "skipped": [], "old_dhr": []}
        return self.add(s), {"ek_secret_hex": esk.hex(), "ek_public_hex": epk.hex(),
                             "sk_hex": sk.hex(), "dh_out_hex": dh_out.hex(), "rk_hex": rk.hex(),
                             "cks_hex": ck.hex()}

    def encrypt(self, plaintext):
        s = self.choose()
        start = None
        if s is None:
            s, start = self.start()
        mk, s["cks"] = kdf_ck(s["cks"])
        t = "init" if s["initiator"] == "me" and not s["received"] else "normal"
        h = header(t, s["dhs"][1], s["pn"], s["ns"])
        s["ns"] += 1
        key, nonce = message_keys(mk)
        ad = lab("messageAd") + self.ik + self.peer + h
        return s, start, mk, key, nonce, ad, h + aead_encrypt(key, nonce, plaintext, ad)

    def skip(self, s, until):
        if s["ckr"] is None:
            return True
        if until - s["nr"] > MAX_SKIP:
            return False
        while s["nr"] < until:
            mk, s["ckr"] = kdf_ck(s["ckr"])
            s["skipped"].append((s["dhr"], s["nr"], mk))
            s["nr"] += 1
        s["skipped"] = s["skipped"][-MAX_SKIPPED_KEYS:]
        return True

    def ratchet_decrypt(self, state, m):
        """Signal's RatchetDecrypt on a copy: returns (new state, plaintext) or (None, reason)."""
        s = copy.deepcopy(state)
        h = parse_header(m)
        if h is None or len(m) < HEADER + 16:
            return None, "malformed"

        def open_with(mk):
            key, nonce = message_keys(mk)
            p = aead_decrypt(key, nonce, m[HEADER:], lab("messageAd") + self.peer + self.ik
                             + m[:HEADER])
            if p is None:
                return None, "auth_failed"
            s["received"] = True
            return s, p
        for i, (d, n, mk) in enumerate(s["skipped"]):
            if d == h["dh"] and n == h["n"]:
                r = open_with(mk)
                if r[0] is not None:
                    del s["skipped"][i]
                return r
        if (h["dh"] == s["dhr"] and h["n"] < s["nr"]) or h["dh"] in s["old_dhr"]:
            return None, "replay"
        if h["dh"] != s["dhr"]:
            if not self.skip(s, h["pn"]):
                return None, "too_many_skipped"
            if s["ckr"] is not None and s["dhr"] is not None:
                s["old_dhr"] = (s["old_dhr"] + [s["dhr"]])[-MAX_OLD_RATCHET_KEYS:]
            recv = x25519(s["dhs"][0], h["dh"])
            if recv is None:
                return None, "malformed"
            s["rk"], s["ckr"] = kdf_rk(s["rk"], recv)
            s["pn"], s["ns"], s["nr"], s["dhr"] = s["ns"], 0, 0, h["dh"]
            s["dhs"] = self.new_key()
            s["rk"], s["cks"] = kdf_rk(s["rk"], x25519(s["dhs"][0], h["dh"]))
        if s["ckr"] is None:
            return None, "auth_failed"
        if not self.skip(s, h["n"]):
            return None, "too_many_skipped"
        mk, s["ckr"] = kdf_ck(s["ckr"])
        s["nr"] += 1
        return open_with(mk)

    def opened(self, s, init, fresh):
        if fresh:
            self.rx += 1
            s["last_rx"], s["last_rx_init"] = self.rx, init

    def decrypt(self, m):
        h = parse_header(m)
        if h is None:
            return "malformed", None, None
        init = h["type"] == "init"
        if init and not any(s["id"] == h["dh"] for s in self.sessions):
            if h["dh"] in self.retired:
                return "replay", None, None
            draft = {"id": h["dh"], "initiator": "peer", "received": False,
                     "rk": session_key(pair_secret(self.ed_sk, self.peer), self.peer, self.ik),
                     "dhs": (self.ikx_sk, x25519_public(self.ikx_sk)), "dhr": None, "cks": None,
                     "ckr": None, "ns": 0, "nr": 0, "pn": 0, "skipped": [], "old_dhr": []}
            s, p = self.ratchet_decrypt(draft, m)
            if s is None:
                return p, None, None
            self.opened(self.add(s), True, True)
            return "ok", s, p

        def known(s):
            if init:
                return s["id"] == h["dh"]
            return (h["dh"] == s["dhr"] or h["dh"] in s["old_dhr"]
                    or any(d == h["dh"] for d, _, _ in s["skipped"]))
        for s in [x for x in self.sessions if known(x)] + [x for x in self.sessions if not known(x)]:
            if init and not known(s):
                break
            fresh = not any(d == h["dh"] and n == h["n"] for d, n, _ in s["skipped"])
            new, p = self.ratchet_decrypt(s, m)
            if new is not None:
                self.sessions[self.sessions.index(s)] = new
                self.opened(new, init, fresh)
                return "ok", new, p
            if known(s) and p != "auth_failed":
                return p, None, None
        return "auth_failed", None, None


def dump(s):
    hx_ = lambda x: None if x is None else x.hex()
    return {"id_hex": s["id"].hex(), "initiator": s["initiator"], "received": s["received"],
            "rk_hex": s["rk"].hex(), "dhs_public_hex": s["dhs"][1].hex(),
            "dhs_secret_hex": s["dhs"][0].hex(), "dhr_hex": hx_(s["dhr"]),
            "cks_hex": hx_(s["cks"]), "ckr_hex": hx_(s["ckr"]), "ns": s["ns"], "nr": s["nr"],
            "pn": s["pn"],
            "skipped": [{"dh_hex": d.hex(), "n": n, "mk_hex": mk.hex()} for d, n, mk in s["skipped"]],
            "old_dhr_hex": [d.hex() for d in s["old_dhr"]]}


def check_transcript(t, seeds, iks):
    names = list(t["parties"])
    parties = {n: Party(n, seeds[n], iks[[x for x in names if x != n][0]],
                        t["parties"][n]["rng_draws_hex"]) for n in names}
    sent = {}
    for st in t["steps"]:
        p = parties[st["party"]]
        name = f"{t['name']} {st['op']} {st['party']} {st['label']}"
        if st["op"] == "send":
            payload = st["payload_json"].encode("utf-8")
            s, start, mk, key, nonce, ad, m = p.encrypt(pad(payload))
            sent[st["label"]] = m
            check(f"{name} session start", start, st.get("session_start"))
            check(f"{name} session", s["id"].hex(), st["session_id_hex"])
            h = parse_header(m)
            check(f"{name} header", {"type": h["type"], "dh_hex": h["dh"].hex(), "pn": h["pn"],
                                     "n": h["n"]}, st["header"])
            check(f"{name} keys", (mk.hex(), key.hex(), nonce.hex(), ad.hex()),
                  (st["message_key_hex"], st["aead_key_hex"], st["aead_nonce_hex"], st["ad_hex"]))
            check(f"{name} message", m.hex(), st["message_hex"])
        else:
            result, s, plain = p.decrypt(sent[st["label"]])
            check(f"{name} result", result, st["result"])
            if result != "ok":
                continue
            check(f"{name} plaintext", unpad(plain).decode("utf-8"), st["payload_json"])
            check(f"{name} session", s["id"].hex(), st["session_id_hex"])
        check(f"{name} session state", dump(s), st["session_after"])
        cur = p.choose()
        check(f"{name} sending session", cur["id"].hex() if cur else None,
              st["sending_session_after_hex"])


def check_v2(w):
    check("v2 protocol_version", w["protocol_version"], 2)
    check("v2 labels", w["labels"], LABELS)
    seeds, iks, eds = {}, {}, {}
    for ident in w["identities"]:
        n = ident["name"]
        seeds[n] = hx(ident["seed_hex"])
        iks[n], eds[n] = ed_keys(seeds[n])
        check(f"v2 {n} public key", (iks[n].hex(), b64(iks[n])),
              (ident["public_key_hex"], ident["public_key_base64"]))
        check(f"v2 {n} x25519", (ikx_public(iks[n]).hex(),
                                 b.crypto_sign_ed25519_sk_to_curve25519(eds[n]).hex()),
              (ident["x25519_public_key_hex"], ident["x25519_secret_key_hex"]))
    mailbox_ids = {}
    for pr in w["pairs"]:
        secret = pair_secret(eds[pr["a"]], iks[pr["b"]])
        check(f"v2 pair secret {pr['a']}-{pr['b']}", secret.hex(), pr["pair_secret_hex"])
        check(f"v2 pair secret {pr['b']}-{pr['a']}", pair_secret(eds[pr["b"]], iks[pr["a"]]).hex(),
              pr["pair_secret_hex"])
        for mb in pr["mailboxes"]:
            s_ik, r_ik, e = iks[mb["sender"]], iks[mb["recipient"]], mb["epoch"]
            seed = mailbox_seed(secret, s_ik, r_ik, e)
            auth_pk = bytes(SigningKey(seed).verify_key)
            mid = sha256(lab("pairId") + auth_pk)
            mailbox_ids[(mb["sender"], mb["recipient"], e)] = (mid, mailbox_box_key(secret, s_ik, r_ik, e), seed)
            check(f"v2 mailbox {mb['sender']}->{mb['recipient']}/{e}",
                  (seed.hex(), auth_pk.hex(), b64(auth_pk), mailbox_box_key(secret, s_ik, r_ik, e).hex(),
                   mid.hex(), b64(mid)),
                  (mb["auth_seed_hex"], mb["auth_public_key_hex"], mb["auth_public_key_base64"],
                   mb["box_key_hex"], mb["mailbox_id_hex"], mb["mailbox_id_base64"]))
        for sk in pr["session_keys"]:
            check(f"v2 SK {sk['initiator']}->{sk['responder']}",
                  session_key(secret, iks[sk["initiator"]], iks[sk["responder"]]).hex(), sk["sk_hex"])
    for ib in w["inboxes"]:
        iid = sha256(lab("inboxId") + iks[ib["identity"]])
        check(f"v2 inbox {ib['identity']}", (iid.hex(), b64(iid)), (ib["inbox_id_hex"], ib["inbox_id_base64"]))
    for ls in w["local_storage_keys"]:
        check(f"v2 local storage key {ls['identity']}",
              hkdf(seeds[ls["identity"]], SALT, lab("localStorage"), 32).hex(), ls["key_hex"])
    for k in w["kdf_rk"]:
        rk, ck = kdf_rk(hx(k["rk_hex"]), hx(k["dh_out_hex"]))
        check("v2 KDF_RK", (rk.hex(), ck.hex()), (k["root_key_hex"], k["chain_key_hex"]))
    for k in w["kdf_ck"]:
        mk, ck = kdf_ck(hx(k["ck_hex"]))
        check("v2 KDF_CK", (mk.hex(), ck.hex()), (k["message_key_hex"], k["next_chain_key_hex"]))
    for k in w["message_keys"]:
        key, nonce = message_keys(hx(k["mk_hex"]))
        check("v2 message keys", (key.hex(), nonce.hex()), (k["key_hex"], k["nonce_hex"]))
    for a in w["aead"]:
        key, nonce, ad = hx(a["key_hex"]), hx(a["nonce_hex"]), hx(a["ad_hex"])
        c = aead_encrypt(key, nonce, hx(a["plaintext_hex"]), ad)
        check("v2 aead", c.hex(), a["ciphertext_hex"])
        check("v2 aead opens", aead_decrypt(key, nonce, c, ad).hex(), a["plaintext_hex"])
    for sb in w["sealed_boxes"]:
        pk = ikx_public(iks[sb["recipient"]])
        esk = hx(sb["ephemeral_secret_hex"])
        epk = x25519_public(esk)
        nonce = blake2b(epk + pk, digest_size=24, encoder=RawEncoder)
        sealed = epk + b.crypto_box(hx(sb["plaintext_hex"]), nonce, pk, esk)
        check("v2 sealed box", (pk.hex(), epk.hex(), sealed.hex()),
              (sb["recipient_x25519_public_hex"], sb["ephemeral_public_hex"], sb["sealed_hex"]))
        rsk = b.crypto_sign_ed25519_sk_to_curve25519(eds[sb["recipient"]])
        check("v2 sealed box opens with crypto_box_seal_open",
              b.crypto_box_seal_open(hx(sb["sealed_hex"]), pk, rsk).hex(), sb["plaintext_hex"])
    pd = w["padding"]
    check("v2 buckets", pd["buckets"], BUCKETS)
    for c in pd["valid"]:
        check("v2 pad", pad(hx(c["payload_hex"])).hex(), c["padded_hex"])
        check("v2 unpad", unpad(hx(c["padded_hex"])).hex(), c["payload_hex"])
    for c in pd["sizes"]:
        check(f"v2 pad size {c['payload_length']}", len(pad(bytes(c["payload_length"]))),
              c["padded_length"])
    check("v2 too long", pd["too_long"] + 4 > BUCKETS[-1], True)
    for c in pd["invalid"]:
        check(f"v2 unpad refuses: {c['why']}", unpad(hx(c["padded_hex"])), None)
    for u in w["relay_urls"]:
        check(f"v2 relay url {u['input']!r}", relay_url(u["input"]), u["normalized"])
    for o in w["open_signatures"]:
        msg = "\n".join(["chat-p2p-open/2", o["relay_url"], o["challenge"], o["kind"],
                         o["key_base64"]]).encode("utf-8")
        check(f"v2 open {o['kind']} message", (msg.decode("utf-8"), msg.hex()),
              (o["message_utf8"], o["message_hex"]))
        if o["kind"] == "inbox":
            seed, mid = seeds[o["identity"]], sha256(lab("inboxId") + iks[o["identity"]])
        else:
            mb = o["mailbox"]
            mid, _, seed = mailbox_ids[(mb["sender"], mb["recipient"], mb["epoch"])]
        sk = SigningKey(seed)
        check(f"v2 open {o['kind']} key", b64(bytes(sk.verify_key)), o["key_base64"])
        check(f"v2 open {o['kind']} signature", b64(sk.sign(msg).signature), o["signature_base64"])
        check(f"v2 open {o['kind']} mailbox", b64(mid), o["mailbox_id_base64"])
        check(f"v2 open {o['kind']} frame", json.loads(o["frame"]),
              {"v": 2, "type": "open", "kind": o["kind"], "key": o["key_base64"],
               "signature": o["signature_base64"]})
    for t in w["ratchet"]["transcripts"]:
        for party, draws in t["parties"].items():
            want = [sha256(f"chat-p2p/2 vector rng {t['name']}/{party}".encode() + u32(i)).hex()
                    for i in range(len(draws["rng_draws_hex"]))]
            check(f"v2 rng {t['name']}/{party}", draws["rng_draws_hex"], want)
        check_transcript(t, seeds, iks)
    messages = {(t["name"], st["label"]): hx(st["message_hex"])
                for t in w["ratchet"]["transcripts"] for st in t["steps"] if st["op"] == "send"}
    for e in w["envelopes"]:
        m = messages[(e["from_step"]["transcript"], e["from_step"]["label"])]
        env = json.loads(e["envelope_json"])
        if e["name"] == "pair":
            mid, key, _ = mailbox_ids[(e["sender"], e["recipient"], e["epoch"])]
            nonce = hx(e["nonce_hex"])
            body = nonce + aead_encrypt(key, nonce, m, mid)
            check("v2 pair body opens", aead_decrypt(key, body[:24], body[24:], mid), m)
            to = b64(mid)
        else:
            pk = ikx_public(iks[e["recipient"]])
            plain = b"\x02" + iks[e["sender"]] + m
            check("v2 request plaintext", plain.hex(), e["sealed_plaintext_hex"])
            esk = hx(e["ephemeral_secret_hex"])
            epk = x25519_public(esk)
            body = epk + b.crypto_box(plain, blake2b(epk + pk, digest_size=24, encoder=RawEncoder),
                                      pk, esk)
            rsk = b.crypto_sign_ed25519_sk_to_curve25519(eds[e["recipient"]])
            check("v2 request body opens", b.crypto_box_seal_open(body, pk, rsk), plain)
            to = b64(sha256(lab("inboxId") + iks[e["recipient"]]))
        check(f"v2 {e['name']} body", body.hex(), e["body_hex"])
        canonical = json.dumps({"v": 2, "id": env["id"], "to": to, "body": b64(body)},
                               separators=(",", ":"))
        check(f"v2 {e['name']} envelope", canonical, e["envelope_json"])
        check(f"v2 {e['name']} body size is a bucket plus overhead",
              len(body) - (97 if e["name"] == "pair" else 138) in BUCKETS, True)
        frame = json.loads(e["send_frame"])
        check(f"v2 {e['name']} send frame", frame.get("key"),
              b64(iks[e["recipient"]]) if e["name"] == "request" else None)


check_v2(json.loads(path_v2.read_text(encoding="utf-8")))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
