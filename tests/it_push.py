#!/usr/bin/python3
"""
it_push.py: incoming messages pushed to a local push endpoint that checks
each request as the real service would (tests/js/push_endpoint.js): Web
Push (decrypted there with npm http_ece, VAPID JWT verified there), a
signed webhook (signature verified here with python3-nacl), and MPNS with
its raw / toast / tile fallback. Payloads are opened with python3-nacl.
Failure handling: 404/410 unregister, 429 with Retry-After, 5xx retried
then given up with the message still queued, a hanging endpoint cut off
while other sessions' pushes go through, one push per message id, a URL
taken by another session, and addresses refused after DNS. Prints TAP.
"""

import base64
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import fetch_queue, open_item, wait_queue  # noqa: E402
from harness.stack import DOMAIN, Stack  # noqa: E402

BOB = "bob@" + DOMAIN
TIMEOUT_MS = 2000
CONF = {"push.retries": 2, "push.retry_max": 5, "push.timeout_ms": TIMEOUT_MS}


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class User:
    """A logged-in session with its key and bound JID."""

    def __init__(self, st, name):
        self.st = st
        self.token = st.login(name)
        self.jid = st.sessions[self.token]["jid"]
        status, _, answer = st.call("key", {}, token=self.token)
        self.key = answer["key"]
        self.vapid = answer.get("vapid")

    def register(self, body):
        return self.st.call("register", body, token=self.token)

    def call(self, name, body=None):
        return self.st.call(name, body or {}, token=self.token)


def quiet_for(ep, kind, name, count, seconds):
    """True when /kind/name still has count requests after seconds."""
    time.sleep(seconds)
    return len(ep.log(kind, name)) == count


def opened(user, sealed):
    try:
        return open_item(user.key, sealed)
    except Exception as e:  # a test failure, reported by the caller
        return {"error": repr(e)}


# --- Web Push

