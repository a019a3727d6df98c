#!/usr/bin/python3
"""
it_idle.py: the original's idle timers, with second-scale values: no client
request for away_after seconds sets presence away, xa_after more sets xa,
logout_after more ends the session. A request in between makes the user
available again. Prints TAP.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.stack import DOMAIN, Stack  # noqa: E402

AWAY, XA, LOGOUT = 2, 2, 3


def shows_of(peer, jid, since):
    return [p["show"] for p in peer.presences()
            if p["from"] == jid and p["at"] >= since and p["type"] == "available"]


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack(**{"idle.away_after": AWAY, "idle.xa_after": XA,
                  "idle.logout_after": LOGOUT}) as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        t0 = time.time()
        status, _, answer = st.call("login", {"jid": "alice@" + DOMAIN,
                                              "password": "alice-pw"})
        tap.is_(status, 200, "alice logs in")
        token, jid = answer["token"], answer["jid"]

        away = bob.wait_presence(lambda p: p["from"] == jid and p["show"] == "away", AWAY + 3)
        tap.ok(away is not None and away["at"] - t0 >= AWAY - 0.5,
               "after %d s without a request bob sees alice away" % AWAY, repr(away))

        status, _, _ = st.call("roster", {}, token=token)
        t1 = time.time()
        back = bob.wait_presence(lambda p: p["from"] == jid and p["show"] is None
                                 and p["at"] >= t1 - 0.2, 3)
        tap.ok(status == 200 and back is not None,
               "a request makes alice available again", repr(bob.presences()[-3:]))

        xa = bob.wait_presence(lambda p: p["from"] == jid and p["show"] == "xa", AWAY + XA + 3)
        tap.ok(xa is not None and xa["at"] - t1 >= AWAY + XA - 0.5,
               "after %d s more bob sees alice xa" % (AWAY + XA), repr(xa))
        since = back["at"] + 0.001 if back else t1
        tap.is_(shows_of(bob, jid, since)[:2], ["away", "xa"],
                "after being available again she went away first, then xa")

        gone = bob.wait_presence(lambda p: p["from"] == jid and p["type"] == "unavailable"
                                 and p["at"] >= t1, LOGOUT + 4)
        tap.ok(gone is not None and gone["at"] - t1 >= AWAY + XA + LOGOUT - 0.5,
               "after %d s more the session ends and bob sees alice leave" % LOGOUT,
               repr(gone))
        status, _, answer = st.call("roster", {}, token=token)
        tap.is_((status, answer.get("error", {}).get("code")), (401, "unknown_token"),
                "the idle session's token is no longer accepted")
        tap.ok("ends: idle" in st.daemon_log(), "the daemon logs why the session ended")
    tap.done()


if __name__ == "__main__":
    main()
