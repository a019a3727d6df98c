#!/usr/bin/python3
"""
it_handler_sigterm.py: a handler that gets SIGTERM while it waits for the
daemon's answer still sends that whole answer, then exits at once; idle
handlers exit at once. Web servers stop or replace their FastCGI processes
with SIGTERM (lighttpd as it stops; mod_fcgid for idle timeouts, process
lifetimes, restarts and stops, SIGKILL following seconds later; a
supervisor of spawn-fcgi's handlers likewise), so this is what keeps those
moments from cutting an answer short. Prints TAP.

The daemon is held still with SIGSTOP while the request waits in Redis
(BLPOP), so the signal surely lands mid-request; SIGCONT lets it answer.
The message carries an id, and bob must receive it exactly once.

Runs behind $TP_WEB (default lighttpd), or behind each web server named
on the command line (it_handler_sigterm_apache.py names both Apache ones);
behind mod_fcgid it also restarts Apache gracefully mid-request.

It also sends SIGTERM while the handler is blocked writing a large answer
(a 256 KiB messagequeue) because the web server is slow to read it (held
with SIGSTOP). libfcgi does not retry a write() or read() a signal
interrupts, so the handler blocks SIGTERM for the length of a request: the
whole answer must arrive (TP_SIGTERM_MID_WRITE=0 skips this round).
"""

import os
import signal
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.stack import DOMAIN, Stack, children, pid_gone, wait_until  # noqa: E402

BOB = "bob@" + DOMAIN
EXIT_WITHIN = 1.0     # seconds a handler may take to exit when it may
HELD = 0.5            # seconds the daemon is held still after the signal
RESPAWN_TIMEOUT = 10.0


class Call(threading.Thread):
    """One API call in the background, timed."""

    def __init__(self, st, *args, **kwargs):
        super().__init__(daemon=True)
        self.st, self.args, self.kwargs = st, args, kwargs
        self.result = None
        self.done_at = None

    def run(self):
        try:
            self.result = self.st.call(*self.args, **self.kwargs)
        except Exception as e:  # reported by the test
            self.result = ("exception", None, repr(e))
        self.done_at = time.monotonic()


def blocked_in_redis(st, n=1):
    """True while n Redis clients wait in BLPOP: handlers waiting for the
    daemon's answer."""
    waiting = 0
    for line in st.redis("CLIENT", "LIST").splitlines():
        fields = dict(f.split(b"=", 1) for f in line.split() if b"=" in f)
        # cmd is the last command run; flags has b while it blocks.
        waiting += fields.get(b"cmd") == b"blpop" and b"b" in fields.get(b"flags", b"")
    return waiting >= n


def all_gone(pids, timeout):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.01) + 2):
        if all(pid_gone(p) for p in pids) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    return all(pid_gone(p) for p in pids)


def handlers_running(st, timeout=RESPAWN_TIMEOUT):
    """Handler PIDs once there is at least one (mod_fcgid spawns on the
    first request; the calls here make one)."""
    pids = []
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 1):
        pids = [p for p in st.handler_pids() if not pid_gone(p)]
        if pids or time.monotonic() > deadline:
            break
        st.call(None, None, method="GET", path="/health", content_type=None)
        time.sleep(0.1)
    return pids


def two_handlers(st, token):
    """mod_fcgid spawns a process only when a request finds none free:
    two requests at once, while the daemon is held, make two."""
    daemon = st.daemon_pid()
    os.kill(daemon, signal.SIGSTOP)
    try:
        calls = [Call(st, "roster", {}, token=token) for _ in range(2)]
        for c in calls:
            c.start()
        try:
            wait_until(lambda: blocked_in_redis(st, 2), RESPAWN_TIMEOUT,
                       "two handlers waiting in BLPOP")
        except Exception:
            pass
    finally:
        os.kill(daemon, signal.SIGCONT)
    for c in calls:
        c.join(15)
    return [c.result[0] if c.result else None for c in calls]


