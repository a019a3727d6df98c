#!/usr/bin/python3
"""
it_contacts.py: what a phone sees of its contacts beyond messages, through
lighttpd against Prosody with real slixmpp peers: subscription requests
(pushed to the queue, listed, approved, denied, withdrawn), the contact
call (add, remove, rename, regroup), chat states and XEP-0184 receipts both
ways, vCard photos and the avatar cache, and STUN/TURN servers from
Prosody's mod_external_services (XEP-0215). Queue items are opened with
python3-nacl. Prints TAP.
"""

import base64
import hashlib
import os
import struct
import sys
import time
import xml.etree.ElementTree as ET
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.sealed import fetch_queue, open_item  # noqa: E402
from harness.stack import DOMAIN, Stack, poll  # noqa: E402

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
CAROL = "carol@" + DOMAIN
DAVE = "dave@" + DOMAIN
RECEIPTS_NS = "urn:xmpp:receipts"
AVATAR_MAX = 4096


def png(width, height, rgba):
    """A real PNG of one colour (independent of our placeholder)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    row = b"\x00" + bytes(rgba) * width
    return (b"\x89PNG\r\n\x1a\n" +
            chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))




class Queue:
    """Alice's queue as the phone reads it: items opened, acked on demand."""

    def __init__(self, st, token, key):
        self.st, self.token, self.key, self.cursor = st, token, key, None

    def items(self):
        status, answer = fetch_queue(self.st, self.token, self.cursor)
        if status != 200:
            return []
        self.last = answer.get("cursor")
        return [open_item(self.key, m) for m in answer.get("messages", [])]

    def wait(self, pred, timeout=10.0):
        def found():
            return next((i for i in self.items() if pred(i)), None)
        return poll(found, timeout)

    def ack(self):
        self.items()
        self.cursor = self.last
        fetch_queue(self.st, self.token, self.cursor)


def roster(st, token):
    status, _, answer = st.call("roster", {}, token=token)
    return answer if status == 200 else {}


def contact(st, token, **body):
    status, _, answer = st.call("contact", body, token=token)
    return status, answer


def entry(st, token, jid):
    return next((c for c in roster(st, token).get("contacts", [])
                 if c["jid"] == jid), None)


def subscribe_xml(frm_to, kind, status=None):
    extra = "<status>%s</status>" % status if status else ""
    return "<presence to='%s' type='%s'>%s</presence>" % (frm_to, kind, extra)


def check_requests(st, token, q, carol, dave):
    carol.send_raw(subscribe_xml(ALICE, "subscribe", "hi, it is carol"))
    item = q.wait(lambda i: i.get("kind") == "subscribe")
    tap.ok(item and item.get("from") == CAROL and item.get("status") == "hi, it is carol",
           "a subscription request reaches the queue with its text", repr(item))
    reqs = poll(lambda: roster(st, token).get("requests"))
    tap.is_(reqs, [{"jid": CAROL, "status": "hi, it is carol"}],
            "roster lists the waiting request")
    status, _ = contact(st, token, jid=CAROL, action="approve")
    tap.is_(status, 200, "approve answers 200")
    got = carol.wait_presence(lambda p: p["type"] == "subscribed" and p["from"].startswith(ALICE))
    tap.ok(got is not None, "the requester is told it was approved")
    got = carol.wait_presence(lambda p: p["type"] == "subscribe" and p["from"].startswith(ALICE))
    tap.ok(got is not None, "approving asks back (a mutual contact)")
    tap.is_(roster(st, token).get("requests"), [], "an answered request leaves the list")
    e = poll(lambda: entry(st, token, CAROL))
    tap.ok(e and e["subscription"] in ("from", "both"),
           "the approved contact is in the roster, seeing our presence", repr(e))

    dave.send_raw(subscribe_xml(ALICE, "subscribe"))
    poll(lambda: roster(st, token).get("requests"))
    status, _ = contact(st, token, jid=DAVE, action="deny")
    tap.is_(status, 200, "deny answers 200")
    got = dave.wait_presence(lambda p: p["type"] == "unsubscribed" and p["from"].startswith(ALICE))
    tap.ok(got is not None, "the requester is told it was denied")
    tap.is_(roster(st, token).get("requests"), [], "a denied request leaves the list")

    dave.send_raw(subscribe_xml(ALICE, "subscribe"))
    listed = poll(lambda: roster(st, token).get("requests"))
    dave.send_raw(subscribe_xml(ALICE, "unsubscribe"))
    gone = poll(lambda: roster(st, token).get("requests") == [])
    tap.ok(listed and gone, "a withdrawn request leaves the list")
    q.ack()


