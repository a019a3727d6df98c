#!/usr/bin/python3
"""
it_tls.py: the daemon verifies the XMPP server's certificate. Against the
CA the test run created, login works; with a CA store that does not hold
that CA (the system's), the same login is refused with 502 xmpp_error and
no session or token is left behind. Prints TAP.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.stack import DOMAIN, Stack  # noqa: E402

SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack(**{"xmpp.cafile": SYSTEM_CA}) as st:
        tap.on_failure(st.dump_logs)
        status, _, answer = st.call("login", {"jid": "alice@" + DOMAIN,
                                              "password": "alice-pw"})
        code = answer.get("error", {}).get("code") if isinstance(answer, dict) else None
        tap.is_((status, code), (502, "xmpp_error"),
                "a server certificate from a CA we do not trust fails login with 502")
        keys = [k for k in st.redis_dump() if k.startswith(b"tp:token:")]
        tap.is_(keys, [], "the refused login leaves no token in Redis")
        tap.ok("certificate" in st.daemon_log(),
               "the daemon log says the certificate was rejected")
        tap.ok("alice-pw" not in st.daemon_log(),
               "the daemon log does not contain the password")
    tap.done()


if __name__ == "__main__":
    main()
