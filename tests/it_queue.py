#!/usr/bin/python3
"""
it_queue.py: every incoming chat message lands in the session's sealed
queue before the daemon acknowledges the stanza, and stays until the client
acknowledges its cursor. Items are opened with python3-nacl, never with our
own code. Also: the queue's bounds (count and age) and the drop count,
duplicates of one message id, OTR hints, the key call, that Redis holds
no message text in plain form, and that messages larger than one read of
the stream are stored at once. Prints TAP.
"""

import base64
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import bodies, fetch_queue, open_item, wait_queue  # noqa: E402
from harness.stack import DOMAIN, Stack  # noqa: E402

HINTS_NS = "urn:xmpp:hints"
BOB = "bob@" + DOMAIN


def check_key(st, token):
    status, _, answer = st.call("key", {}, token=token)
    tap.is_(status, 200, "key answers 200")
    key = answer.get("key", "")
    tap.is_(len(base64.b64decode(key)), 32, "the key is 32 bytes of base64")
    tap.is_(answer.get("cipher"), "xchacha20poly1305-ietf", "the key names its cipher")
    status, _, again = st.call("key", {}, token=token)
    tap.is_(again.get("key"), key, "the key stays the same for the session")
    return key


def check_payload(st, token, key, alice_jid, bob):
    bob.send_message(alice_jid, "hello alice \u263a", id="m1")
    answer = wait_queue(st, token, 1)
    tap.is_(len(answer["messages"]), 1, "the message is in the queue")
    item = open_item(key, answer["messages"][0])
    tap.is_(item.get("from"), BOB, "payload: from is the bare JID")
    tap.is_(item.get("resource"), "peer", "payload: the sender's resource")
    tap.is_(item.get("name"), "Bob", "payload: the roster name")
    tap.is_(item.get("body"), "hello alice \u263a", "payload: the body, UTF-8 intact")
    tap.is_(item.get("id"), "m1", "payload: the XMPP id")
    tap.is_(item.get("type"), "chat", "payload: the type")
    tap.is_(item.get("otr"), False, "payload: otr is false without a hint")
    tap.is_(item.get("v"), 1, "payload: version 1")
    t = item.get("time", "")
    tap.ok(len(t) == 24 and t.endswith("Z") and t[:4].isdigit(),
           "payload: time is ISO 8601 UTC", t)
    tap.ok(answer.get("cursor") and answer.get("dropped") == 0 and answer.get("more") is False,
           "the answer has a cursor, dropped 0 and more false", repr(answer))
    return answer["cursor"]


def check_ack(st, token, key, alice_jid, bob, cursor):
    status, again = fetch_queue(st, token)
    tap.ok(status == 200 and bodies(key, again) == ["hello alice \u263a"],
           "asking again without ack returns the same item (a lost answer loses nothing)")
    bob.send_message(alice_jid, "second", id="m2")
    bob.send_message(alice_jid, "third", id="m3", state="active")
    answer = wait_queue(st, token, 3)
    tap.is_(bodies(key, answer), ["hello alice \u263a", "second", "third"],
            "items come oldest first")
    tap.is_(open_item(key, answer["messages"][2]).get("state"), "active",
            "payload: the chat state")
    status, after = fetch_queue(st, token, ack=cursor)
    tap.ok(status == 200 and bodies(key, after) == ["second", "third"],
           "ack of the first cursor removes only the first item", repr(after))
    status, after = fetch_queue(st, token, ack=after["cursor"])
    tap.ok(status == 200 and after["messages"] == [] and after["cursor"],
           "ack of the last cursor empties the queue and keeps the cursor", repr(after))
    return after["cursor"]


def check_duplicates_and_otr(st, token, key, alice_jid, bob, cursor):
    bob.send_message(alice_jid, "second again", id="m2")
    bob.send_message(alice_jid, "secret", id="m4", extra=[(HINTS_NS, "no-store")])
    answer = wait_queue(st, token, 1, ack=cursor)
    time.sleep(0.3)
    status, answer = fetch_queue(st, token, ack=cursor)
    tap.is_(bodies(key, answer), ["secret"],
            "a second message with an id already stored is dropped")
    tap.is_(open_item(key, answer["messages"][0]).get("otr"), True,
            "payload: otr is true for a no-store hint")
    bob.send_message(alice_jid, None, state="composing")
    bob.send_message(alice_jid, "after typing", id="m5")
    answer = wait_queue(st, token, 3, ack=cursor)
    items = [open_item(key, m) for m in answer["messages"]]
    tap.is_([(i.get("kind"), i.get("body"), i.get("state")) for i in items],
            [("message", "secret", None), ("chatstate", None, "composing"),
             ("message", "after typing", None)],
            "a bare chat state is queued as kind chatstate, without a body")
    return answer


