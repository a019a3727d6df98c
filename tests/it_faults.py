#!/usr/bin/python3
"""
it_faults.py: failures in the middle of a stream of incoming messages.
The peer sends numbered messages at a steady rate while the daemon is
SIGKILLed and restarted, Redis is SIGKILLed and restarted (its AOF
keeps what it acknowledged), and Prosody is SIGKILLed and restarted; the
push endpoint resets connections and answers garbage. After each, every
message the peer sent is in what the phone can fetch, exactly once.
Bounded in time; loopback only. Prints TAP.
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import fetch_queue, open_item  # noqa: E402
from harness.stack import DOMAIN, Stack  # noqa: E402

RATE = 100  # messages per second


class Phone:
    """Alice's phone: drains the queue, acknowledging page by page, and
    keeps every message id it has seen (with repeats)."""

    def __init__(self, st, token, key):
        self.st, self.token, self.key = st, token, key
        self.cursor = None
        self.ids = []

    def drain(self):
        for _ in range(200):  # pages
            status, answer = fetch_queue(self.st, self.token, self.cursor)
            if status != 200:
                return False
            for m in answer["messages"]:
                item = open_item(self.key, m)
                if item.get("kind") == "message":
                    self.ids.append(item.get("id"))
            if answer.get("cursor"):
                self.cursor = answer["cursor"]
            if not answer["messages"] and not answer.get("more"):
                return True
        return False

    def wait_for(self, ids, timeout):
        """Drains until every id arrived (bounded); returns the missing."""
        deadline = time.monotonic() + timeout
        missing = set(ids)
        for _ in range(int(timeout / 0.25) + 1):
            self.drain()
            missing = set(ids) - set(self.ids)
            if not missing or time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        return missing


def stream(peer, to, prefix, count):
    """Sends count numbered messages at RATE per second in a thread."""
    ids = ["%s-%03d" % (prefix, i) for i in range(count)]

    def run():
        for i, mid in enumerate(ids):
            try:
                peer.send_message(to, "message %s" % mid, id=mid)
            except Exception:  # the peer's server went away: stop
                del ids[i:]
                return
            time.sleep(1.0 / RATE)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, ids


def exactly_once(phone, ids, what, timeout=60):
    missing = phone.wait_for(ids, timeout)
    mine = [i for i in phone.ids if i in set(ids)]
    tap.ok(not missing, "%s: all %d messages reached the phone" % (what, len(ids)),
           "missing %d: %s" % (len(missing), sorted(missing)[:10]))
    tap.is_(len(mine), len(set(mine)), "%s: none arrived twice" % what)


def kill_daemon(st, phone, bob, alice_jid):
    t, ids = stream(bob, alice_jid, "d", 300)
    time.sleep(1.0)
    st.stop_daemon(signal.SIGKILL)
    time.sleep(0.5)
    st.start_daemon()
    t.join(30)
    exactly_once(phone, ids, "daemon SIGKILLed mid-stream")


def kill_redis(st, phone, bob, alice_jid):
    t, ids = stream(bob, alice_jid, "r", 200)
    time.sleep(0.7)
    st.stop_redis(signal.SIGKILL)
    time.sleep(0.8)
    st.start_redis()
    t.join(30)
    exactly_once(phone, ids, "Redis SIGKILLed mid-stream (AOF)")


def kill_prosody(st, phone, bob, alice_jid):
    before = ["p-before-%02d" % i for i in range(30)]
    for mid in before:
        bob.send_message(alice_jid, "message " + mid, id=mid)
    exactly_once(phone, before, "Prosody: messages before the kill", timeout=20)
    st.stop_prosody(signal.SIGKILL)
    st.start_prosody()
    bob2 = st.peer("bob", resource="again")
    # The session reconnects with backoff; messages to its bare JID wait
    # offline meanwhile and are delivered when it is back.
    t, ids = stream(bob2, "alice@" + DOMAIN, "p", 100)
    t.join(30)
    exactly_once(phone, ids, "Prosody SIGKILLed and restarted")


def push_misbehaves(st, phone, bob, alice_jid, token):
    ep = st.pushep
    status, _, _ = st.call("register", {"url": ep.url("hook", "alice"), "kind": "webhook"},
                           token=token)
    ep.script("hook", "alice", [{"reset": True}, {"garbage": True}])
    bob.send_message(alice_jid, "through a bad push service", id="push-1")
    got = ep.wait_log("hook", "alice", 3, timeout=30)
    answers = [r.get("answer") for r in got[:3]]
    tap.ok(status == 200 and answers[:2] == ["reset", "garbage"] and got[2]["status"] == 200,
           "a reset and a garbage answer are retried until delivered", repr(answers))
    exactly_once(phone, ["push-1"], "push endpoint misbehaving")
    ep.script("hook", "alice", [{"hang": True}])
    t0 = time.monotonic()
    bob.send_message(alice_jid, "while it hangs", id="push-2")
    exactly_once(phone, ["push-2"], "push endpoint hanging", timeout=10)
    tap.ok(time.monotonic() - t0 < 5, "a hanging push service does not hold the queue")


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "400")))
    with Stack(push=True) as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        token = st.login("alice")
        alice_jid = st.sessions[token]["jid"]
        status, _, answer = st.call("key", {}, token=token)
        phone = Phone(st, token, answer["key"])
        push_misbehaves(st, phone, bob, alice_jid, token)
        kill_daemon(st, phone, bob, alice_jid)
        kill_redis(st, phone, bob, alice_jid)
        kill_prosody(st, phone, bob, alice_jid)
        for name in ("talkproxyd",):
            tap.ok(st.procs[name].alive(), "%s is still running" % name)
    tap.done()


if __name__ == "__main__":
    main()