def check_roster_changes(st, token, dave):
    status, _ = contact(st, token, jid=DAVE, action="add", name="Dave D", groups=["Work"])
    tap.is_(status, 200, "add answers 200 once the server has the item")
    e = poll(lambda: entry(st, token, DAVE))
    tap.ok(e and e["name"] == "Dave D" and e["groups"] == ["Work"],
           "the added contact has its name and group", repr(e))
    got = dave.wait_presence(lambda p: p["type"] == "subscribe" and p["from"].startswith(ALICE))
    tap.ok(got is not None, "adding asks the contact to subscribe")
    status, _ = contact(st, token, jid=DAVE, action="rename", name="David")
    e = poll(lambda: (entry(st, token, DAVE) or {}).get("name") == "David" and entry(st, token, DAVE))
    tap.ok(status == 200 and e and e["groups"] == ["Work"],
           "rename changes the name and keeps the groups", repr(e))
    status, _ = contact(st, token, jid=DAVE, action="regroup", groups=["Work", "Gym"])
    e = poll(lambda: sorted((entry(st, token, DAVE) or {}).get("groups", [])) == ["Gym", "Work"]
             and entry(st, token, DAVE))
    tap.ok(status == 200 and e and e["name"] == "David",
           "regroup changes the groups and keeps the name", repr(e))
    status, _ = contact(st, token, jid=DAVE, action="remove")
    gone = poll(lambda: entry(st, token, DAVE) is None)
    tap.ok(status == 200 and gone, "remove takes the contact out of the roster")
    status, answer = contact(st, token, jid=DAVE, action="rename", name="x")
    tap.ok(status == 404 and answer["error"]["code"] == "not_in_roster",
           "renaming a JID that is not a contact answers 404", repr(answer))
    status, answer = contact(st, token, jid=DAVE, action="remove")
    tap.is_(status, 404, "removing a JID that is not a contact answers 404")
    status, answer = contact(st, token, jid=ALICE, action="add")
    tap.ok(status == 400 and answer["error"]["field"] == "jid",
           "one's own JID is refused", repr(answer))


def check_states_and_receipts(st, token, q, bob, dave):
    bob.send_message(ALICE, None, state="composing")
    item = q.wait(lambda i: i.get("kind") == "chatstate")
    tap.ok(item and item.get("state") == "composing" and item.get("from") == BOB
           and "body" not in item, "a typing notification reaches the queue", repr(item))

    status, _, answer = st.call("message", {"to": BOB, "body": "did you get this?",
                                            "id": "rq-1"}, token=token)
    got = bob.wait_message(lambda m: m["id"] == "rq-1")
    asks = got is not None and ET.fromstring(got["xml"]).find(
        "{%s}request" % RECEIPTS_NS) is not None
    tap.ok(status == 200 and asks, "outgoing messages ask for a receipt",
           got and got["xml"])
    bob.send_raw("<message to='%s'><received xmlns='%s' id='rq-1'/></message>"
                 % (ALICE, RECEIPTS_NS))
    item = q.wait(lambda i: i.get("kind") == "receipt")
    tap.ok(item and item.get("receipt") == "rq-1" and item.get("from") == BOB,
           "the contact's receipt reaches the queue", repr(item))

    q.ack()
    bob.send_raw("<message to='%s' id='want-1' type='chat'><body>ack me</body>"
                 "<request xmlns='%s'/></message>" % (ALICE, RECEIPTS_NS))
    q.wait(lambda i: i.get("id") == "want-1")

    def receipt_for(peer, mid):
        return lambda m: m["from"].startswith(ALICE) and \
            ("id=\"%s\"" % mid) in m["xml"] and "received" in m["xml"]
    early = bob.wait_message(receipt_for(bob, "want-1"), timeout=1.0)
    tap.ok(early is None, "no receipt before the phone acknowledges the message")
    q.ack()
    got = bob.wait_message(receipt_for(bob, "want-1"), timeout=10.0)
    tap.ok(got is not None, "the receipt goes out when the phone acknowledges it")

    dave.send_raw("<message to='%s' id='want-2' type='chat'><body>stranger</body>"
                  "<request xmlns='%s'/></message>" % (ALICE, RECEIPTS_NS))
    q.wait(lambda i: i.get("id") == "want-2")
    q.ack()
    got = dave.wait_message(receipt_for(dave, "want-2"), timeout=2.0)
    tap.ok(got is None, "no receipt to a sender who may not see our presence")


