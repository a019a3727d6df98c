#!/usr/bin/python3
"""
bench/restore.py: how long talkproxyd takes to log in N sessions, and how
long a restarted daemon takes to restore them all from their sealed records
(issue 4; issue 6 figure 6). Same real parts as the tests: Redis, Prosody
(accounts written directly, SCRAM-SHA-1, 4096 iterations), talkproxyd.
Logins are published straight onto the bus, as the handlers would, so the
figure is the daemon's, not the web server's. Prints a table; fails nothing.

    cd tests && /usr/bin/python3 ../bench/restore.py [N ...] [--runs R]
"""

import base64
import json
import os
import re
import signal
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from harness.stack import (BENCH_PASSWORD, DOMAIN, Stack,  # noqa: E402
                           bench_user)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def login_all(st, n, timeout):
    """Publishes n login requests on tp:login and waits for every reply."""
    rids = []
    for i in range(n):
        rid = os.urandom(16).hex()
        env = {"v": 2, "call": "login", "rid": rid, "th": "", "peer": "bench",
               "deadline": int((time.time() + timeout) * 1000),
               "rk": base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode(),
               "body": {"jid": "%s@%s" % (bench_user(i), DOMAIN), "password": BENCH_PASSWORD}}
        rids.append(rid)
        st.redis("PUBLISH", "tp:login", json.dumps(env))
    deadline = time.time() + timeout
    for rid in rids:
        left = max(0.1, deadline - time.time())
        if not st.redis("BLPOP", "tp:reply:" + rid, "%.1f" % left):
            raise SystemExit("login %s got no reply in time" % rid)


def online_count(st, offset):
    with open(st.path("talkproxyd.log"), errors="replace") as f:
        f.seek(offset)
        return len(re.findall(r" online as ", f.read()))


def restore_once(st, n, timeout):
    st.stop_daemon(signal.SIGKILL)
    offset = os.path.getsize(st.path("talkproxyd.log"))
    t0 = time.monotonic()
    st.start_daemon()
    deadline = t0 + timeout
    while online_count(st, offset) < n:
        if time.monotonic() > deadline:
            raise SystemExit("only %d of %d sessions restored" % (online_count(st, offset), n))
        time.sleep(0.02)
    return time.monotonic() - t0


def bench(n, runs):
    with Stack(web=False, extra_users=n, **{"log.level": "info"}) as st:
        pid = st.daemon_pid()
        before = rss_kib(pid)
        t0 = time.monotonic()
        login_all(st, n, timeout=120)
        login_s = time.monotonic() - t0
        per_session = (rss_kib(pid) - before) / n
        restores = [restore_once(st, n, timeout=120) for _ in range(runs)]
        return login_s, per_session, statistics.median(restores), restores


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = 3
    if "--runs" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1])
        args = [a for a in args if a != str(runs)]
    sizes = [int(a) for a in args] or [100, 500]
    print("%6s %10s %12s %16s %8s" % ("N", "login s", "RSS/session", "restore s (med)", "ratio"))
    for n in sizes:
        login_s, kib, restore_s, all_runs = bench(n, runs)
        print("%6d %10.2f %9.1f KiB %16.2f %8.2f   runs: %s" % (
            n, login_s, kib, restore_s, restore_s / login_s,
            " ".join("%.2f" % r for r in all_runs)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
