#!/usr/bin/python3
"""
it_handler_restart.py: the FastCGI handler keeps nothing, so killing
handler processes between two calls loses nothing: lighttpd sends the next
request to a live handler or respawns them, and the same token, and the
same message ids, keep working. Prints TAP.

lighttpd keeps its backends' state in whole seconds: it does not respawn a
backend within the second it died (so a crashing program cannot spin), it
sets aside for a second or two a backend it could not connect to, and it
answers 503 while every backend is down. So after killing all handlers the
test waits, bounded, for the new processes before its next call, and each
disruption starts from a settled pool (SETTLE seconds after the last kill).
"""

import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sender import Sender  # noqa: E402
from harness.stack import DOMAIN, Stack, kill_and_wait, pid_gone  # noqa: E402

ROUNDS = 3
RESPAWN_TIMEOUT = 10.0
SETTLE = 3.0
BOB = "bob@" + DOMAIN


def respawned(st, killed, want):
    """Waits (bounded) until lighttpd runs want handlers none of which was
    killed. Returns their PIDs, or what it found at the deadline."""
    deadline = time.monotonic() + RESPAWN_TIMEOUT
    pids = []
    for _ in range(int(RESPAWN_TIMEOUT / 0.05) + 1):
        pids = [p for p in st.handler_pids() if not pid_gone(p)]
        if len(pids) >= want and not set(pids) & set(killed):
            return pids
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return pids


class Pool:
    """The handler processes, and when the last of them was killed."""

    def __init__(self, st):
        self.st = st
        self.last_kill = time.monotonic() - SETTLE

    def kill(self, pids):
        self.last_kill = time.monotonic()
        return kill_and_wait(pids, 5)

    def settle(self):
        """Waits until SETTLE seconds have passed since the last kill and
        both handlers run. Returns their PIDs."""
        wait = SETTLE - (time.monotonic() - self.last_kill)
        if wait > 0:
            time.sleep(wait)
        return respawned(self.st, [], 2)


def roster_works(st, token):
    status, _, answer = st.call("roster", {}, token=token)
    return status == 200 and isinstance(answer, dict) and "contacts" in answer, (status, answer)


def kill_storm(st, bob, token, jid, pool):
    """Every handler killed again and again while a client sends."""
    senders = [Sender(st, token, BOB, tag="storm%d" % i, retry_pause=0.1, limit=20000)
               for i in range(2)]
    for sender in senders:
        sender.start()
    kills = 0
    for _ in range(5):
        killed = pool.settle()[:2]
        time.sleep(0.3)  # requests in flight when the kill lands
        if pool.kill(killed):
            kills += 1
        respawned(st, killed, 1)
    time.sleep(1.0)
    for sender in senders:
        sender.stop.set()
    for sender in senders:
        sender.join(60)
    results = [sender.results() for sender in senders]
    ok = [m for r in results for m in r[0]]
    failed = [m for r in results for m in r[1]]
    tap.ok(kills == 5 and not any(sender.is_alive() for sender in senders),
           "every handler killed 5 times while two clients kept sending "
           "(%d messages, %d retries after an error)" % (len(ok), sum(r[2] for r in results)))
    tap.ok(len(ok) >= 10 and not failed,
           "every message got a 2xx in the end", repr(failed[:3]))
    for _, body in [r[0][-1] for r in results if r[0]]:
        bob.wait_message(lambda m: m["body"] == body, 10)
    time.sleep(1.0)
    got = {}
    for m in bob.messages():
        if m["body"].startswith("storm") and m["from"] == jid:
            got[m["body"]] = got.get(m["body"], 0) + 1
    wrong = [(i, got.get(b, 0)) for i, b in ok if got.get(b, 0) != 1]
    tap.ok(not wrong, "each of the %d answered messages reached bob exactly once" % len(ok),
           repr(wrong[:5]))
    good, result = roster_works(st, token)
    tap.ok(good, "the session is still there", repr(result))


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack() as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        token = st.login("alice")
        jid = st.sessions[token]["jid"]
        handlers = st.handler_pids()
        tap.is_(len(handlers), 2, "lighttpd runs two handler processes (max-procs 2)")
        sent = []
        pool = Pool(st)
        for n in range(1, ROUNDS + 1):
            one = pool.settle()[:1]
            tap.ok(one and pool.kill(one), "round %d: one handler is killed" % n, repr(one))
            results = [roster_works(st, token) for _ in range(3)]
            tap.ok(all(good for good, _ in results),
                   "round %d: while one handler is dead the next calls all work" % n,
                   repr([r for good, r in results if not good]))

            killed = pool.settle()
            tap.ok(len(killed) == 2 and pool.kill(killed),
                   "round %d: every handler is killed" % n, repr(killed))
            handlers = respawned(st, killed, 1)
            tap.ok(handlers, "round %d: lighttpd starts new handlers" % n,
                   "killed %r, now %r" % (killed, st.handler_pids()))
            good, result = roster_works(st, token)
            tap.ok(good, "round %d: the next call with the same token works" % n, repr(result))

            msg_id = "restart-%d-%s" % (n, uuid.uuid4().hex[:8])
            body = "message from round %d %s" % (n, uuid.uuid4().hex)
            status, _, answer = st.call("message", {"to": BOB, "body": body, "id": msg_id},
                                        token=token)
            tap.is_((status, answer), (200, {"id": msg_id}),
                    "round %d: a message answers 200 with its id" % n)
            sent.append((msg_id, body))

            killed = pool.settle()
            pool.kill(killed)
            respawned(st, killed, 1)
            status, _, answer = st.call("message", {"to": BOB, "body": body, "id": msg_id},
                                        token=token)
            tap.is_((status, answer), (200, {"id": msg_id}),
                    "round %d: after new handlers the same id answers 200 again" % n)

        for msg_id, body in sent:
            bob.wait_message(lambda m: m["body"] == body, 10)
        time.sleep(1.0)  # room for a wrongly repeated message to arrive
        for msg_id, body in sent:
            copies = [m for m in bob.messages() if m["body"] == body]
            tap.ok(len(copies) == 1 and copies[0]["from"] == jid,
                   "bob received message %s exactly once, from alice" % msg_id, repr(copies))
        kill_storm(st, bob, token, jid, pool)
        status, _, answer = st.call("logout", {}, token=token)
        tap.is_((status, answer), (200, {}), "logout after all the restarts answers 200 {}")
        # lighttpd sends its backends SIGTERM as it stops; one that stays
        # would keep serving a stale configuration (and its socket).
        tap.is_(st.stop_web(), [], "every handler exits within 3 s when lighttpd stops")
        tap.done()


if __name__ == "__main__":
    main()