def vcard_set(peer, data, mime="image/png"):
    b64 = base64.b64encode(data).decode()
    # Folded like real clients do: the BINVAL parser must join lines.
    folded = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    peer.send_raw("<iq type='set' id='vc-%d'><vCard xmlns='vcard-temp'><FN>x</FN>"
                  "<PHOTO><TYPE>%s</TYPE><BINVAL>%s</BINVAL></PHOTO></vCard></iq>"
                  % (len(data), mime, folded))


def photo(st, token, jid):
    return st.call("photo", {"jid": jid}, token=token)


def check_photos(st, token, bob, carol, dave):
    image = png(3, 2, (200, 30, 40, 255))
    vcard_set(bob, image)
    got = poll(lambda: photo(st, token, BOB)[0] == 200)
    status, headers, body = photo(st, token, BOB)
    tap.ok(got and status == 200 and body == image,
           "photo answers the contact's vCard image, byte for byte", (status, body[:60]))
    tap.is_(headers.get("content-type"), "image/png", "photo: its content type")
    tap.is_(headers.get("x-content-type-options"), "nosniff", "photo: nosniff")
    status, _, answer = photo(st, token, CAROL)
    tap.ok(status == 404 and answer["error"]["code"] == "no_photo",
           "a contact without a photo answers 404", repr(answer))

    sha1 = hashlib.sha1(image).hexdigest()
    bob.send_raw("<presence><x xmlns='vcard-temp:x:update'><photo>%s</photo></x></presence>" % sha1)
    e = poll(lambda: (entry(st, token, BOB) or {}).get("photo") == sha1)
    tap.ok(e, "the roster shows the avatar hash the contact announced")
    served = poll(lambda: st.call(None, path="/images/" + sha1, method="GET",
                                  content_type=None)[2] == image)
    status, headers, body = st.call(None, path="/images/" + sha1, method="GET", content_type=None)
    tap.ok(served and headers.get("content-type") == "image/png",
           "the announced avatar is fetched and served at /images/<sha1>")
    tap.ok(image not in st.redis_bytes(), "Redis holds no avatar in the clear")

    big = b"\x89PNG\r\n\x1a\n" + os.urandom(AVATAR_MAX + 100)
    vcard_set(dave, big)
    got = poll(lambda: photo(st, token, DAVE)[0] == 502)
    status, _, answer = photo(st, token, DAVE)
    tap.ok(got and answer["error"]["code"] == "photo_too_large",
           "a photo over xmpp.avatar_max_bytes answers 502 photo_too_large", repr(answer))
    svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
    vcard_set(carol, svg, "image/svg+xml")
    got = poll(lambda: photo(st, token, CAROL)[0] == 502)
    status, _, answer = photo(st, token, CAROL)
    tap.ok(got and answer["error"]["code"] == "photo_unsupported",
           "an SVG photo is not relayed (it can carry script)", repr(answer))
    sha_svg = hashlib.sha1(svg).hexdigest()
    carol.send_raw("<presence><x xmlns='vcard-temp:x:update'><photo>%s</photo></x></presence>"
                   % sha_svg)
    time.sleep(1.0)
    status, headers, body = st.call(None, path="/images/" + sha_svg, method="GET",
                                    content_type=None)
    tap.ok(status == 200 and body != svg and body[:8] == b"\x89PNG\r\n\x1a\n",
           "an announced SVG avatar is never served: the placeholder is")


def check_jingle(st, token):
    status, _, answer = st.call("jingle", {}, token=token)
    servers = answer.get("servers", []) if status == 200 else []
    stun = [s for s in servers if s.get("type") == "stun"]
    turn = [s for s in servers if s.get("type") == "turn"]
    tap.ok(stun and stun[0]["host"] == "127.0.0.1" and stun[0]["port"] == 3478
           and stun[0]["transport"] == "udp", "jingle lists the STUN server", repr(answer))
    # Prosody folds the expiry into the username (TURN REST credentials).
    tap.ok(turn and turn[0].get("username") and turn[0].get("password"),
           "jingle lists the TURN server with its temporary credentials", repr(turn))


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack(**{"xmpp.avatar_max_bytes": AVATAR_MAX}) as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        carol = st.peer("carol", answer_requests=False)
        dave = st.peer("dave", answer_requests=False)
        token = st.login("alice")
        status, _, answer = st.call("key", {}, token=token)
        q = Queue(st, token, answer["key"])
        check_requests(st, token, q, carol, dave)
        check_roster_changes(st, token, dave)
        check_states_and_receipts(st, token, q, bob, dave)
        check_photos(st, token, bob, carol, dave)
        check_jingle(st, token)
        tap.ok(st.daemon_pid() and os.path.exists("/proc/%d" % st.daemon_pid()),
               "the daemon is still running")
    tap.done()


if __name__ == "__main__":
    main()
