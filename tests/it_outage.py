#!/usr/bin/python3
"""
it_outage.py: Redis and the XMPP server restart under a logged-in session.
Redis (AOF on, as shipped): calls answer 503 at once while it is down, both
programs reconnect by themselves, the session and its token survive, and a
message that arrived during the outage is stored once Redis is back.
Prosody: the daemon reconnects with backoff, calls answer meanwhile, and a
message sent while our stream was down reaches the queue exactly once.
Prints TAP.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import fetch_queue, open_item  # noqa: E402
from harness.stack import DOMAIN, Stack  # noqa: E402

BOB = "bob@" + DOMAIN


def until(fn, timeout, interval=0.1):
    """Calls fn until it returns a true value (bounded); returns the last."""
    deadline = time.time() + timeout
    got = fn()
    while not got and time.time() < deadline:
        time.sleep(interval)
        got = fn()
    return got


def bodies(st, token, key):
    status, answer = fetch_queue(st, token)
    if status != 200:
        return None
    return [open_item(key, m).get("body") for m in answer["messages"]]


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
    ok = until(lambda: st.call("roster", {}, token=token)[0] == 200, 20)
    tap.ok(ok, "after Redis is back the same token works (%.1f s)" % (time.time() - t1))
    status, _, _ = st.call("message", {"to": BOB, "body": "redis is back"}, token=token)
    got = bob.wait_message(lambda m: m["body"] == "redis is back", 10)
    tap.ok(status == 200 and got is not None,
           "the daemon takes requests again: a message reaches bob")
    got = until(lambda: "during the redis outage" in (bodies(st, token, key) or []), 10)
    tap.ok(got, "the message that arrived while Redis was down is stored once it is back")
    tap.is_((bodies(st, token, key) or []).count("during the redis outage"), 1, "exactly once")


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
    ok = until(lambda: st.call("message", {"to": BOB, "body": "back online"},
                               token=token)[0] == 200, 40, interval=0.5)
    tap.ok(ok, "the daemon reconnects by itself (%.1f s, with backoff)" % (time.time() - t0))
    got = until(lambda: "while alice reconnects" in (bodies(st, token, key) or []), 15)
    tap.ok(got, "a message sent while our stream was down reaches the queue")
    time.sleep(1)
    tap.is_((bodies(st, token, key) or []).count("while alice reconnects"), 1,
            "exactly once")
    log = st.daemon_log()
    tap.ok("stream down" in log and "reconnecting" in log,
           "the daemon logs the outage and its reconnects")


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
    tap.done()


if __name__ == "__main__":
    main()
