#!/usr/bin/python3
"""
it_daemons.py: several daemon instances sharing one Redis (more sessions
than one process may hold). Every daemon hears every login; a login whose
session lives on another daemon is left to that one (one stream per
account and resource, never two fighting over it), and a full daemon
leaves logins to one with room, answering 503 daemon_full only when every
one is full. Prints TAP.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.stack import (BENCH_PASSWORD, DOMAIN, USERS, Proc, Stack,  # noqa: E402
                           bench_user, builddir)

PER_DAEMON = 2


def login(st, user, password):
    return st.call("login", {"jid": "%s@%s" % (user, DOMAIN), "password": password})


def owners(st):
    keys = st.redis("KEYS", "tp:owner:*") or []
    return sorted(st.redis("GET", k).decode() for k in keys)


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack(extra_users=1, **{"daemon.max_sessions": PER_DAEMON}) as st:
        tap.on_failure(st.dump_logs)
        other = Proc("talkproxyd-b", [os.path.join(builddir(), "talkproxyd"), "-c", st.conf],
                     st.path("talkproxyd-b.out"))
        try:
            for _ in range(100):
                if int(st.redis("PUBSUB", "NUMSUB", "tp:login")[1]) >= 2:
                    break
                time.sleep(0.05)
            bob = st.peer("bob")
            answers = [login(st, "alice", USERS["alice"]) for _ in range(8)]
            jids = {a[2].get("jid") for a in answers}
            tap.ok(all(a[0] == 200 for a in answers) and len(jids) == 1,
                   "8 logins with the same credentials, two daemons: one session",
                   repr([a[0] for a in answers]))
            tap.is_(len(owners(st)), 1, "one owner record for it")
            time.sleep(1.0)
            alices = {p["from"] for p in bob.presences()
                      if p["from"].startswith("alice@") and p["type"] == "available"}
            tap.is_(len(alices), 1, "the contact sees one alice resource, not two fighting")
            status, _, _ = login(st, "alice", "wrong")
            tap.is_(status, 401, "wrong credentials are still refused (not taken for the session)")

            statuses = [login(st, u, USERS[u])[0] for u in ("carol", "dave")]
            tap.is_(statuses, [200, 200], "two more users log in")
            held = owners(st)
            tap.ok(len(held) == 3 and max(held.count(d) for d in set(held)) <= PER_DAEMON,
                   "no daemon holds more than its max_sessions (%d)" % PER_DAEMON, repr(held))
            status, _, answer = login(st, "bob", USERS["bob"])
            tap.is_(status, 200, "a full daemon leaves the login to the one with room")
            status, _, answer = login(st, bench_user(0), BENCH_PASSWORD)
            tap.ok(status == 503 and answer["error"]["code"] == "daemon_full",
                   "when every daemon is full: 503 daemon_full", repr(answer))
        finally:
            tap.is_(other.stop(), 0, "the second daemon stops cleanly")
    tap.done()


if __name__ == "__main__":
    main()
