"""
sealed.py: opens talkproxy's sealed payloads the way a phone would, with
Debian's python3-nacl (libsodium through PyNaCl, an implementation
independent of ours): base64 of nonce (24) || XChaCha20-Poly1305-IETF
ciphertext and tag, no associated data, key from the `key` call.
"""

import base64
import json

NONCE = 24


def open_item(key_b64, item_b64):
    """Returns the payload as a dict; raises on a forged or foreign item."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
    key = base64.b64decode(key_b64, validate=True)
    blob = base64.b64decode(item_b64, validate=True)
    plain = crypto_aead_xchacha20poly1305_ietf_decrypt(
        blob[NONCE:], None, blob[:NONCE], key)
    return json.loads(plain.decode("utf-8"))


def bodies(key_b64, answer):
    """The bodies of a messagequeue answer's items, each opened."""
    return [open_item(key_b64, m).get("body") for m in answer.get("messages", [])]


def fetch_queue(st, token, ack=None):
    """One messagequeue call; returns (status, answer)."""
    body = {} if ack is None else {"ack": ack}
    status, _, answer = st.call("messagequeue", body, token=token)
    return status, answer


def wait_queue(st, token, count, timeout=10.0, ack=None):
    """Polls messagequeue (bounded) until it holds at least count items;
    returns the last answer."""
    import time
    deadline = time.time() + timeout
    answer = None
    while time.time() < deadline:
        status, answer = fetch_queue(st, token, ack)
        if status == 200 and len(answer.get("messages", [])) >= count:
            return answer
        time.sleep(0.05)
    return answer
