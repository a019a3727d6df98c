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
- A server that falls behind (Prosody stopped with SIGSTOP): alice's
  messages go out until about a thousand are unacknowledged, then wait in
  the daemon (park.c) instead of lengthening the queue until the stream is
  dropped; a waiting request whose caller gave up (504) is never sent;
  once Prosody runs again the one waiting is answered 200, and every
  message answered 200 reaches the contact once, in order, on the same
  stream.
Prints TAP.
"""

import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import bodies, fetch_queue  # noqa: E402
from harness.stack import DOMAIN, Stack, poll  # noqa: E402

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


class Sender(threading.Thread):
    """Sends alice's messages "s0", "s1", ... one after another, until
    told to stop after a count; records each answer's status."""

    def __init__(self, st, token):
        super().__init__(daemon=True)
        self.st, self.token = st, token
        self.statuses = []
        self.stop_at = None
        self.lock = threading.Lock()

    def run(self):
        for i in range(5000):  # bounded: the test stops it long before
            with self.lock:
                if self.stop_at is not None and i >= self.stop_at:
                    return
            status = self.st.call("message", {"to": BOB, "body": "s%d" % i, "id": "s%d" % i},
                                  token=self.token)[0]
            with self.lock:
                self.statuses.append(status)

    def sent(self):
        with self.lock:
            return len(self.statuses)

    def finish(self, count):
        with self.lock:
            self.stop_at = count


def stalled_server():
    # A short request timeout so that one waiting request's caller gives up.
    with Stack(**{"http.request_timeout_ms": 3000}) as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        token = st.login("alice")
        prosody = st.procs["prosody"].pid
        sender = Sender(st, token)
        os.kill(prosody, signal.SIGSTOP)
        try:
            sender.start()
            # Runs until a request waits: then the count stops moving.
            last, still = -1, 0
            deadline = time.time() + 60
            while time.time() < deadline and still < 8:
                time.sleep(0.25)
                n = sender.sent()
                still = still + 1 if n == last else 0
                last = n
            first_wait = sender.sent()
            tap.ok(900 <= first_wait <= 1100,
                   "with the server stopped, %d messages went out before one waited"
                   % first_wait)
            # 2 s of stillness passed: the waiting request's caller gives up
            # at 3 s; the next one waits too.
            gave_up = None
            if poll(lambda: sender.sent() > first_wait, 5):
                gave_up = first_wait
                tap.is_(sender.statuses[gave_up], 504,
                        "the request that waited past its caller's timeout got 504")
            else:
                tap.ok(False, "the waiting request's caller never gave up")
            time.sleep(0.5)
        finally:
            os.kill(prosody, signal.SIGCONT)
        total = (gave_up or first_wait) + 20
        sender.finish(total)
        sender.join(30)
        statuses = sender.statuses
        tap.ok(not sender.is_alive() and len(statuses) == total and
               all(s == 200 for i, s in enumerate(statuses) if i != gave_up),
               "once the server runs again every other request is answered 200 (%d)"
               % len(statuses), repr([s for s in statuses if s != 200][:5]))
        want = ["s%d" % i for i in range(total) if i != gave_up]
        poll(lambda: len([m for m in bob.messages() if m["body"]]) >= len(want), 30)
        got = [m["body"] for m in bob.messages() if m["body"]]
        tap.ok(got == want, "the contact got all %d answered 200, each once, in order, and "
               "not the one whose caller gave up" % len(want),
               "got %d, first difference at %s" % (
                   len(got), next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                                  "the end")))
        log = open(st.path("talkproxyd.log"), errors="replace").read()
        tap.ok("stream down" not in log and "unacknowledged" not in log,
               "alice's stream was never dropped")


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    scram_login()
    plain_only()
    batched_acks()
    stalled_server()
    tap.done()


if __name__ == "__main__":
    main()
