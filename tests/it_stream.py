#!/usr/bin/python3
"""
it_stream.py: the XMPP stream the daemon negotiates itself (client.c,
scram.c, smacks.c) against a real Prosody.
- SCRAM: a login works, a wrong password is refused with 401 and leaves
  no session.
- A server that offers no SCRAM (SCRAM disabled in Prosody): the password
  goes as PLAIN under TLS, login and a message both ways work.
- Stream management acks are batched: 200 messages from a contact, 5 ms
  apart, arrive each once, while Prosody, which asks after every stanza
  unless an answer is outstanding, sent far fewer requests than messages
  (its debug log counts them; answering each at once made it about one
  per message), and it never reports an overflowing queue.
Prints TAP.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import bodies, fetch_queue  # noqa: E402
from harness.stack import DOMAIN, Stack  # noqa: E402

BOB = "bob@" + DOMAIN
BURST = 200
# mod_smacks logs each <r> it sends twice, before and after; count one.
ASK_LINE = "Sending <r> (inside timer, before send)"


def login_status(st, user, password):
    status, _, answer = st.call("login", {"jid": "%s@%s" % (user, DOMAIN),
                                          "password": password})
    return status, answer


def prosody_log(st):
    with open(st.path("prosody.log"), errors="replace") as f:
        return f.read()


def queued(st, token, key):
    status, answer = fetch_queue(st, token)
    return bodies(key, answer) if status == 200 else []


def scram_login():
    with Stack() as st:
        tap.on_failure(st.dump_logs)
        status, answer = login_status(st, "alice", "wrong")
        tap.ok(status == 401, "SCRAM: a wrong password is refused with 401", repr(answer))
        keys = [k for k in st.redis_dump() if k.startswith(b"tp:token:")]
        tap.is_(keys, [], "the refused login leaves no token")
        token = st.login("alice")
        tap.ok(token, "SCRAM: the right password logs in")


def plain_only():
    no_scram = 'disable_sasl_mechanisms = { "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS" }\n'
    with Stack(prosody_extra=no_scram) as st:
        tap.on_failure(st.dump_logs)
        status, _ = login_status(st, "alice", "wrong")
        tap.is_(status, 401, "PLAIN only: a wrong password is refused with 401")
        bob = st.peer("bob")
        token = st.login("alice")
        jid = st.sessions[token]["jid"]
        status, _, _ = st.call("message", {"to": BOB, "body": "over plain"}, token=token)
        tap.ok(status == 200 and bob.wait_message(lambda m: m["body"] == "over plain", 10),
               "PLAIN only: alice logs in and her message reaches bob")
        key = st.call("key", {}, token=token)[2]["key"]
        bob.send_message(jid, "back to alice", id="p1")
        deadline = time.time() + 10
        while time.time() < deadline and "back to alice" not in queued(st, token, key):
            time.sleep(0.2)
        tap.ok("back to alice" in queued(st, token, key),
               "and bob's answer reaches her queue")


def batched_acks():
    # Prosody logs each <r> it sends only at debug.
    with Stack(prosody_debug=True) as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        token = st.login("alice")
        jid = st.sessions[token]["jid"]
        key = st.call("key", {}, token=token)[2]["key"]
        before = prosody_log(st).count(ASK_LINE)
        # Spaced out, so that each message reaches the daemon alone
        # and an unbatched answer would follow every one of them.
        for i in range(BURST):
            bob.send_message(jid, "burst %d" % i, id="b%d" % i)
            time.sleep(0.005)
        want = ["burst %d" % i for i in range(BURST)]
        deadline = time.time() + 30
        got, cursor = [], None
        while time.time() < deadline and len(got) < BURST:
            # A call returns a page of the queue; the cursor acks it.
            status, answer = fetch_queue(st, token, ack=cursor)
            if status != 200:
                break
            got += bodies(key, answer)
            cursor = answer.get("cursor", cursor)
            if not answer["messages"]:
                time.sleep(0.3)
        tap.is_(sorted(got), sorted(want), "%d messages from a contact arrive, each once"
                % BURST)
        time.sleep(0.5)
        text = prosody_log(st)
        asked = text.count(ASK_LINE) - before
        tap.ok(0 < asked <= BURST // 4,
               "Prosody asked for %d acks for %d messages: ours are batched" % (asked, BURST))
        tap.ok("Too many unacked" not in text and "resource-constraint" not in text,
               "Prosody's queue of unacknowledged stanzas never overflowed")
        status, _, _ = st.call("message", {"to": BOB, "body": "still here"}, token=token)
        tap.ok(status == 200 and bob.wait_message(lambda m: m["body"] == "still here", 10),
               "the stream still carries alice's messages")


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    scram_login()
    plain_only()
    batched_acks()
    tap.done()


if __name__ == "__main__":
    main()
