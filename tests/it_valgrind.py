#!/usr/bin/python3
"""
it_valgrind.py: the daemon's integration run under valgrind (memcheck):
every call of the API, messages, chat states and receipts both ways,
contact requests, photos and avatars, pushes, a rawiq, logout, then a
SIGTERM shutdown; memcheck must report no error and no definite or
indirect leak. Skipped in the sanitizer build (ASan and valgrind do not
mix) and when valgrind is missing. Prints TAP.
"""

import base64
import glob
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import wait_queue  # noqa: E402
from harness.stack import DOMAIN, Stack, builddir, poll  # noqa: E402

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
CAROL = "carol@" + DOMAIN
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAYAAABytg0kAAAAEklEQVR42mP4z8DwHwyBNAMAVNoJ9xJtQjcAAAAASUVORK5CYII=")


def sanitized():
    out = subprocess.run(["ldd", os.path.join(builddir(), "talkproxyd")],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return b"libasan" in out.stdout or b"libubsan" in out.stdout




def exercise(st, bob, carol):
    tok = st.login("alice")
    call = lambda name, body=None: st.call(name, body or {}, token=tok)  # noqa: E731
    ep = st.pushep
    results = {}
    results["key"] = call("key")[0]
    results["register"] = call("register", {"url": ep.url("hook", "alice"), "kind": "webhook"})[0]
    results["notifications"] = call("notifications", {"toast": False})[0]
    bob.send_message(ALICE, "hello under valgrind", id="v1")
    bob.send_message(ALICE, None, state="composing")
    bob.send_raw("<message to='%s' id='v2' type='chat'><body>receipt please</body>"
                 "<request xmlns='urn:xmpp:receipts'/></message>" % ALICE)
    answer = wait_queue(st, tok, 3, timeout=30)
    results["queue"] = 200 if answer and len(answer["messages"]) >= 3 else 0
    results["ack"] = call("messagequeue", {"ack": answer["cursor"]})[0] if answer else 0
    results["message"] = call("message", {"to": BOB, "body": "hi", "id": "out-1"})[0]
    results["presence"] = call("presence", {"show": "away", "status": "testing"})[0]
    results["otr"] = call("otr", {"jid": BOB, "enabled": True})[0]
    results["roster"] = call("roster")[0]
    carol.send_raw("<presence to='%s' type='subscribe'/>" % ALICE)
    poll(lambda: call("roster")[2].get("requests"))
    results["approve"] = call("contact", {"jid": CAROL, "action": "approve"})[0]
    results["add"] = call("contact", {"jid": "dave@" + DOMAIN, "action": "add",
                                      "name": "D", "groups": ["G"]})[0]
    results["rename"] = call("contact", {"jid": "dave@" + DOMAIN, "action": "rename",
                                         "name": "Dave"})[0]
    results["remove"] = call("contact", {"jid": "dave@" + DOMAIN, "action": "remove"})[0]
    bob.send_raw("<iq type='set' id='vc'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE>"
                 "<BINVAL>%s</BINVAL></PHOTO></vCard></iq>" % base64.b64encode(PNG).decode())
    results["photo"] = poll(lambda: call("photo", {"jid": BOB})[0] == 200) and 200
    bob.send_raw("<presence><x xmlns='vcard-temp:x:update'><photo>%s</photo></x></presence>"
                 % hashlib.sha1(PNG).hexdigest())
    results["jingle"] = call("jingle")[0]
    results["rawiq"] = call("rawiq", {"xml": "<iq type='get' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                                      % DOMAIN, "wait": True})[0]
    results["crashreport"] = call("crashreport", {"exception": "trace"})[0]
    results["bad photo"] = call("photo", {"jid": CAROL})[0]
    results["logout"] = call("logout")[0]
    return results


def memcheck_summary(st):
    logs = glob.glob(st.path("valgrind.*.log"))
    text = ""
    for p in logs:
        with open(p, errors="replace") as f:
            text += f.read()
    errors = [int(n) for n in re.findall(r"ERROR SUMMARY: (\d+) errors", text)]
    lost = re.findall(r"(definitely|indirectly) lost: ([\d,]+) bytes", text)
    return text, errors, lost


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "600")))
    if sanitized() or not shutil.which("valgrind"):
        tap.skip("the daemon under valgrind",
                 "sanitizer build" if shutil.which("valgrind") else "no valgrind")
        tap.done()
        return
    os.environ.setdefault("TP_START_TIMEOUT", "120")
    with Stack(push=True, valgrind=True, **{"http.login_timeout_ms": 60000,
                                            "http.request_timeout_ms": 60000}) as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        carol = st.peer("carol", answer_requests=False)
        results = exercise(st, bob, carol)
        expected = {k: 200 for k in results}
        expected["bad photo"] = 404
        tap.is_(results, expected, "every call answered as expected under valgrind")
        status = st.stop_daemon(signal.SIGTERM)
        tap.is_(status, 0, "talkproxyd under valgrind exits 0 on SIGTERM (99: memcheck errors)")
        text, errors, lost = memcheck_summary(st)
        tap.ok(errors and all(n == 0 for n in errors), "memcheck: ERROR SUMMARY: 0 errors",
               text[-3000:])
        tap.ok(all(n == "0" for _, n in lost), "memcheck: nothing definitely or indirectly lost",
               repr(lost))
    tap.done()


if __name__ == "__main__":
    main()