def check_otr(st, token, key, alice_jid, bob):
    status, _, answer = st.call("otr", {"jid": BOB, "enabled": True}, token=token)
    tap.ok(status == 200 and answer == {"jid": BOB, "enabled": True},
           "otr with bob answers what is now in force", repr(answer))
    st.call("message", {"to": BOB + "/peer", "body": "off the record"}, token=token)
    got = bob.wait_message(lambda m: m["body"] == "off the record", 10)
    xml = got["xml"] if got else ""
    tap.ok("no-store" in xml and "no-permanent-store" in xml and "urn:xmpp:hints" in xml,
           "alice's message to bob carries the XEP-0334 no-store hints", xml)
    tap.ok("google:nosave" not in xml,
           "and no google:nosave, which this server does not advertise")
    status, answer = fetch_queue(st, token)
    cursor = answer["cursor"]
    bob.send_message(alice_jid, "plain but otr", id="o1")
    answer = wait_queue(st, token, 1, ack=cursor)
    tap.is_(open_item(key, answer["messages"][-1]).get("otr"), True,
            "bob's message without a hint is marked otr: alice chose it for bob")
    status, _, answer = st.call("otr", {"jid": BOB, "enabled": False}, token=token)
    tap.ok(status == 200 and answer["enabled"] is False, "otr off again")
    st.call("message", {"to": BOB + "/peer", "body": "on the record"}, token=token)
    got = bob.wait_message(lambda m: m["body"] == "on the record", 10)
    tap.ok(got and "no-store" not in got["xml"], "then messages carry no hint")
    status, answer = fetch_queue(st, token)
    fetch_queue(st, token, ack=answer["cursor"])


def check_tamper(st, key, answer):
    item = base64.b64decode(answer["messages"][0])
    forged = base64.b64encode(item[:-1] + bytes([item[-1] ^ 1])).decode()
    try:
        open_item(key, forged)
        tap.ok(False, "a changed item does not open")
    except Exception:
        tap.ok(True, "a changed item does not open")
    try:
        open_item(base64.b64encode(os.urandom(32)).decode(), answer["messages"][0])
        tap.ok(False, "an item does not open with another key")
    except Exception:
        tap.ok(True, "an item does not open with another key")


def check_redis_plain(st):
    dump = st.redis_bytes()
    for text in (b"hello alice", b"second", b"secret", b"after typing"):
        tap.ok(text not in dump, "Redis holds no plain %r" % text.decode())


def drain_queue(st, token, key, want, timeout=15.0):
    """Reads (and acknowledges) pages until want bodies came or time ran
    out; returns the bodies in queue order."""
    got, ack = [], None
    deadline = time.time() + timeout
    while len(got) < want and time.time() < deadline:
        status, answer = fetch_queue(st, token, ack=ack)
        if status != 200:
            break
        got += bodies(key, answer)
        ack = answer.get("cursor") or ack
        if not answer.get("more"):
            time.sleep(0.05)
    if ack:
        fetch_queue(st, token, ack=ack)
    return got


def check_burst(st, token, key, alice_jid, bob):
    """The items of one loop pass are stored together: a burst lands once
    each, in the order sent, its repeated ids dropped, and again after
    Redis forgot the daemon's scripts mid-run."""
    drain_queue(st, token, key, 10 ** 6, timeout=0.5)  # start empty
    sent = []
    for i in range(250):
        bob.send_message(alice_jid, "burst %d" % i, id="burst-%d" % i)
        sent.append("burst %d" % i)
        if i % 10 == 9:  # the previous id again: a resent stanza
            bob.send_message(alice_jid, "burst %d again" % (i - 1), id="burst-%d" % (i - 1))
    got = drain_queue(st, token, key, len(sent))
    tap.is_(len(got), len(sent), "a burst of 250 messages (25 ids repeated) queues 250 items")
    tap.ok(got == sent, "each once, in the order sent, repeats dropped",
           "first difference at %r" % next((i for i, (a, b) in enumerate(zip(got, sent))
                                            if a != b), None))
    shared = [int(n) for n in re.findall(r"(\d+) incoming items stored in one round trip",
                                         st.daemon_log())]
    tap.ok(shared and max(shared) > 1, "some round trips stored several items",
           "largest %s of %d" % (max(shared) if shared else None, len(shared)))
    st.redis("SCRIPT", "FLUSH")
    more = ["after flush %d" % i for i in range(30)]
    for i, text in enumerate(more):
        bob.send_message(alice_jid, text, id="flush-%d" % i)
    tap.is_(drain_queue(st, token, key, len(more)), more,
            "after SCRIPT FLUSH the next 30 are stored too, in order")


