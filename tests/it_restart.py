#!/usr/bin/python3
"""
it_restart.py: sessions outlive the daemon. Session records and user keys
are sealed with the master key in Redis (a dump holds no password, token or
message text; a record copied under another session's key does not open).
The daemon is stopped with SIGTERM, and separately killed with SIGKILL, with
sessions logged in; a new daemon (another instance id) adopts them: the
same tokens work, push registrations and keys are kept, and messages sent
while no daemon ran reach the queue once. The new daemon resumes the old
daemon's XMPP streams (XEP-0198, from what the sealed record keeps):
contacts never see the users go offline, and the roster again shows
contacts' presence (asked for with probes, as the server no longer sends
it unasked). With two daemon instances, the survivor adopts (and resumes)
the sessions of the one killed. A session whose stream the server forgot
logs in anew, and contacts see it online again. Also: the daemon refuses a
master key file others may read. Prints TAP.
"""

import base64
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import bodies, open_item, wait_queue  # noqa: E402
from harness.stack import (DOMAIN, Proc, Stack, StackError, builddir,  # noqa: E402
                           poll, token_hashes)

SECRET = "the eagle lands at noon 7f3a"


def queue_bodies(st, token, key, count, timeout=15):
    return bodies(key, wait_queue(st, token, count, timeout=timeout) or {})


def online_again(bob, jid, since, timeout=15):
    return bob.wait_presence(lambda p: p["from"] == jid and p["type"] == "available"
                             and p["at"] >= since, timeout)


def went_offline(bob, jid, since):
    return [p for p in bob.presences() if p["from"] == jid
            and p["type"] == "unavailable" and p["at"] >= since]


def sees_online(st, token, contact, timeout=10):
    """Polls roster (bounded) until contact has a resource shown."""
    def shown():
        status, _, answer = st.call("roster", {}, token=token)
        return status == 200 and any(c.get("jid") == contact and c.get("sessions")
                                     for c in answer.get("contacts", []))
    return poll(shown, timeout)


def resumed(st, label, jid, bob, since, log_from):
    """The new daemon resumed jid's stream: the server kept it, bob saw
    no one leave, and the roster shows bob's presence again."""
    tap.ok(poll(lambda: "stream of %s resumed" % jid in st.daemon_log()[log_from:]),
           "%s: the stream of %s is resumed, not bound anew" % (label, jid))
    time.sleep(0.3)  # an unavailable presence would have arrived by now
    gone = went_offline(bob, jid, since)
    tap.ok(not gone, "%s: bob never sees %s go offline" % (label, jid), repr(gone))


def wait_status(st, token, timeout=15):
    """Polls roster until the restored session answers 200 (bounded)."""
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        status, _, _ = st.call("roster", {}, token=token)
        if status == 200:
            return status
        time.sleep(0.1)
    return status


def sealed_at_rest(st, token, key, alice_jid, bob):
    bob.send_message(alice_jid, SECRET, id="s1")
    tap.is_(queue_bodies(st, token, key, 1), [SECRET], "the message is queued")
    dump = st.redis_bytes()
    for what, text in (("password", b"alice-pw"), ("token", token.encode()),
                       ("message text", SECRET.encode()),
                       ("user key", key.encode()),
                       ("user key bytes", base64.b64decode(key))):
        tap.ok(text not in dump, "a Redis dump holds no %s in plain form" % what)
    th = [h for h in token_hashes(token).values() if st.redis("GET", "tp:token:" + h)]
    sid = st.redis("GET", "tp:token:" + th[0]).decode() if th else ""
    records = [k.decode() for k in st.redis("KEYS", "tp:session:*")]
    tap.ok(sid and "tp:session:" + sid in records and len(records) == 2,
           "one sealed record per session, under the session's id", repr(records))
    return sid


def moved_blob(st, sid):
    blob = st.redis("GET", "tp:session:" + sid)
    fake = "0123456789abcdef0123456789abcdef"
    st.redis("SET", "tp:session:" + fake, blob)
    return fake


def restart(st, alice, carol, bob, ep, sig, label):
    t0 = time.time()
    log_from = len(st.daemon_log())
    st.stop_daemon(sig)
    bob.send_message(alice["jid"], "while down " + label, id="down-" + label)
    time.sleep(0.5)
    st.start_daemon()
    status = wait_status(st, alice["token"])
    took = time.time() - t0
    tap.is_(status, 200, "%s: alice's token works after the restart (%.1f s)" % (label, took))
    tap.is_(wait_status(st, carol["token"]), 200, "%s: so does carol's" % label)
    resumed(st, label, alice["jid"], bob, t0, log_from)
    tap.ok(sees_online(st, alice["token"], "bob@" + DOMAIN),
           "%s: alice's roster shows bob online again" % label)
    status, _, answer = st.call("key", {}, token=alice["token"])
    tap.is_(answer.get("key"), alice["key"], "%s: alice's key is the same" % label)
    queued = queue_bodies(st, alice["token"], alice["key"], 1)
    want = "while down " + label
    deadline = time.time() + 10
    while queued.count(want) == 0 and time.time() < deadline:
        time.sleep(0.2)
        queued = queue_bodies(st, alice["token"], alice["key"], 1)
    tap.is_(queued.count(want), 1,
            "%s: a message sent while no daemon ran reaches the queue once" % label)
    n = len(ep.log("hook", "carol"))
    bob.send_message(carol["jid"], "after " + label, id="after-" + label)
    got = ep.wait_log("hook", "carol", n + 1, timeout=10)
    inner = open_item(carol["key"], json.loads(base64.b64decode(got[n]["body_b64"]))["payload"])
    tap.is_(inner.get("body"), "after " + label, "%s: carol's push registration is kept" % label)
    status, _, answer = st.call("message", {"to": "bob@" + DOMAIN, "body": "hi " + label},
                                token=alice["token"])
    got = bob.wait_message(lambda m: m["body"] == "hi " + label, 10)
    tap.ok(status == 200 and got is not None, "%s: alice can send again" % label)