def message_mid_signal(st, token, bob, kind, label, deliver):
    """Sends a message while the daemon is held, runs deliver() (which
    signals someone) once the handler waits in BLPOP, then lets the daemon
    go. Returns the handler PIDs seen before the signal and the moment the
    daemon was let go."""
    daemon = st.daemon_pid()
    msg_id = "sigterm-%s-%s" % (label.replace(" ", "-"), uuid.uuid4().hex[:8])
    body = "%s: %s %s" % (kind, label, uuid.uuid4().hex)
    os.kill(daemon, signal.SIGSTOP)
    try:
        call = Call(st, "message", {"to": BOB, "body": body, "id": msg_id}, token=token)
        call.start()
        waiting = True
        try:
            wait_until(lambda: blocked_in_redis(st), 10, "a handler waiting in BLPOP")
        except Exception:
            waiting = False
        tap.ok(waiting, "%s, %s: the request waits for the held daemon" % (kind, label))
        pids = [p for p in st.handler_pids() if not pid_gone(p)]
        deliver(pids)
        time.sleep(HELD)
        tap.ok(call.is_alive(), "%s, %s: no answer while the daemon is held" % (kind, label),
               repr(call.result))
    finally:
        os.kill(daemon, signal.SIGCONT)
    let_go = time.monotonic()
    call.join(15)
    status, _, answer = call.result if call.result else (None, None, "no answer in 15 s")
    tap.is_((status, answer), (200, {"id": msg_id}),
            "%s, %s: the answer arrives whole: 200 with the message id" % (kind, label))
    got = bob.wait_message(lambda m: m["body"] == body, 10)
    time.sleep(0.3)
    copies = [m for m in bob.messages() if m["body"] == body]
    tap.ok(got is not None and len(copies) == 1,
           "%s, %s: bob receives the message once" % (kind, label), repr(copies))
    return pids, call, let_go


def web_readers(st, kind):
    """The processes that read the handlers' answers: lighttpd, or every
    child of Apache's parent process (its workers; mod_fcgid's process
    manager too, which does no harm held for a second)."""
    if kind == "lighttpd":
        return [st.procs["lighttpd"].pid]
    return children(st.apache.proc.pid)


def large_answer_mid_write(st, token, bob, kind):
    """SIGTERM while the busy handler is blocked writing a large answer."""
    for i in range(60):
        bob.send_message("alice@" + DOMAIN, "%03d %s" % (i, "x" * 4000), id="big-%d" % i)

    def queued():
        status, _, answer = st.call("messagequeue", {}, token=token)
        return status == 200 and len(answer.get("messages", [])) >= 40
    wait_until(queued, 20, "alice's queue to hold 256 KiB")
    want = st.call("messagequeue", {}, token=token)
    daemon = st.daemon_pid()
    readers = web_readers(st, kind)
    os.kill(daemon, signal.SIGSTOP)
    try:
        call = Call(st, "messagequeue", {}, token=token)
        call.start()
        wait_until(lambda: blocked_in_redis(st), 10, "a handler waiting in BLPOP")
        busy = [p for p in st.handler_pids() if not pid_gone(p)]
        for p in readers:
            os.kill(p, signal.SIGSTOP)
        try:
            os.kill(daemon, signal.SIGCONT)
            time.sleep(1.0)  # the handler fills the socket and blocks
            for p in busy:
                os.kill(p, signal.SIGTERM)
            time.sleep(HELD)
        finally:
            for p in readers:
                os.kill(p, signal.SIGCONT)
    finally:
        os.kill(daemon, signal.SIGCONT)
    call.join(20)
    got = call.result or ("no answer in 20 s", None, None)
    tap.ok(got[0] == 200 and got[2] == want[2],
           "%s: SIGTERM while the answer is being written: the whole 256 KiB arrives" % kind,
           "got %r, %s" % (got[0], "%d bytes" % len(got[2]) if isinstance(got[2], (bytes, str))
                           else type(got[2]).__name__))