def check_large(st, token, key, alice_jid, bob):
    """A stanza longer than libstrophe's 4 KiB read arrives over several
    reads of one TLS record, the rest held inside OpenSSL where no socket
    shows it: it is stored at once all the same, not at the next periodic
    run of every stream (up to a second later)."""
    drain_queue(st, token, key, 10 ** 6, timeout=0.5)  # start empty
    texts, took = [], []
    for i, size in enumerate((5000, 9000, 15000, 6000, 12000, 15000)):
        text = "large %d %s" % (i, "x" * size)
        t0 = time.monotonic()
        bob.send_message(alice_jid, text, id="large-%d" % i)
        texts += drain_queue(st, token, key, 1, timeout=5.0)
        took.append(time.monotonic() - t0)
    tap.ok(texts == ["large %d %s" % (i, "x" * n) for i, n in
                     enumerate((5000, 9000, 15000, 6000, 12000, 15000))],
           "messages of 5-15 KB (one TLS record each) are stored whole",
           "got %d, lengths %s" % (len(texts), [len(t) for t in texts]))
    tap.ok(max(took) < 0.4, "each is in the queue within 0.4 s of its send",
           "seconds: %s" % " ".join("%.3f" % t for t in took))


def check_logout(st, token):
    status, _, _ = st.call("logout", {}, token=token)
    tap.is_(status, 200, "logout")
    keys = st.redis("KEYS", "tp:queue:*") + st.redis("KEYS", "tp:qdrop:*")
    tap.is_(keys, [], "logout deletes the queue")


def bounded_queue():
    with Stack(**{"queue.max_items": 10, "queue.max_age": 3}) as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        token = st.login("alice")
        jid = st.sessions[token]["jid"]
        status, _, key_answer = st.call("key", {}, token=token)
        key = key_answer["key"]
        for i in range(15):
            bob.send_message(jid, "n%d" % i, id="b%d" % i)
        deadline = time.time() + 10
        answer = {}
        while time.time() < deadline:
            status, answer = fetch_queue(st, token)
            if answer.get("messages") and bodies(key, answer)[-1] == "n14":
                break
            time.sleep(0.05)
        tap.is_(bodies(key, answer), ["n%d" % i for i in range(5, 15)],
                "a queue of 10 keeps the newest 10 of 15")
        tap.is_(answer.get("dropped"), 5, "and reports 5 dropped")
        status, answer = fetch_queue(st, token, ack=answer["cursor"])
        tap.is_(answer.get("dropped"), 0, "an ack resets the drop count")
        bob.send_message(jid, "old soon", id="c1")
        wait_queue(st, token, 1, ack=answer["cursor"])
        time.sleep(4)
        status, answer = fetch_queue(st, token)
        tap.ok(status == 200 and answer["messages"] == [] and answer["dropped"] == 1,
               "an item older than max_age (3 s) is dropped and counted", repr(answer))


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack() as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        took, tokens = [], {}
        for user in ("alice", "carol"):
            t0 = time.monotonic()
            tokens[user] = st.login(user)
            took.append(time.monotonic() - t0)
        token = tokens["alice"]
        refused = []
        for _ in range(3):
            time.sleep(0.3)  # the new sessions' presence exchanges settle
            t0 = time.monotonic()
            status, _, _ = st.call("login", {"jid": "dave@" + DOMAIN, "password": "wrong"})
            refused.append((status, time.monotonic() - t0))
        # Each step of a login waits for the last one's output to be
        # written: a step left to the periodic run costs up to a second
        # (a refused login, whose answer waits for the stream's close to
        # be written, takes tens of milliseconds when nothing waits).
        tap.ok(max(took) < 0.9, "logins on a quiet daemon are answered at once",
               "seconds: %s" % " ".join("%.3f" % t for t in took))
        tap.ok(all(s == 401 and t < 0.35 for s, t in refused),
               "so are refused ones", "answers: %s" % " ".join(
                   "%s in %.3f s" % (s, t) for s, t in refused))
        jid = st.sessions[token]["jid"]
        key = check_key(st, token)
        cursor = check_payload(st, token, key, jid, bob)
        cursor = check_ack(st, token, key, jid, bob, cursor)
        answer = check_duplicates_and_otr(st, token, key, jid, bob, cursor)
        check_tamper(st, key, answer)
        check_otr(st, token, key, jid, bob)
        check_redis_plain(st)
        check_burst(st, token, key, jid, bob)
        check_large(st, token, key, jid, bob)
        check_logout(st, token)
    bounded_queue()
    tap.done()


if __name__ == "__main__":
    main()