def stream_forgotten(st, alice, bob):
    """The server ends the stream the old daemon left (here: another
    client binds its resource) before the new one starts: resumption
    fails, and the new daemon binds a stream anew."""
    st.stop_daemon(signal.SIGKILL)
    taker = st.peer("alice", resource=alice["jid"].split("/", 1)[1])
    taker.close()
    t0 = time.time()
    log_from = len(st.daemon_log())
    st.start_daemon()
    tap.is_(wait_status(st, alice["token"]), 200,
            "stream forgotten: alice's token works after the restart")
    log = st.daemon_log()[log_from:]
    tap.ok("stream of %s resumed" % alice["jid"] not in log and
           online_again(bob, alice["jid"], t0) is not None,
           "the new daemon binds a new stream, and bob sees alice online again")
    tap.ok(sees_online(st, alice["token"], "bob@" + DOMAIN),
           "alice's roster shows bob online")


def second_daemon_adopts(st, alice, bob, sid):
    """Two daemons share Redis; the one holding the sessions dies; the
    other adopts them (its periodic look, every 15 s)."""
    other = Proc("talkproxyd-b", [os.path.join(builddir(), "talkproxyd"), "-c", st.conf],
                 st.path("talkproxyd-b.out"))
    try:
        deadline = time.time() + 10
        while int(st.redis("PUBSUB", "NUMSUB", "tp:login")[1]) < 2 and time.time() < deadline:
            time.sleep(0.05)
        tap.is_(int(st.redis("PUBSUB", "NUMSUB", "tp:login")[1]), 2,
                "a second daemon instance listens beside the first")
        time.sleep(2)  # past its first look at start: adoption by the periodic one
        t0 = time.time()
        log_from = len(st.daemon_log())
        st.stop_daemon(signal.SIGKILL)
        status = wait_status(st, alice["token"], timeout=25)
        took = time.time() - t0
        tap.ok(status == 200 and took < 20,
               "the first is killed; the second adopts alice's session (%.1f s)" % took)
        tap.ok(poll(lambda: "stream of %s resumed" % alice["jid"]
                    in st.daemon_log()[log_from:]) and
               not went_offline(bob, alice["jid"], t0),
               "it resumes her stream: bob never sees her go offline")
        status, _, answer = st.call("key", {}, token=alice["token"])
        tap.is_(answer.get("key"), alice["key"], "with the same key")
        status, _, _ = st.call("logout", {}, token=alice["token"])
        tap.ok(status == 200 and st.redis("GET", "tp:session:" + sid) is None,
               "logout deletes the record")
    finally:
        tap.is_(other.stop(), 0, "the second daemon stops cleanly")


def login(st, user):
    token = st.login(user)
    status, _, answer = st.call("key", {}, token=token)
    return {"token": token, "jid": st.sessions[token]["jid"], "key": answer["key"]}


def refuses_open_key():
    with Stack(daemon=False, web=False) as st:
        os.chmod(st.path("master.key"), 0o640)
        try:
            st.start_daemon()
            tap.ok(False, "the daemon refuses a master key file the group may read")
        except StackError as e:
            tap.ok("open to group or others" in str(e),
                   "the daemon refuses a master key file the group may read")
        os.chmod(st.path("master.key"), 0o600)
        st.start_daemon()
        tap.ok(st.daemon_pid() is not None, "and starts once it is mode 0600")


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack(push=True) as st:
        tap.on_failure(st.dump_logs)
        ep = st.pushep
        bob = st.peer("bob")
        alice, carol = login(st, "alice"), login(st, "carol")
        sid = sealed_at_rest(st, alice["token"], alice["key"], alice["jid"], bob)
        status, _, _ = st.call("register", {"url": ep.url("hook", "carol"), "kind": "webhook"},
                               token=carol["token"])
        tap.is_(status, 200, "carol registers a webhook")
        fake = moved_blob(st, sid)
        restart(st, alice, carol, bob, ep, signal.SIGTERM, "SIGTERM")
        log = st.daemon_log()
        tap.ok("session %s: record does not open" % fake in log,
               "a record copied under another session's key does not open")
        tap.ok("session %s restored" % fake not in log and
               "session %s restored" % sid in log,
               "it is not restored; the real one is")
        restart(st, alice, carol, bob, ep, signal.SIGKILL, "SIGKILL")
        stream_forgotten(st, alice, bob)
        second_daemon_adopts(st, alice, bob, sid)
    refuses_open_key()
    tap.done()


if __name__ == "__main__":
    main()
