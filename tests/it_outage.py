#!/usr/bin/python3
"""
it_outage.py: Redis and the XMPP server restart under a logged-in session,
and the path to the XMPP server breaks (a relay cuts it with RSTs).
Redis (AOF on, as shipped): calls answer 503 at once while it is down, both
programs reconnect by themselves, the session and its token survive, and a
message that arrived during the outage is stored once Redis is back.
Prosody: the daemon reconnects with backoff, calls answer meanwhile, and a
message sent while our stream was down reaches the queue exactly once.
Cut path: the daemon resumes the stream with XEP-0198 (Prosody's
mod_smacks) and the stanzas the server queued meanwhile arrive once.
Prints TAP.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.cutter import Cutter  # noqa: E402
from harness.sealed import bodies, fetch_queue  # noqa: E402
from harness.stack import DOMAIN, Stack, poll  # noqa: E402

BOB = "bob@" + DOMAIN


def queued(st, token, key):
    status, answer = fetch_queue(st, token)
    return bodies(key, answer) if status == 200 else None


def redis_outage(st, token, key, jid, bob):
    st.stop_redis()
    t0 = time.time()
    status, _, answer = st.call("roster", {}, token=token)
    took = time.time() - t0
    tap.ok(status == 503 and answer["error"]["code"] == "redis_unavailable" and took < 2.5,
           "with Redis down a call answers 503 redis_unavailable in %.2f s" % took, repr(answer))
    status, _, _ = st.call(None, None, method="GET", path="/health", content_type=None)
    tap.is_(status, 503, "health says 503 while Redis is down")
    bob.send_message(jid, "during the redis outage", id="r1")
    time.sleep(1)
    st.start_redis()
    t1 = time.time()
    ok = poll(lambda: st.call("roster", {}, token=token)[0] == 200, 20)
    tap.ok(ok, "after Redis is back the same token works (%.1f s)" % (time.time() - t1))
    status, _, _ = st.call("message", {"to": BOB, "body": "redis is back"}, token=token)
    got = bob.wait_message(lambda m: m["body"] == "redis is back", 10)
    tap.ok(status == 200 and got is not None,
           "the daemon takes requests again: a message reaches bob")
    got = poll(lambda: "during the redis outage" in (queued(st, token, key) or []), 10)
    tap.ok(got, "the message that arrived while Redis was down is stored once it is back")
    tap.is_((queued(st, token, key) or []).count("during the redis outage"), 1, "exactly once")


def xmpp_outage(st, token, key, jid):
    st.stop_prosody()
    time.sleep(0.5)
    status, _, answer = st.call("message", {"to": BOB, "body": "x"}, token=token)
    tap.ok(status == 503 and answer["error"]["code"] == "session_offline",
           "while the XMPP server is down message answers 503 session_offline", repr(answer))
    status, _, _ = st.call("roster", {}, token=token)
    tap.is_(status, 200, "and the session still answers roster")
    st.start_prosody()
    bob = st.peer("bob", resource="peer2")
    bob.send_message(jid.split("/")[0], "while alice reconnects", id="x1")
    t0 = time.time()
    ok = poll(lambda: st.call("message", {"to": BOB, "body": "back online"},
                               token=token)[0] == 200, 40, interval=0.5)
    tap.ok(ok, "the daemon reconnects by itself (%.1f s, with backoff)" % (time.time() - t0))
    got = poll(lambda: "while alice reconnects" in (queued(st, token, key) or []), 15)
    tap.ok(got, "a message sent while our stream was down reaches the queue")
    time.sleep(1)
    tap.is_((queued(st, token, key) or []).count("while alice reconnects"), 1,
            "exactly once")
    log = st.daemon_log()
    tap.ok("stream down" in log and "reconnecting" in log,
           "the daemon logs the outage and its reconnects")


def stream_cut():
    """The path to the XMPP server breaks (RST both ways, the server keeps
    the session): the daemon resumes it with XEP-0198 and what the peer
    sent meanwhile arrives once."""
    # Prosody names a resumption only in its debug log.
    with Stack(daemon=False, prosody_debug=True) as st:
        tap.on_failure(st.dump_logs)
        cutter = Cutter(st.ports["prosody"])
        st.conf_overrides["xmpp.connect_port"] = cutter.port
        st._write_talkproxy_conf()
        st.start_daemon()
        bob = st.peer("bob")
        token = st.login("alice")
        jid = st.sessions[token]["jid"]
        key = st.call("key", {}, token=token)[2]["key"]
        bob.send_message(jid, "before the cut", id="c0")
        poll(lambda: "before the cut" in (queued(st, token, key) or []), 10)
        tap.is_(cutter.cut(), 1, "the relayed XMPP connection is cut")
        for i in range(3):
            bob.send_message(jid, "during the cut %d" % i, id="c%d" % (i + 1))
        t0 = time.time()
        want = ["before the cut"] + ["during the cut %d" % i for i in range(3)]
        got = poll(lambda: queued(st, token, key) == want, 30, interval=0.3)
        tap.ok(got, "the messages sent while the path was broken arrive (%.1f s)"
               % (time.time() - t0), repr(queued(st, token, key)))
        time.sleep(1)
        tap.is_(queued(st, token, key), want, "each exactly once")
        with open(st.path("prosody.log"), errors="replace") as f:
            text = f.read()
        tap.ok("mod_smacks session resumed" in text,
               "the daemon resumed its stream (XEP-0198), the server says")
        status, _, _ = st.call("message", {"to": BOB, "body": "after the cut"}, token=token)
        tap.ok(status == 200 and bob.wait_message(lambda m: m["body"] == "after the cut", 10),
               "alice sends again after the resumption")
        cutter.close()


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack() as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        token = st.login("alice")
        jid = st.sessions[token]["jid"]
        key = st.call("key", {}, token=token)[2]["key"]
        redis_outage(st, token, key, jid, bob)
        xmpp_outage(st, token, key, jid)
    stream_cut()
    tap.done()


if __name__ == "__main__":
    main()
