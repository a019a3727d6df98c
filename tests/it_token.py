#!/usr/bin/python3
"""
it_token.py: login with an OAuth token instead of a password, against
Debian's ejabberd with a token it issues (SASL X-OAUTH2 over libstrophe's
raw mode): the session works both ways, survives a daemon restart, keeps
the token out of Redis and the logs; wrong, foreign and unoffered-mechanism
tokens answer 401; password login keeps working on the same build. Prints
TAP.
"""

import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import open_item, wait_queue  # noqa: E402
from harness.stack import DOMAIN, Stack  # noqa: E402

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN


def token_login(st, token, jid=ALICE, **extra):
    body = {"jid": jid, "token": token}
    body.update(extra)
    t0 = time.monotonic()
    status, _, answer = st.call("login", body)
    return status, answer, time.monotonic() - t0


def check_refusals(st, good):
    status, answer, took = token_login(st, "not-a-token-ejabberd-issued")
    tap.ok(status == 401, "a wrong token answers 401 (%.1f s)" % took, repr(answer))
    bobs = st.ejabberd.issue_token(BOB)
    status, answer, _ = token_login(st, bobs, jid=ALICE, resource="stolen")
    tap.ok(status == 401, "another account's token does not log in as alice", repr(answer))
    status, answer, _ = token_login(st, good, mechanism="OAUTHBEARER", resource="ob")
    tap.ok(status == 401, "a mechanism the server does not offer answers 401",
           repr(answer))


def check_session(st, token_answer, bob):
    tok = token_answer["token"]
    status, _, key = st.call("key", {}, token=tok)
    bob.send_message(token_answer["jid"], "to the token session", id="t1")
    answer = wait_queue(st, tok, 1)
    bodies = [open_item(key["key"], m).get("body") for m in answer.get("messages", [])]
    tap.is_(bodies, ["to the token session"], "incoming messages reach a token session")
    status, _, _ = st.call("message", {"to": BOB, "body": "from a token session", "id": "t2"},
                           token=tok)
    got = bob.wait_message(lambda m: m["id"] == "t2")
    tap.ok(status == 200 and got and got["body"] == "from a token session",
           "a token session sends messages")


def check_restart(st, tok, bob, jid):
    st.stop_daemon(signal.SIGTERM)
    st.start_daemon()
    # A message call answers 200 only once the stream is up again.
    ok = False
    for i in range(100):
        status, _, answer = st.call("message", {"to": BOB, "body": "back %d" % i}, token=tok)
        if status == 200:
            ok = True
            break
        time.sleep(0.2)
    tap.ok(ok, "the token session is restored and online after a daemon restart")
    bob.send_message(jid, "after the restart", id="t3")
    status, _, key = st.call("key", {}, token=tok)
    answer = wait_queue(st, tok, 2, timeout=20)
    bodies = [open_item(key["key"], m).get("body") for m in answer.get("messages", [])]
    tap.ok("after the restart" in bodies,
           "the restored session logged in again with the token", repr(bodies))


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack(xmpp="ejabberd") as st:
        tap.on_failure(st.dump_logs)
        if not st.ejabberd.oauth:
            tap.bail_out("ejabberd cannot issue tokens: install erlang-p1-oauth2")
        good = st.ejabberd.issue_token(ALICE)
        bob = st.peer("bob")
        status, answer, took = token_login(st, good)
        tap.ok(status == 200 and answer.get("jid", "").startswith(ALICE + "/"),
               "login with an ejabberd token answers 200 (%.1f s)" % took, repr(answer))
        status, explicit, _ = token_login(st, good, mechanism="X-OAUTH2", resource="second")
        tap.ok(status == 200 and explicit["jid"] == ALICE + "/second",
               "login naming X-OAUTH2 works too", repr(explicit))
        check_session(st, answer, bob)
        check_refusals(st, good)
        pw = st.login("carol")
        tap.ok(pw, "password login works on the same build and server")
        check_restart(st, answer["token"], bob, answer["jid"])
        dump = st.redis_bytes()
        tap.ok(good.encode() not in dump, "Redis and its AOF never hold the token")
        with open(st.path("talkproxyd.log"), "rb") as f:
            tap.ok(good.encode() not in f.read(), "the daemon's log never holds the token")
    tap.done()


if __name__ == "__main__":
    main()
