#!/usr/bin/python3
"""
it_nodaemon.py: what clients see when the session daemon is full or gone:
503 daemon_full past daemon.max_sessions, and an immediate 503 no_daemon
(PUBLISH reached nobody) instead of a timeout once it has stopped.
Prints TAP.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.stack import DOMAIN, Stack  # noqa: E402

FAST = 1.0  # seconds: "immediately", with room for a slow machine


def error_code(answer):
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return answer["error"].get("code")
    return None


def timed(fn):
    t0 = time.monotonic()
    result = fn()
    return result, time.monotonic() - t0


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack(**{"daemon.max_sessions": 1}) as st:
        tap.on_failure(st.dump_logs)

        status, _, answer = st.call("login", {"jid": "alice@" + DOMAIN, "password": "alice-pw"})
        tap.is_(status, 200, "with max_sessions 1 the first login answers 200")
        token = answer.get("token") if isinstance(answer, dict) else None

        status, _, answer = st.call("login", {"jid": "carol@" + DOMAIN, "password": "carol-pw"})
        tap.is_((status, error_code(answer)), (503, "daemon_full"),
                "a second user's login answers 503 daemon_full")
        if token:
            status, _, _ = st.call("roster", {}, token=token)
            tap.is_(status, 200, "the first session still works after a login was refused")

        code = st.stop_daemon()
        tap.is_(code, 0, "talkproxyd exits with status 0 on SIGTERM")

        (status, _, answer), took = timed(lambda: st.call("roster", {}, token=token or "A" * 43))
        tap.is_((status, error_code(answer)), (503, "no_daemon"),
                "with no daemon a session call answers 503 no_daemon")
        tap.ok(took < FAST, "it answers in under %.0f s" % FAST, "took %.3f s" % took)

        (status, _, answer), took = timed(lambda: st.call(
            "login", {"jid": "dave@" + DOMAIN, "password": "dave-pw"}))
        tap.is_((status, error_code(answer)), (503, "no_daemon"),
                "with no daemon a login answers 503 no_daemon")
        tap.ok(took < FAST, "it answers in under %.0f s" % FAST, "took %.3f s" % took)

        (status, _, answer), took = timed(lambda: st.call(
            None, None, method="GET", path="/health", content_type=None))
        tap.is_(status, 503, "with no daemon health answers 503")
        tap.is_(answer, {"redis": "ok", "daemons": 0}, "health reports redis ok and 0 daemons")
        tap.ok(took < FAST, "it answers in under %.0f s" % FAST, "took %.3f s" % took)
        tap.done()


if __name__ == "__main__":
    main()