def run(kind):
    failed_before = tap.failed()
    with Stack(web=kind) as st:
        bob = st.peer("bob")
        token = st.login("alice")

        # 1. SIGTERM to every handler while one of them waits for the daemon.
        if kind == "apache-fcgid":
            tap.is_(two_handlers(st, token), [200, 200],
                    "%s: two calls at once are answered (by two processes)" % kind)
        handlers_running(st)
        seen = {}

        def term_all(pids):
            seen["pids"] = pids
            for p in pids:
                os.kill(p, signal.SIGTERM)
            # Idle handlers exit at once; the busy one stays until it has
            # answered. (A little time for a wrong exit of that one, too.)
            deadline = time.monotonic() + HELD / 2
            for _ in range(int(HELD / 0.01)):
                if sum(not pid_gone(p) for p in pids) <= 1 or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            time.sleep(0.1)
            seen["alive"] = [p for p in pids if not pid_gone(p)]

        pids, call, let_go = message_mid_signal(st, token, bob, kind, "SIGTERM to every handler",
                                                term_all)
        want = 1 if kind == "apache-proxy" else 2
        tap.ok(len(seen.get("pids", [])) >= want,
               "%s: %d handler%s ran when the signal came" % (kind, want, "s" * (want > 1)),
               repr(seen))
        tap.is_(len(seen.get("alive", [])), 1,
                "%s: within %.1f s of SIGTERM only the handler with the request runs"
                % (kind, HELD))
        busy = seen.get("alive", [])
        gone = all_gone(busy, EXIT_WITHIN)
        tap.ok(gone and call.done_at is not None,
               "%s: the busy handler exits within %.1f s of its answer" % (kind, EXIT_WITHIN),
               "answer after %.3f s, handler %r still there"
               % ((call.done_at or 0) - let_go, [p for p in busy if not pid_gone(p)]))

        if kind == "apache-proxy":
            tap.diag("%s: nothing respawns a handler spawn-fcgi started; no more rounds" % kind)
        else:
            # 2. The web server replaces the handlers; the API works again.
            status, _, answer = st.call("roster", {}, token=token)
            tap.ok(status == 200 and "contacts" in answer,
                   "%s: after the handlers exit the next call works" % kind, repr((status, answer)))
            fresh = handlers_running(st)
            tap.ok(fresh and not set(fresh) & set(pids),
                   "%s: new handler processes serve it" % kind, repr((pids, fresh)))

        if kind == "apache-fcgid":
            # 3. mod_fcgid's own kills: a graceful restart while a request
            # waits. mod_fcgid stops every handler with SIGTERM (SIGKILL 8 s
            # later); Apache 2.4.71 with mod_fcgid 2.3.9 was seen to wait
            # for the request in flight first (new requests wait too).
            apache = st.apache.proc

            def graceful(_pids):
                os.kill(apache.pid, signal.SIGUSR1)
            pids, call, let_go = message_mid_signal(
                st, token, bob, kind, "graceful restart of Apache", graceful)
            tap.ok(all_gone(pids, 3.0),
                   "%s: the handlers of before the restart are gone" % kind,
                   repr([p for p in pids if not pid_gone(p)]))
            status, _, answer = st.call("roster", {}, token=token)
            tap.ok(status == 200 and "contacts" in answer,
                   "%s: after the graceful restart the next call works" % kind,
                   repr((status, answer)))

        if os.environ.get("TP_SIGTERM_MID_WRITE", "1") == "1":
            if kind == "apache-proxy":
                tap.skip("%s: SIGTERM while the answer is being written" % kind,
                         "its only handler is gone")
            else:
                large_answer_mid_write(st, token, bob, kind)

        tap.is_(st.stop_web(), [], "%s: every handler exits when the web server stops" % kind)
        if tap.failed() > failed_before:
            st.dump_logs()  # while they exist: the next server gets new ones


def main(kinds=None):
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    for kind in kinds or [os.environ.get("TP_WEB") or "lighttpd"]:
        run(kind)
    tap.done()


if __name__ == "__main__":
    main(sys.argv[1:])