def webpush_basics(st, ep, alice, bob):
    sub = ep.webpush_subscribe("alice")
    tap.is_(alice.vapid, st.vapid_public, "key also tells the VAPID public key clients need")
    status, _, answer = alice.register({"url": sub["endpoint"], "kind": "webpush",
                                        "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]}})
    tap.ok(status == 200 and answer.get("jid") == alice.jid,
           "register webpush answers 200 with the JID", repr(answer))
    bob.send_message(alice.jid, "web push hello", id="w1")
    req = ep.wait_log("wp", "alice", 1)[0]
    tap.is_(req["problems"], [], "the push service finds nothing wrong with the request")
    tap.is_(req["status"], 201, "and accepts it with 201")
    h = req["headers"]
    tap.ok(h.get("ttl") == "86400" and h.get("urgency") == "high" and
           h.get("content-encoding") == "aes128gcm",
           "TTL, Urgency high (user available) and aes128gcm headers", repr(h))
    v = req.get("vapid") or {}
    tap.ok(v.get("k") == st.vapid_public and v.get("sub") == "mailto:admin@example.org" and
           v.get("aud") == "https://127.0.0.1:%d" % ep.port,
           "VAPID: the configured key, subject and the endpoint's origin", repr(v))
    outer = json.loads(req["plaintext"]) if req.get("plaintext") else {}
    tap.ok(outer.get("v") == 1 and outer.get("type") == "message",
           "http_ece decrypts the body to the push wrapper", repr(outer))
    inner = opened(alice, outer.get("payload", ""))
    tap.ok(inner.get("body") == "web push hello" and inner.get("from") == BOB and
           inner.get("id") == "w1",
           "python3-nacl opens the pushed payload with the user key", repr(inner))
    queued = wait_queue(st, alice.token, 1)
    tap.ok(queued and [opened(alice, m).get("body") for m in queued["messages"]] == ["web push hello"],
           "the pushed message is also in the queue")
    return queued["cursor"]


def webpush_once_per_id(st, ep, alice, bob):
    bob.send_message(alice.jid, "web push hello again", id="w1")
    bob.send_message(alice.jid, "marker", id="w2")
    got = ep.wait_log("wp", "alice", 2)
    time.sleep(0.5)
    got = ep.log("wp", "alice")
    bodies = [opened(alice, json.loads(r["plaintext"])["payload"]).get("body") for r in got]
    tap.is_(bodies, ["web push hello", "marker"], "the same message id is pushed once")


def webpush_retry_after(st, ep, alice, bob):
    ep.script("wp", "alice", [{"status": 429, "headers": {"Retry-After": "1"}}])
    n = len(ep.log("wp", "alice"))
    bob.send_message(alice.jid, "rate limited", id="w3")
    got = ep.wait_log("wp", "alice", n + 2, timeout=10)
    first, second = got[n], got[n + 1]
    gap = (second["t_ms"] - first["t_ms"]) / 1000.0
    tap.ok(first["status"] == 429 and second["status"] == 201 and 0.9 <= gap < 4,
           "429 with Retry-After: 1 is retried after about a second (%.2f s)" % gap)


def webpush_give_up(st, ep, alice, bob):
    ep.script("wp", "alice", [{"status": 503}] * 3)
    n = len(ep.log("wp", "alice"))
    t0 = time.time()
    bob.send_message(alice.jid, "service down", id="w4")
    got = ep.wait_log("wp", "alice", n + 3, timeout=15)
    tap.ok(all(r["status"] == 503 for r in got[n:n + 3]),
           "503 is retried: three attempts with push.retries = 2")
    tap.ok(quiet_for(ep, "wp", "alice", n + 3, 2.5),
           "then the daemon gives up (no fourth attempt)")
    tap.ok(got[n + 2]["t_ms"] / 1000.0 - t0 >= 2.5,
           "with backoff between attempts (1 s, then 2 s)")
    answer = wait_queue(st, alice.token, 1)
    bodies = [opened(alice, m).get("body") for m in answer["messages"]]
    tap.ok("service down" in bodies, "the message it gave up on is still queued", repr(bodies))


def webpush_gone(st, ep, alice, bob):
    ep.webpush_unsubscribe("alice")
    n = len(ep.log("wp", "alice"))
    bob.send_message(alice.jid, "to a dead subscription", id="w5")
    got = ep.wait_log("wp", "alice", n + 1)
    tap.is_(got[n]["status"], 410, "a deleted subscription answers 410")
    time.sleep(1.5)  # the loop takes push results about once a second
    bob.send_message(alice.jid, "after gone", id="w6")
    tap.ok(quiet_for(ep, "wp", "alice", n + 1, 2),
           "after 410 the registration is gone: nothing more is pushed")
    answer = wait_queue(st, alice.token, 1)
    bodies = [opened(alice, m).get("body") for m in answer["messages"]]
    tap.ok("after gone" in bodies, "the message waits in the queue instead", repr(bodies))
    tap.ok("registration is gone" in st.daemon_log(), "the daemon logs why it dropped it")


# --- webhook

def webhook(st, ep, carol, bob):
    import nacl.signing
    url = ep.url("hook", "carol", host="localhost")
    status, _, _ = carol.register({"url": url, "kind": "webhook"})
    tap.is_(status, 200, "register a webhook by host name (localhost; loopback allowed here)")
    bob.send_message(carol.jid, "hook hello", id="h1")
    req = ep.wait_log("hook", "carol", 1)[0]
    tap.ok(req["problems"] == [] and req["signature_ok"] is True and req["status"] == 200,
           "the app server verifies the signature and accepts it", repr(req["problems"]))
    h = req["headers"]
    body = base64.b64decode(req["body_b64"])
    sig = h.get("x-talkproxy-signature", "")
    vk = nacl.signing.VerifyKey(b64url_decode(st.webhook_public))
    try:
        vk.verify(h.get("x-talkproxy-timestamp", "").encode() + b"." + body,
                  b64url_decode(sig[len("ed25519="):]))
        good = sig.startswith("ed25519=")
    except Exception:
        good = False
    tap.ok(good, "python3-nacl verifies the Ed25519 signature over timestamp.body")
    try:
        vk.verify(b"0." + body, b64url_decode(sig[len("ed25519="):]))
        tap.ok(False, "the signature does not verify with another timestamp")
    except Exception:
        tap.ok(True, "the signature does not verify with another timestamp")
    doc = json.loads(body)
    inner = opened(carol, doc.get("payload", ""))
    tap.ok(doc.get("type") == "message" and inner.get("body") == "hook hello",
           "the webhook body carries the sealed payload, opened with the key", repr(inner))


def hang_does_not_block(st, ep, alice, carol, bob):
    sub = ep.webpush_subscribe("alice2")
    alice.register({"url": sub["endpoint"], "kind": "webpush",
                    "keys": {"p256dh": sub["p256dh"], "auth": sub["auth"]}})
    ep.script("hook", "carol", [{"hang": True}])
    n = len(ep.log("hook", "carol"))
    bob.send_message(carol.jid, "to a hanging endpoint", id="h2")
    ep.wait_log("hook", "carol", n + 1)
    t0 = time.time()
    bob.send_message(alice.jid, "while carol's endpoint hangs", id="w7")
    ep.wait_log("wp", "alice2", 1, timeout=5)
    took = time.time() - t0
    tap.ok(took < 1.0, "while one endpoint hangs, another user's message is pushed in %.2f s" % took)
    got = ep.wait_log("hook", "carol", n + 2, timeout=TIMEOUT_MS / 1000.0 + 6)
    gap = (got[n + 1]["t_ms"] - got[n]["t_ms"]) / 1000.0
    tap.ok(got[n]["status"] is None and got[n + 1]["status"] == 200 and
           TIMEOUT_MS / 1000.0 - 0.2 <= gap < TIMEOUT_MS / 1000.0 + 3,
           "the hung request is cut at the time limit (%.1f s) and retried (%.2f s later)"
           % (TIMEOUT_MS / 1000.0, gap))


# --- MPNS

def mpns(st, ep, alice, bob):
    status, _, _ = alice.register({"url": ep.url("mpns", "alice"), "kind": "mpns",
                                   "tiles": [BOB]})
    tap.is_(status, 200, "register mpns with a secondary tile for bob")
    status, q = fetch_queue(st, alice.token)
    fetch_queue(st, alice.token, ack=q["cursor"])  # the client has read all: unread 0
    bob.send_message(alice.jid, "raw one", id="p1")
    raw = ep.wait_log("mpns", "alice", 1)[0]
    body = base64.b64decode(raw["body_b64"]).decode()
    tap.ok(raw["problems"] == [] and raw["target"] == "raw" and raw["class"] == 3,
           "a raw notification first, class 3 (immediate)", repr(raw["problems"]))
    tap.ok(body.startswith("msg:") and opened(alice, body[4:]).get("body") == "raw one",
           "its body is msg: and the sealed payload")

    ep.script("mpns", "alice", [{"status": 200, "headers": {
        "X-NotificationStatus": "Suppressed", "X-SubscriptionStatus": "Active",
        "X-DeviceConnectionStatus": "Connected"}}])
    bob.send_message(alice.jid, "toast <&> two", id="p2")
    got = ep.wait_log("mpns", "alice", 5)
    time.sleep(0.3)
    got = ep.log("mpns", "alice")[1:]
    by = {}
    for r in got:
        key = r["target"] + ("-second" if r.get("tile_id") else "")
        by[key] = r
    tap.ok(set(by) == {"raw", "toast", "token", "token-second"} and
           all(r["problems"] == [] for r in got),
           "raw suppressed: toast, tile and secondary tile follow", repr(sorted(by)))
    t = by.get("toast", {})
    tap.ok(t.get("class") == 2 and t.get("text1") == "Bob" and t.get("text2") == "toast <&> two"
           and t.get("param") == "/ChatPage.xaml?from=bob%40localhost",
           "toast: class 2, sender name, text (escaped and read back), chat page", repr(t))
    tile, second = by.get("token", {}), by.get("token-second", {})
    tap.ok(tile.get("class") == 1 and tile.get("count") == 2,
           "tile: class 1 with 2 unread", repr(tile))
    tap.ok(second.get("tile_id") == "/ChatPage.xaml?from=bob@localhost" and second.get("count") == 2,
           "secondary tile for bob with his unread count", repr(second))

    status, _, answer = alice.call("notifications", {"toast": False, "secondarytile": False})
    tap.ok(status == 200 and answer == {"toast": False, "tile": True, "secondarytile": False},
           "notifications answers the choices now in force", repr(answer))
    alice.call("presence", {"show": "away"})
    ep.script("mpns", "alice", [{"status": 200, "headers": {"X-NotificationStatus": "Suppressed"}}])
    n = len(ep.log("mpns", "alice"))
    bob.send_message(alice.jid, "three", id="p3")
    ep.wait_log("mpns", "alice", n + 2)
    time.sleep(0.5)
    got = ep.log("mpns", "alice")[n:]
    tap.ok([(r["target"], r["class"]) for r in got] == [("raw", 13), ("token", 11)],
           "away: delayed classes (raw 13, tile 11), and only the tile once toasts are off",
           repr([(r["target"], r["class"]) for r in got]))
    alice.call("presence", {"show": "xa"})
    n = len(ep.log("mpns", "alice"))
    bob.send_message(alice.jid, "four", id="p4")
    got = ep.wait_log("mpns", "alice", n + 1)
    tap.is_(got[n]["class"], 23, "xa: raw class 23")
    alice.call("presence", {"show": "available"})

    ep.script("mpns", "alice", [{"status": 404}])
    n = len(ep.log("mpns", "alice"))
    bob.send_message(alice.jid, "five", id="p5")
    ep.wait_log("mpns", "alice", n + 1)
    time.sleep(1.5)
    bob.send_message(alice.jid, "six", id="p6")
    tap.ok(quiet_for(ep, "mpns", "alice", n + 1, 2),
           "404 ends the MPNS registration: nothing more is pushed")


# --- one URL, one session

def url_taken(st, ep, alice, carol, bob):
    url = ep.url("hook", "shared")
    alice.register({"url": url, "kind": "webhook"})
    status, _, _ = carol.register({"url": url, "kind": "webhook"})
    tap.is_(status, 200, "carol registers the URL alice had")
    bob.send_message(alice.jid, "for alice", id="s1")
    bob.send_message(carol.jid, "for carol", id="s2")
    got = ep.wait_log("hook", "shared", 1)
    time.sleep(1)
    got = ep.log("hook", "shared")
    bodies = [opened(carol, json.loads(base64.b64decode(r["body_b64"]))["payload"]).get("body")
              for r in got]
    tap.is_(bodies, ["for carol"], "the URL now belongs to carol only: alice's message is not pushed there")
    answer = wait_queue(st, alice.token, 1)
    tap.ok("for alice" in [opened(alice, m).get("body") for m in answer["messages"]],
           "alice's message waits in her queue")


# --- addresses refused after DNS

def refused_addresses():
    with Stack(push=True, **{"push.allow_loopback": 0}) as st:
        tap.on_failure(st.dump_logs)
        ep = st.pushep
        bob = st.peer("bob")
        alice = User(st, "alice")
        status, _, answer = alice.register({"url": "http://localhost:%d/hook/x" % ep.port,
                                            "kind": "webhook"})
        tap.ok(status == 400 and answer["error"]["code"] == "bad_url",
               "an http URL is refused when registered (https only)", repr(answer))
        status, _, _ = alice.register({"url": ep.url("hook", "x", host="localhost"),
                                       "kind": "webhook"})
        tap.is_(status, 200, "a URL by host name is accepted when registered")
        bob.send_message(alice.jid, "never pushed", id="r1")
        answer = wait_queue(st, alice.token, 1)
        tap.ok(quiet_for(ep, "hook", "x", 0, 1.5),
               "localhost resolves to 127.0.0.1: refused at connect time, no request sent")
        log = st.daemon_log()
        tap.ok("loopback" in log and "/hook/x" not in log,
               "the daemon logs the refusal, without the URL's path")
        tap.ok([opened(alice, m).get("body") for m in answer["messages"]] == ["never pushed"],
               "the message is queued all the same")
        for host in ("127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1"):
            url = "https://%s:%d/hook/y" % (host, ep.port)
            status, _, answer = alice.register({"url": url, "kind": "webhook"})
            if status == 200:
                bob.send_message(alice.jid, "via " + host)
                ok = quiet_for(ep, "hook", "y", 0, 1.0)
            else:
                ok = status == 400
            tap.ok(ok, "%s is never contacted (register %d)" % (host, status))


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack(push=True, **CONF) as st:
        tap.on_failure(st.dump_logs)
        ep = st.pushep
        bob = st.peer("bob")
        alice, carol = User(st, "alice"), User(st, "carol")
        webpush_basics(st, ep, alice, bob)
        webpush_once_per_id(st, ep, alice, bob)
        webpush_retry_after(st, ep, alice, bob)
        webpush_give_up(st, ep, alice, bob)
        webpush_gone(st, ep, alice, bob)
        webhook(st, ep, carol, bob)
        hang_does_not_block(st, ep, alice, carol, bob)
        mpns(st, ep, alice, bob)
        url_taken(st, ep, alice, carol, bob)
    refused_addresses()
    tap.done()


if __name__ == "__main__":
    main()
