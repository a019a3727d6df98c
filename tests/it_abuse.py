#!/usr/bin/python3
"""
it_abuse.py: what an attacker can do through the API. Login attempts are
rate-limited per client address and per JID (429 with Retry-After, until
the window ends); forged, truncated, replayed and logged-out tokens reach
no session; a body over the limit is refused by the handler without being
read whole; and through all of it another user's session keeps working.
Prints TAP.
"""

import os
import secrets
import base64
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.stack import DOMAIN, USERS, Stack, children  # noqa: E402

WINDOW = 4
PER_ADDRESS = 12
FAILURES_PER_JID = 3


def login(st, user, password):
    return st.call("login", {"jid": "%s@%s" % (user, DOMAIN), "password": password})


def check_jid_limit(st):
    codes = [login(st, "carol", "wrong")[0] for _ in range(FAILURES_PER_JID)]
    tap.is_(codes, [401] * FAILURES_PER_JID, "wrong passwords answer 401 up to the limit")
    status, headers, answer = login(st, "carol", USERS["carol"])
    retry = int(headers.get("retry-after", "0"))
    tap.ok(status == 429 and answer["error"]["code"] == "rate_limited",
           "after %d failures even the right password waits: 429" % FAILURES_PER_JID,
           repr(answer))
    tap.ok(1 <= retry <= WINDOW, "429 says when to retry (Retry-After: %d)" % retry)
    status, _, _ = login(st, "dave", USERS["dave"])
    tap.is_(status, 200, "another JID from the same address still logs in")
    time.sleep(retry + 0.5)
    status, _, _ = login(st, "carol", USERS["carol"])
    tap.is_(status, 200, "after Retry-After the JID logs in again")


def check_address_limit(st):
    time.sleep(WINDOW + 0.5)  # a fresh window for this address
    statuses = [login(st, "dave", USERS["dave"])[0] for _ in range(PER_ADDRESS)]
    tap.is_(statuses, [200] * PER_ADDRESS,
            "%d logins from one address pass" % PER_ADDRESS)
    status, headers, answer = login(st, "dave", USERS["dave"])
    tap.ok(status == 429 and "retry-after" in headers,
           "the next one from that address is refused with 429", repr(answer))


def check_tokens(st, alice_tok, bob_tok):
    forged = [base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
              for _ in range(200)]
    statuses = {st.call("roster", {}, token=t)[0] for t in forged}
    tap.is_(statuses, {401}, "200 random well-formed tokens reach no session")
    variants = [alice_tok[:-1], alice_tok + "A", alice_tok.upper(), alice_tok[1:] + alice_tok[0],
                st.redis("KEYS", "tp:token:*")[0].decode().split(":", 2)[2]]
    statuses = [st.call("roster", {}, token=t)[0] for t in variants]
    tap.is_(statuses, [401] * len(variants),
            "a token cut, extended, re-cased, rotated, or its Redis hash reach nothing")
    sid = st.redis("GET", "tp:token:" + variants[-1])
    status, _, _ = st.call("roster", {}, token=(sid or b"").decode())
    tap.is_(status, 401, "a session id is not a token")
    status, _, answer = st.call("roster", {"token": alice_tok},
                                headers={"Authorization": "Bearer " + bob_tok})
    mine = {c["jid"] for c in answer.get("contacts", [])}
    tap.ok(status == 200 and "bob@" + DOMAIN not in mine,
           "the Authorization header decides whose session a call reaches")
    status, _, _ = st.call("logout", {}, token=alice_tok)
    statuses = [st.call(c, {}, token=alice_tok)[0] for c in ("roster", "key", "messagequeue")]
    tap.ok(status == 200 and statuses == [401] * 3, "a logged-out token reaches nothing")


def check_big_body(st):
    """A body over http.max_body (under the web server's own cap) whose
    end never comes: the handler answers 413 after reading max_body + 1
    bytes, without waiting for the rest."""
    s = socket.create_connection(("127.0.0.1", st.ports["lighttpd"]), timeout=10)
    try:
        head = ("POST /v1/message HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                "Content-Length: 120000\r\n\r\n")
        s.sendall(head.encode())
        s.sendall(b"x" * 70000)
        t0 = time.monotonic()
        data = s.recv(4096)
        took = time.monotonic() - t0
    finally:
        s.close()
    tap.ok(data.startswith(b"HTTP/1.1 413"),
           "a body over the limit answers 413 before it has all arrived",
           data[:80])
    tap.ok(took < 5, "without waiting for the rest of the body (%.2f s)" % took)


def tcp_listen_inodes():
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A":  # LISTEN
                    inodes.add(cols[9])
    return inodes


def socket_inodes(pid):
    out = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(target[8:-1])
    return out


def check_fastcgi_socket(st):
    """The handlers listen on a Unix socket only the web server's user may
    use, never on a TCP port (libfcgi trusts whatever connects)."""
    handlers = children(st.procs["lighttpd"].pid)
    tcp = tcp_listen_inodes()
    exposed = [pid for pid in handlers if socket_inodes(pid) & tcp]
    tap.ok(handlers and not exposed, "no FastCGI handler listens on a TCP port",
           "handlers %r, on TCP: %r" % (handlers, exposed))
    socks = [os.path.join(st.path("run"), n) for n in os.listdir(st.path("run"))
             if n.startswith("talkproxy-fcgi.sock")]
    modes = {oct(os.stat(p).st_mode & 0o777) for p in socks}
    run_mode = os.stat(st.path("run")).st_mode & 0o777
    tap.ok(socks and run_mode & 0o007 == 0,
           "the FastCGI sockets live in a directory others cannot enter (%s, sockets %s)"
           % (oct(run_mode), sorted(modes)))


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    limits = {"http.login_window": WINDOW, "http.login_per_address": PER_ADDRESS,
              "http.login_failures_per_jid": FAILURES_PER_JID}
    with Stack(**limits) as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        alice_tok = st.login("alice")
        bob_tok = st.login("bob", resource="api")
        check_jid_limit(st)
        check_address_limit(st)
        check_tokens(st, alice_tok, bob_tok)
        check_big_body(st)
        check_fastcgi_socket(st)
        status, _, _ = st.call("message", {"to": "alice@" + DOMAIN, "body": "still here"},
                               token=bob_tok)
        tap.is_(status, 200, "a session running alongside is untouched")
        bob.close()
    tap.done()


if __name__ == "__main__":
    main()
