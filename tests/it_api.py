#!/usr/bin/python3
"""
it_api.py: the JSON API end to end, through lighttpd (the shipped snippet),
talkproxy-fcgi, Redis and talkproxyd to a real Prosody, with a real XMPP
client (bob) on the other side. Prints TAP.
"""

import hashlib
import json
import os
import re
import struct
import sys
import time
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.stack import DOMAIN, Stack, children, token_hashes  # noqa: E402

ANY = object()  # a table cell the API leaves open
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
BOB = "bob@" + DOMAIN
MAX_MESSAGE = 10000  # http.max_message default
MAX_BODY = 65536  # http.max_body default


def error_of(answer):
    """The "error" object of an answer, or {} when there is none."""
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return answer["error"]
    return {}


def expect_error(got, status, code, field, name):
    """Checks one error answer: status, code, field and a message."""
    st, _, answer = got
    err = error_of(answer)
    want = {"status": status, "code": code}
    have = {"status": st, "code": err.get("code")}
    if field is not ANY:
        want["field"] = field
        have["field"] = err.get("field")
    good = have == want and isinstance(err.get("message"), str) and err["message"] != ""
    return tap.ok(good, name, "     got: %s %r\nexpected: %r" % (st, answer, want))


def nested(depth):
    """A JSON object whose containers nest depth levels, the object itself
    being the first."""
    return ('{"x":' + "[" * (depth - 1) + "]" * (depth - 1) + "}").encode()


# One row per bad request: a sentence, the call, the body (dict -> JSON,
# bytes as is), extra arguments for st.call, and the exact answer wanted.
# Session calls carry alice's valid token, so only the body is at fault.
J = "application/json"
# A valid P-256 point (uncompressed, base64url): the generator G.
P256DH = ("BGsX0fLhLEJH-Lzm5WOkQPJ3A32BLeszoPShOUXYmMKWT-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU")
BAD_REQUESTS = [
    # sentence, call, body, call options, status, code, field
    ("login with a body that is not JSON answers bad_json",
     "login", b'{"jid": ', {}, 400, "bad_json", ANY),
    ("login with an empty body answers bad_json",
     "login", b"", {}, 400, "bad_json", ANY),
    ("login with invalid UTF-8 in a string answers bad_utf8",
     "login", b'{"jid":"alice@localhost","password":"\xff\xfe"}', {}, 400, "bad_utf8", ANY),
    ("login with an overlong UTF-8 encoding answers bad_utf8",
     "login", b'{"jid":"alice@localhost","password":"\xc0\xaf"}', {}, 400, "bad_utf8", ANY),
    ("login with a duplicate key answers duplicate_key",
     "login", b'{"jid":"alice@localhost","jid":"bob@localhost","password":"x"}', {},
     400, "duplicate_key", ANY),
    ("login nested nine levels deep answers too_deep",
     "login", nested(9), {}, 400, "too_deep", ANY),
    ("login with an array for a body answers not_object",
     "login", b"[]", {}, 400, "not_object", ANY),
    ("login with a string for a body answers not_object",
     "login", b'"alice@localhost"', {}, 400, "not_object", ANY),
    ("login without jid answers missing_field jid",
     "login", {"password": "alice-pw"}, {}, 400, "missing_field", "jid"),
    ("login without password answers missing_field password",
     "login", {"jid": "alice@localhost"}, {}, 400, "missing_field", "password"),
    ("login with a number for jid answers wrong_type jid",
     "login", {"jid": 5, "password": "alice-pw"}, {}, 400, "wrong_type", "jid"),
    ("login with null for password answers wrong_type password",
     "login", {"jid": "alice@localhost", "password": None}, {}, 400, "wrong_type", "password"),
    ("login with a list for resource answers wrong_type resource",
     "login", {"jid": "alice@localhost", "password": "alice-pw", "resource": ["a"]}, {},
     400, "wrong_type", "resource"),
    ("login with a JID without localpart answers bad_jid",
     "login", {"jid": "localhost", "password": "alice-pw"}, {}, 400, "bad_jid", "jid"),
    ("login with a full JID answers bad_jid",
     "login", {"jid": "alice@localhost/phone", "password": "alice-pw"}, {}, 400, "bad_jid", "jid"),
    ("login with two @ in the JID answers bad_jid",
     "login", {"jid": "alice@bob@localhost", "password": "alice-pw"}, {}, 400, "bad_jid", "jid"),
    ("login with a 1024-byte localpart answers bad_jid",
     "login", {"jid": "a" * 1024 + "@localhost", "password": "alice-pw"}, {}, 400, "bad_jid", "jid"),
    ("login with a 1024-byte domain answers bad_jid",
     "login", {"jid": "alice@" + "d" * 1024, "password": "alice-pw"}, {}, 400, "bad_jid", "jid"),
    ("login with an empty jid answers empty jid",
     "login", {"jid": "", "password": "alice-pw"}, {}, 400, "empty", "jid"),
    ("login with an empty password answers empty password",
     "login", {"jid": "alice@localhost", "password": ""}, {}, 400, "empty", "password"),
    ("login with a 1024-byte password answers too_long password",
     "login", {"jid": "alice@localhost", "password": "p" * 1024}, {}, 400, "too_long", "password"),
    ("login with a control character in the password answers control_char",
     "login", {"jid": "alice@localhost", "password": "pw\x01"}, {}, 400, "control_char", "password"),
    ("login with a newline in the password answers control_char",
     "login", {"jid": "alice@localhost", "password": "pw\nx"}, {}, 400, "control_char", "password"),
    ("login with an escaped NUL in the password answers control_char",
     "login", b'{"jid":"alice@localhost","password":"a\\u0000b"}', {}, 400, "control_char", ANY),
    ("login with an empty resource answers empty resource",
     "login", {"jid": "alice@localhost", "password": "alice-pw", "resource": ""}, {},
     400, "empty", "resource"),
    ("login with a control character in the resource answers control_char",
     "login", {"jid": "alice@localhost", "password": "alice-pw", "resource": "ph\x7fone"}, {},
     400, "control_char", "resource"),
    ("login with an unknown field answers unknown_field",
     "login", {"jid": "alice@localhost", "password": "alice-pw", "nickname": "al"}, {},
     400, "unknown_field", "nickname"),
    ("login sent as text/plain answers 415",
     "login", {"jid": "alice@localhost", "password": "alice-pw"}, {"content_type": "text/plain"},
     415, "unsupported_media_type", ANY),
    ("login without a Content-Type answers 415",
     "login", {"jid": "alice@localhost", "password": "alice-pw"}, {"content_type": None},
     415, "unsupported_media_type", ANY),
    ("login sent as application/jsonx answers 415",
     "login", {"jid": "alice@localhost", "password": "alice-pw"},
     {"content_type": "application/jsonx"}, 415, "unsupported_media_type", ANY),
    ("login with a body over max_body answers 413",
     "login", b'{"jid":"alice@localhost","password":"' + b"p" * (MAX_BODY + 10) + b'"}', {},
     413, "body_too_large", ANY),

    # Token login (SASL X-OAUTH2 / OAUTHBEARER): "token" here is the OAuth
    # token for the XMPP server, checked like a field, never a session token.
    ("login with a password and a token answers conflicting_fields token",
     "login", {"jid": "alice@localhost", "password": "alice-pw", "token": "oauth"}, {},
     400, "conflicting_fields", "token"),
    ("login with a password, a token and a mechanism answers conflicting_fields token",
     "login", {"jid": "alice@localhost", "password": "alice-pw", "token": "oauth",
               "mechanism": "X-OAUTH2"}, {}, 400, "conflicting_fields", "token"),
    ("login with only a resource answers missing_field password",
     "login", {"jid": "alice@localhost", "resource": "phone"}, {}, 400, "missing_field", "password"),
    ("login with a mechanism but no credential answers missing_field password",
     "login", {"jid": "alice@localhost", "mechanism": "OAUTHBEARER"}, {},
     400, "missing_field", "password"),
    ("login with a password and a mechanism answers unexpected_field mechanism",
     "login", {"jid": "alice@localhost", "password": "alice-pw", "mechanism": "X-OAUTH2"}, {},
     400, "unexpected_field", "mechanism"),
    ("login with mechanism PLAIN answers bad_value mechanism",
     "login", {"jid": "alice@localhost", "token": "oauth", "mechanism": "PLAIN"}, {},
     400, "bad_value", "mechanism"),
    ("login with a mechanism in lower case answers bad_value mechanism",
     "login", {"jid": "alice@localhost", "token": "oauth", "mechanism": "x-oauth2"}, {},
     400, "bad_value", "mechanism"),
    ("login with an empty mechanism answers empty mechanism",
     "login", {"jid": "alice@localhost", "token": "oauth", "mechanism": ""}, {},
     400, "empty", "mechanism"),
    ("login with a number for mechanism answers wrong_type mechanism",
     "login", {"jid": "alice@localhost", "token": "oauth", "mechanism": 2}, {},
     400, "wrong_type", "mechanism"),
    ("login with a 4097-byte token answers too_long token",
     "login", {"jid": "alice@localhost", "token": "t" * 4097}, {}, 400, "too_long", "token"),
    ("login with an empty token answers empty token",
     "login", {"jid": "alice@localhost", "token": ""}, {}, 400, "empty", "token"),
    ("login with a number for token answers wrong_type token",
     "login", {"jid": "alice@localhost", "token": 12345}, {}, 400, "wrong_type", "token"),
    ("login with null for token answers wrong_type token",
     "login", {"jid": "alice@localhost", "token": None}, {}, 400, "wrong_type", "token"),
    ("login with a newline in the token answers control_char token",
     "login", {"jid": "alice@localhost", "token": "ya29.a\nb"}, {}, 400, "control_char", "token"),
    ("login with a token but a JID without localpart answers bad_jid",
     "login", {"jid": "localhost", "token": "oauth"}, {}, 400, "bad_jid", "jid"),

    ("logout with a field answers unknown_field",
     "logout", {"all": True}, {}, 400, "unknown_field", "all"),
    ("logout with an array for a body answers not_object",
     "logout", b"[{}]", {}, 400, "not_object", ANY),
    ("logout sent as text/plain answers 415",
     "logout", {}, {"content_type": "text/plain"}, 415, "unsupported_media_type", ANY),

    ("message without to answers missing_field to",
     "message", {"body": "hi"}, {}, 400, "missing_field", "to"),
    ("message without body or state answers missing_field body",
     "message", {"to": BOB}, {}, 400, "missing_field", "body"),
    ("message with a number for body answers wrong_type body",
     "message", {"to": BOB, "body": 42}, {}, 400, "wrong_type", "body"),
    ("message with true for to answers wrong_type to",
     "message", {"to": True, "body": "hi"}, {}, 400, "wrong_type", "to"),
    ("message with a number for id answers wrong_type id",
     "message", {"to": BOB, "body": "hi", "id": 5}, {}, 400, "wrong_type", "id"),
    ("message with an object for state answers wrong_type state",
     "message", {"to": BOB, "body": "hi", "state": {}}, {}, 400, "wrong_type", "state"),
    ("message to a JID with an empty localpart answers bad_jid",
     "message", {"to": "@localhost", "body": "hi"}, {}, 400, "bad_jid", "to"),
    ("message to a JID with an empty domain answers bad_jid",
     "message", {"to": "bob@", "body": "hi"}, {}, 400, "bad_jid", "to"),
    ("message to a JID with an empty resource answers bad_jid",
     "message", {"to": BOB + "/", "body": "hi"}, {}, 400, "bad_jid", "to"),
    ("message to a JID with a 1024-byte localpart answers bad_jid",
     "message", {"to": "b" * 1024 + "@localhost", "body": "hi"}, {}, 400, "bad_jid", "to"),
    ("message to a JID with a 1024-byte resource answers bad_jid",
     "message", {"to": BOB + "/" + "r" * 1024, "body": "hi"}, {}, 400, "bad_jid", "to"),
    ("message with an empty to answers empty to",
     "message", {"to": "", "body": "hi"}, {}, 400, "empty", "to"),
    ("message with a body over max_message answers too_long body",
     "message", {"to": BOB, "body": "x" * (MAX_MESSAGE + 1)}, {}, 400, "too_long", "body"),
    ("message with a body over max_message in bytes, not characters, answers too_long",
     "message", {"to": BOB, "body": "\u00e9" * (MAX_MESSAGE // 2 + 1)}, {}, 400, "too_long", "body"),
    ("message with an empty body and no state answers empty body",
     "message", {"to": BOB, "body": ""}, {}, 400, "empty", "body"),
    ("message with an id over 128 characters answers too_long id",
     "message", {"to": BOB, "body": "hi", "id": "i" * 129}, {}, 400, "too_long", "id"),
    ("message with an empty id answers empty id",
     "message", {"to": BOB, "body": "hi", "id": ""}, {}, 400, "empty", "id"),
    ("message with a control character in the id answers control_char",
     "message", {"to": BOB, "body": "hi", "id": "a\tb"}, {}, 400, "control_char", "id"),
    ("message with an unknown state answers bad_value state",
     "message", {"to": BOB, "state": "typing"}, {}, 400, "bad_value", "state"),
    ("message with an unknown field answers unknown_field",
     "message", {"to": BOB, "body": "hi", "subject": "s"}, {}, 400, "unknown_field", "subject"),
    ("message with a bell character in the body answers control_char",
     "message", {"to": BOB, "body": "ring\x07"}, {}, 400, "control_char", "body"),
    ("message with a carriage return in the body answers control_char",
     "message", {"to": BOB, "body": "a\r\nb"}, {}, 400, "control_char", "body"),
    ("message with invalid UTF-8 in the body answers bad_utf8",
     "message", b'{"to":"bob@localhost","body":"\xed\xa0\x80"}', {}, 400, "bad_utf8", ANY),
    ("message with a charset parameter is checked as JSON",
     "message", {"body": "hi"}, {"content_type": "application/json; charset=utf-8"},
     400, "missing_field", "to"),
    ("message sent as application/xml answers 415",
     "message", b"<message/>", {"content_type": "application/xml"}, 415, "unsupported_media_type", ANY),

    ("presence without show answers missing_field show",
     "presence", {}, {}, 400, "missing_field", "show"),
    ("presence with an unknown show answers bad_value show",
     "presence", {"show": "busy"}, {}, 400, "bad_value", "show"),
    ("presence with an empty show answers empty show",
     "presence", {"show": ""}, {}, 400, "empty", "show"),
    ("presence with a number for show answers wrong_type show",
     "presence", {"show": 1}, {}, 400, "wrong_type", "show"),
    ("presence with an object for status answers wrong_type status",
     "presence", {"show": "away", "status": {"text": "x"}}, {}, 400, "wrong_type", "status"),
    ("presence with a status over 1024 bytes answers too_long status",
     "presence", {"show": "away", "status": "s" * 1025}, {}, 400, "too_long", "status"),
    ("presence with an escape character in the status answers control_char",
     "presence", {"show": "away", "status": "\x1b[31mred"}, {}, 400, "control_char", "status"),
    ("presence with an unknown field answers unknown_field",
     "presence", {"show": "away", "priority": 5}, {}, 400, "unknown_field", "priority"),

    ("roster with a field answers unknown_field",
     "roster", {"full": True}, {}, 400, "unknown_field", "full"),
    ("roster with broken JSON answers bad_json",
     "roster", b"{", {}, 400, "bad_json", ANY),
    ("roster with trailing garbage after the object answers bad_json",
     "roster", b"{} {}", {}, 400, "bad_json", ANY),
    ("roster nested nine levels deep answers too_deep",
     "roster", nested(9), {}, 400, "too_deep", ANY),
    ("roster nested eight levels deep is not too deep but has an unknown field",
     "roster", nested(8), {}, 400, "unknown_field", "x"),
    ("roster with a number for a body answers not_object",
     "roster", b"17", {}, 400, "not_object", ANY),

    ("register without url answers missing_field url",
     "register", {"kind": "webhook"}, {}, 400, "missing_field", "url"),
    ("register with a number for url answers wrong_type url",
     "register", {"url": 443, "kind": "webhook"}, {}, 400, "wrong_type", "url"),
    ("register with a url over 2048 bytes answers too_long url",
     "register", {"url": "https://e.org/" + "a" * 2040, "kind": "webhook"}, {}, 400, "too_long", "url"),
    ("register with a newline in the url answers control_char",
     "register", {"url": "https://e.org/\nx", "kind": "webhook"}, {}, 400, "control_char", "url"),
    ("register with an unknown kind answers bad_value kind",
     "register", {"url": "https://e.org/p", "kind": "apns"}, {}, 400, "bad_value", "kind"),
    ("register with a number for kind answers wrong_type kind",
     "register", {"url": "https://e.org/p", "kind": 1}, {}, 400, "wrong_type", "kind"),
    ("register with a url but no kind answers missing_field kind",
     "register", {"url": "https://e.org/p"}, {}, 400, "missing_field", "kind"),
    ("register with an http url answers bad_url",
     "register", {"url": "http://e.org/p", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with an ftp url answers bad_url",
     "register", {"url": "ftp://e.org/p", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with userinfo in the url answers bad_url",
     "register", {"url": "https://u:p@e.org/p", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with a fragment in the url answers bad_url",
     "register", {"url": "https://e.org/p#f", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with no host in the url answers bad_url",
     "register", {"url": "https:///p", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with port 0 answers bad_url",
     "register", {"url": "https://e.org:0/p", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with port 70000 answers bad_url",
     "register", {"url": "https://e.org:70000/p", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with a space in the url answers bad_url",
     "register", {"url": "https://e.org/a b", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with an IPv6 zone id answers bad_url",
     "register", {"url": "https://[fe80::1%25eth0]/p", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with non-ASCII in the url answers bad_url",
     "register", {"url": "https://e.org/\u00e9", "kind": "webhook"}, {}, 400, "bad_url", "url"),
    ("register with a string for tiles answers wrong_type tiles",
     "register", {"url": "https://e.org/p", "kind": "mpns", "tiles": "bob@localhost"}, {},
     400, "wrong_type", "tiles"),
    ("register with a full JID in tiles answers bad_jid tiles",
     "register", {"url": "https://e.org/p", "kind": "mpns", "tiles": ["bob@localhost/r"]}, {},
     400, "bad_jid", "tiles"),
    ("register with 33 tiles answers too_long tiles",
     "register", {"url": "https://e.org/p", "kind": "mpns",
                  "tiles": ["u%d@localhost" % i for i in range(33)]}, {}, 400, "too_long", "tiles"),
    ("register with an array for keys answers wrong_type keys",
     "register", {"url": "https://e.org/p", "kind": "webpush", "keys": []}, {}, 400, "wrong_type", "keys"),
    ("register webpush without keys answers missing_field keys",
     "register", {"url": "https://e.org/p", "kind": "webpush"}, {}, 400, "missing_field", "keys"),
    ("register webpush without keys.auth answers missing_field keys.auth",
     "register", {"url": "https://e.org/p", "kind": "webpush", "keys": {"p256dh": "x"}}, {},
     400, "missing_field", "keys.auth"),
    ("register webpush with a p256dh that is not base64url answers bad_value keys.p256dh",
     "register", {"url": "https://e.org/p", "kind": "webpush",
                  "keys": {"p256dh": "not*base64", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, {},
     400, "bad_value", "keys.p256dh"),
    ("register webpush with a 64-byte p256dh answers bad_value keys.p256dh",
     "register", {"url": "https://e.org/p", "kind": "webpush",
                  "keys": {"p256dh": "BA" + "A" * 84, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, {},
     400, "bad_value", "keys.p256dh"),
    ("register webpush with a p256dh off the curve answers bad_value keys.p256dh",
     "register", {"url": "https://e.org/p", "kind": "webpush",
                  "keys": {"p256dh": "BA" + "A" * 85, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, {},
     400, "bad_value", "keys.p256dh"),
    ("register webpush with a 15-byte auth answers bad_value keys.auth",
     "register", {"url": "https://e.org/p", "kind": "webpush",
                  "keys": {"p256dh": P256DH, "auth": "AAAAAAAAAAAAAAAAAAAA"}}, {},
     400, "bad_value", "keys.auth"),
    ("register webpush with an unknown member in keys answers unknown_field keys.x",
     "register", {"url": "https://e.org/p", "kind": "webpush",
                  "keys": {"p256dh": P256DH, "auth": "AAAAAAAAAAAAAAAAAAAAAA", "x": 1}}, {},
     400, "unknown_field", "keys.x"),
    ("register webhook with keys answers unknown_field keys",
     "register", {"url": "https://e.org/p", "kind": "webhook",
                  "keys": {"p256dh": P256DH, "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}, {},
     400, "unknown_field", "keys"),
    ("register webhook where no webhook key is set up answers kind_unavailable",
     "register", {"url": "https://e.org/p", "kind": "webhook"}, {}, 400, "kind_unavailable", "kind"),
    ("register with an unknown field answers unknown_field",
     "register", {"url": "https://e.org/p", "kind": "webhook", "channel": "x"}, {},
     400, "unknown_field", "channel"),

    ("notifications with a string for toast answers wrong_type toast",
     "notifications", {"toast": "yes"}, {}, 400, "wrong_type", "toast"),
    ("notifications with a number for tile answers wrong_type tile",
     "notifications", {"tile": 1}, {}, 400, "wrong_type", "tile"),
    ("notifications with null for secondarytile answers wrong_type secondarytile",
     "notifications", {"secondarytile": None}, {}, 400, "wrong_type", "secondarytile"),
    ("notifications with an unknown field answers unknown_field",
     "notifications", {"sound": True}, {}, 400, "unknown_field", "sound"),

    ("messagequeue with a number for ack answers wrong_type ack",
     "messagequeue", {"ack": 17}, {}, 400, "wrong_type", "ack"),
    ("messagequeue with a word for ack answers bad_value ack",
     "messagequeue", {"ack": "latest"}, {}, 400, "bad_value", "ack"),
    ("messagequeue with three parts in ack answers bad_value ack",
     "messagequeue", {"ack": "1-2-3"}, {}, 400, "bad_value", "ack"),
    ("messagequeue with a 21-digit ack answers bad_value ack",
     "messagequeue", {"ack": "1" * 21 + "-0"}, {}, 400, "bad_value", "ack"),
    ("messagequeue with an empty ack answers empty ack",
     "messagequeue", {"ack": ""}, {}, 400, "empty", "ack"),
    ("messagequeue with an unknown field answers unknown_field",
     "messagequeue", {"since": "0-0"}, {}, 400, "unknown_field", "since"),

    ("otr without jid answers missing_field jid",
     "otr", {"enabled": True}, {}, 400, "missing_field", "jid"),
    ("otr without enabled answers missing_field enabled",
     "otr", {"jid": "bob@localhost"}, {}, 400, "missing_field", "enabled"),
    ("otr with a string for enabled answers wrong_type enabled",
     "otr", {"jid": "bob@localhost", "enabled": "yes"}, {}, 400, "wrong_type", "enabled"),
    ("otr with a JID with two @ answers bad_jid",
     "otr", {"jid": "a@b@c", "enabled": True}, {}, 400, "bad_jid", "jid"),
    ("otr with a control character in the JID answers control_char",
     "otr", {"jid": "bob@local\u0007host", "enabled": True}, {}, 400, "control_char", "jid"),
    ("otr with an unknown field answers unknown_field",
     "otr", {"jid": "bob@localhost", "enabled": True, "until": 5}, {}, 400, "unknown_field", "until"),

    ("crashreport without exception answers missing_field exception",
     "crashreport", {}, {}, 400, "missing_field", "exception"),
    ("crashreport with a number for exception answers wrong_type exception",
     "crashreport", {"exception": 500}, {}, 400, "wrong_type", "exception"),
    ("crashreport over 16384 bytes answers too_long exception",
     "crashreport", {"exception": "x" * 16385}, {}, 400, "too_long", "exception"),
    ("crashreport with a NUL escape answers control_char",
     "crashreport", b'{"exception":"a\\u0000b"}', {}, 400, "control_char", ANY),
    ("crashreport with an unknown field answers unknown_field",
     "crashreport", {"exception": "x", "device": "y"}, {}, 400, "unknown_field", "device"),

    ("rawiq without xml answers missing_field xml",
     "rawiq", {"wait": True}, {}, 400, "missing_field", "xml"),
    ("rawiq with two iqs answers bad_xml",
     "rawiq", {"xml": "<iq type='get' id='a'><ping xmlns='urn:xmpp:ping'/></iq><iq/>"}, {},
     400, "bad_xml", "xml"),
    ("rawiq with a message instead of an iq answers bad_xml",
     "rawiq", {"xml": "<message to='bob@localhost'><body>x</body></message>"}, {},
     400, "bad_xml", "xml"),
    ("rawiq with an unclosed element answers bad_xml",
     "rawiq", {"xml": "<iq type='get'><ping xmlns='urn:xmpp:ping'/>"}, {}, 400, "bad_xml", "xml"),
    ("rawiq with text after the iq answers bad_xml",
     "rawiq", {"xml": "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>junk"}, {},
     400, "bad_xml", "xml"),
    ("rawiq with a DOCTYPE answers bad_xml",
     "rawiq", {"xml": "<!DOCTYPE iq [<!ENTITY a 'aaaa'>]><iq type='get'>&a;</iq>"}, {},
     400, "bad_xml", "xml"),
    ("rawiq with an iq in another namespace answers bad_xml",
     "rawiq", {"xml": "<iq xmlns='jabber:server' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"},
     {}, 400, "bad_xml", "xml"),
    ("rawiq of type result answers bad_xml",
     "rawiq", {"xml": "<iq type='result' id='r1'/>"}, {}, 400, "bad_xml", "xml"),
    ("rawiq of type get without a child answers bad_xml",
     "rawiq", {"xml": "<iq type='get' id='r2'/>"}, {}, 400, "bad_xml", "xml"),
    ("rawiq with a 200-byte id answers bad_xml",
     "rawiq", {"xml": "<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % ("i" * 200)},
     {}, 400, "bad_xml", "xml"),
    ("rawiq with a string for wait answers wrong_type wait",
     "rawiq", {"xml": "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>", "wait": "yes"}, {},
     400, "wrong_type", "wait"),
    ("rawiq with a bell character in the xml answers control_char",
     "rawiq", {"xml": "<iq type='get'>\u0007</iq>"}, {}, 400, "control_char", "xml"),
    ("rawiq over 16384 bytes answers too_long xml",
     "rawiq", {"xml": "<iq type='get'>" + "x" * 16384 + "</iq>"}, {}, 400, "too_long", "xml"),

    ("photo without jid answers missing_field jid",
     "photo", {}, {}, 400, "missing_field", "jid"),
    ("photo with a number for jid answers wrong_type jid",
     "photo", {"jid": 7}, {}, 400, "wrong_type", "jid"),
    ("photo with a list for jid answers wrong_type jid",
     "photo", {"jid": ["bob@localhost"]}, {}, 400, "wrong_type", "jid"),
    ("photo with an empty jid answers empty jid",
     "photo", {"jid": ""}, {}, 400, "empty", "jid"),
    ("photo of a JID with two @ answers bad_jid",
     "photo", {"jid": "bob@x@localhost"}, {}, 400, "bad_jid", "jid"),
    ("photo of a JID with an empty domain answers bad_jid",
     "photo", {"jid": "bob@"}, {}, 400, "bad_jid", "jid"),
    ("photo of a JID with a 1024-byte localpart answers bad_jid",
     "photo", {"jid": "b" * 1024 + "@localhost"}, {}, 400, "bad_jid", "jid"),
    ("photo of a JID over 3071 bytes answers too_long jid",
     "photo", {"jid": "b@" + "d" * 3070}, {}, 400, "too_long", "jid"),
    ("photo with a control character in the JID answers control_char",
     "photo", {"jid": "bob@local\x00host"}, {}, 400, "control_char", ANY),
    ("photo with a tab in the JID answers control_char jid",
     "photo", {"jid": "bob@local\thost"}, {}, 400, "control_char", "jid"),
    ("photo with an unknown field answers unknown_field",
     "photo", {"jid": BOB, "size": 64}, {}, 400, "unknown_field", "size"),
    ("photo with broken JSON answers bad_json",
     "photo", b'{"jid":', {}, 400, "bad_json", ANY),
    ("photo with an array for a body answers not_object",
     "photo", b'["bob@localhost"]', {}, 400, "not_object", ANY),
    ("photo sent as text/plain answers 415",
     "photo", {"jid": BOB}, {"content_type": "text/plain"}, 415, "unsupported_media_type", ANY),

    ("jingle with a field answers unknown_field",
     "jingle", {"transport": "udp"}, {}, 400, "unknown_field", "transport"),
    ("jingle with an array for a body answers not_object",
     "jingle", b"[]", {}, 400, "not_object", ANY),
    ("jingle with broken JSON answers bad_json",
     "jingle", b"{,}", {}, 400, "bad_json", ANY),
    ("jingle sent as text/plain answers 415",
     "jingle", {}, {"content_type": "text/plain"}, 415, "unsupported_media_type", ANY),

    ("contact without jid answers missing_field jid",
     "contact", {"action": "add"}, {}, 400, "missing_field", "jid"),
    ("contact without action answers missing_field action",
     "contact", {"jid": BOB}, {}, 400, "missing_field", "action"),
    ("contact with a number for jid answers wrong_type jid",
     "contact", {"jid": 1, "action": "add"}, {}, 400, "wrong_type", "jid"),
    ("contact with an empty jid answers empty jid",
     "contact", {"jid": "", "action": "add"}, {}, 400, "empty", "jid"),
    ("contact with a JID with two @ answers bad_jid",
     "contact", {"jid": "a@b@localhost", "action": "add"}, {}, 400, "bad_jid", "jid"),
    ("contact with a JID with an empty resource answers bad_jid",
     "contact", {"jid": BOB + "/", "action": "remove"}, {}, 400, "bad_jid", "jid"),
    ("contact with a JID with a 1024-byte domain answers bad_jid",
     "contact", {"jid": "bob@" + "d" * 1024, "action": "add"}, {}, 400, "bad_jid", "jid"),
    ("contact with a space in the JID answers bad_jid",
     "contact", {"jid": "bob smith@localhost", "action": "add"}, {}, 400, "bad_jid", "jid"),
    ("contact with a bell character in the JID answers control_char jid",
     "contact", {"jid": "bob@local\x07host", "action": "add"}, {}, 400, "control_char", "jid"),
    ("contact with an unknown action answers bad_value action",
     "contact", {"jid": BOB, "action": "block"}, {}, 400, "bad_value", "action"),
    ("contact with an action in upper case answers bad_value action",
     "contact", {"jid": BOB, "action": "Add"}, {}, 400, "bad_value", "action"),
    ("contact with an empty action answers empty action",
     "contact", {"jid": BOB, "action": ""}, {}, 400, "empty", "action"),
    ("contact with a number for action answers wrong_type action",
     "contact", {"jid": BOB, "action": 1}, {}, 400, "wrong_type", "action"),
    ("contact with a list for action answers wrong_type action",
     "contact", {"jid": BOB, "action": ["add"]}, {}, 400, "wrong_type", "action"),
    ("contact rename without name answers missing_field name",
     "contact", {"jid": BOB, "action": "rename"}, {}, 400, "missing_field", "name"),
    ("contact rename with groups but no name answers missing_field name",
     "contact", {"jid": BOB, "action": "rename", "groups": ["Friends"]}, {},
     400, "missing_field", "name"),
    ("contact regroup without groups answers missing_field groups",
     "contact", {"jid": BOB, "action": "regroup"}, {}, 400, "missing_field", "groups"),
    ("contact regroup with a name but no groups answers missing_field groups",
     "contact", {"jid": BOB, "action": "regroup", "name": "Bob"}, {},
     400, "missing_field", "groups"),
    ("contact with a number for name answers wrong_type name",
     "contact", {"jid": BOB, "action": "rename", "name": 5}, {}, 400, "wrong_type", "name"),
    ("contact with null for name answers wrong_type name",
     "contact", {"jid": BOB, "action": "rename", "name": None}, {}, 400, "wrong_type", "name"),
    ("contact with a 1024-byte name answers too_long name",
     "contact", {"jid": BOB, "action": "rename", "name": "n" * 1024}, {}, 400, "too_long", "name"),
    ("contact with a name over 1023 bytes in bytes, not characters, answers too_long name",
     "contact", {"jid": BOB, "action": "rename", "name": "\u00e9" * 512}, {},
     400, "too_long", "name"),
    ("contact with a newline in the name answers control_char name",
     "contact", {"jid": BOB, "action": "rename", "name": "Bob\nSmith"}, {},
     400, "control_char", "name"),
    ("contact with an escape character in the name answers control_char name",
     "contact", {"jid": BOB, "action": "add", "name": "\x1b[31mBob"}, {},
     400, "control_char", "name"),
    ("contact with a string for groups answers wrong_type groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": "Friends"}, {},
     400, "wrong_type", "groups"),
    ("contact with an object for groups answers wrong_type groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": {"Friends": True}}, {},
     400, "wrong_type", "groups"),
    ("contact with null for groups answers wrong_type groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": None}, {},
     400, "wrong_type", "groups"),
    ("contact with a number in groups answers wrong_type groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": ["Friends", 2]}, {},
     400, "wrong_type", "groups"),
    ("contact with null in groups answers wrong_type groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": [None]}, {},
     400, "wrong_type", "groups"),
    ("contact with a list inside groups answers wrong_type groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": [["Friends"]]}, {},
     400, "wrong_type", "groups"),
    ("contact with 33 groups answers too_long groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": ["g%d" % i for i in range(33)]}, {},
     400, "too_long", "groups"),
    ("contact with an empty group answers empty groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": ["Friends", ""]}, {},
     400, "empty", "groups"),
    ("contact with a 1024-byte group answers too_long groups",
     "contact", {"jid": BOB, "action": "add", "groups": ["g" * 1024]}, {},
     400, "too_long", "groups"),
    ("contact with a newline in a group answers control_char groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": ["a\nb"]}, {},
     400, "control_char", "groups"),
    ("contact with a delete character in a group answers control_char groups",
     "contact", {"jid": BOB, "action": "regroup", "groups": ["Friends\x7f"]}, {},
     400, "control_char", "groups"),
    ("contact with an unknown field answers unknown_field",
     "contact", {"jid": BOB, "action": "add", "ask": True}, {}, 400, "unknown_field", "ask"),
    ("contact with invalid UTF-8 in the name answers bad_utf8",
     "contact", b'{"jid":"bob@localhost","action":"rename","name":"\xc3"}', {}, 400, "bad_utf8", ANY),
    ("contact sent as text/plain answers 415",
     "contact", {"jid": BOB, "action": "add"}, {"content_type": "text/plain"},
     415, "unsupported_media_type", ANY),

    ("key with a field answers unknown_field",
     "key", {"format": "hex"}, {}, 400, "unknown_field", "format"),
    ("key with broken JSON answers bad_json",
     "key", b"{]", {}, 400, "bad_json", ANY),
]


# GET {base}/images/<sha1>: answered by the handler from Redis, no token.
# (The sealed cache itself is it_images.py's.) WEB: a path a web server
# normalises or refuses itself (404/403/400 of its own) before routing; the
# handler answers those 400 bad_hash when they reach it (it_images.py sends
# them straight to its socket), and no row may ever answer an image.
UNKNOWN_HASH = hashlib.sha1(b"nobody's photo").hexdigest()
PLACEHOLDER = "placeholder"
WEB = "refused by the web server or 400 bad_hash"
IMAGE_GETS = [
    # sentence, method, path, expected: PLACEHOLDER, WEB, or (status, code)
    ("GET of an unknown well-formed hash answers the 1x1 placeholder",
     "GET", "/images/" + UNKNOWN_HASH, PLACEHOLDER),
    ("GET of an unknown hash in upper case answers the placeholder",
     "GET", "/images/" + UNKNOWN_HASH.upper(), PLACEHOLDER),
    ("GET of an unknown hash with a query string answers the placeholder",
     "GET", "/images/" + UNKNOWN_HASH + "?s=64", PLACEHOLDER),
    ("GET /images/../etc/passwd serves no file",
     "GET", "/images/../etc/passwd", WEB),
    ("GET /images/%2e%2e%2f serves no file",
     "GET", "/images/%2e%2e%2f", WEB),
    ("GET /images/%2e%2e%2f<hash> serves no file",
     "GET", "/images/%2e%2e%2f" + UNKNOWN_HASH, WEB),
    ("GET /images/<hash>/../<hash> serves no file",
     "GET", "/images/" + UNKNOWN_HASH + "/../" + UNKNOWN_HASH, WEB),
    ("GET with an encoded slash inside the hash serves no file",
     "GET", "/images/" + UNKNOWN_HASH[:20] + "%2f" + UNKNOWN_HASH[23:], WEB),
    ("GET with an encoded NUL serves no file",
     "GET", "/images/%00" + UNKNOWN_HASH[:37], WEB),
    ("GET with a double slash before the hash serves no file",
     "GET", "/images//" + UNKNOWN_HASH, WEB),
    ("GET of 39 hex digits answers 400 bad_hash",
     "GET", "/images/" + UNKNOWN_HASH[:39], (400, "bad_hash")),
    ("GET of 41 hex digits answers 400 bad_hash",
     "GET", "/images/" + UNKNOWN_HASH + "a", (400, "bad_hash")),
    ("GET of 40 characters that are not hex answers 400 bad_hash",
     "GET", "/images/" + "g" * 40, (400, "bad_hash")),
    ("GET of a hash with a 0x prefix answers 400 bad_hash",
     "GET", "/images/0x" + UNKNOWN_HASH[:38], (400, "bad_hash")),
    ("GET of a hash with a trailing slash answers 400 bad_hash",
     "GET", "/images/" + UNKNOWN_HASH + "/", (400, "bad_hash")),
    ("GET of a hash with an encoded space after it answers 400 bad_hash",
     "GET", "/images/" + UNKNOWN_HASH + "%20", (400, "bad_hash")),
    ("GET of a hash with a file extension answers 400 bad_hash",
     "GET", "/images/" + UNKNOWN_HASH + ".png", (400, "bad_hash")),
    ("GET of /images/ alone answers 400 bad_hash",
     "GET", "/images/", (400, "bad_hash")),
    ("GET with the hash only in the query string answers 400 bad_hash",
     "GET", "/images/?" + UNKNOWN_HASH, (400, "bad_hash")),
    ("POST to /images/<hash> answers 405",
     "POST", "/images/" + UNKNOWN_HASH, (405, "method_not_allowed")),
    ("DELETE of /images/<hash> answers 405",
     "DELETE", "/images/" + UNKNOWN_HASH, (405, "method_not_allowed")),
    ("POST to /images/ with a bad hash answers 405 (the method first)",
     "POST", "/images/xyz", (405, "method_not_allowed")),
]


def png_1x1(data):
    """True when data is a well-formed PNG (signature, every chunk's CRC,
    IHDR first and IEND last, pixels that inflate to the size IHDR names)
    of 1x1 pixels."""
    if not isinstance(data, bytes) or data[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    pos, chunks = 8, []
    while pos + 12 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body, crc = data[pos + 8:pos + 8 + n], data[pos + 8 + n:pos + 12 + n]
        if len(body) != n or len(crc) != 4 or \
                struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xffffffff:
            return False
        chunks.append((kind, body))
        pos += 12 + n
    if pos != len(data) or not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        return False
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    try:
        pixels = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    except zlib.error:
        return False
    return (width, height) == (1, 1) and depth == 8 and channels is not None and \
        len(pixels) == 1 + channels


def test_images(st):
    for sentence, method, path, want in IMAGE_GETS:
        body = b"{}" if method == "POST" else None
        got = st.call(None, body, method=method, path=path, content_type=None)
        status, headers, answer = got
        if want == PLACEHOLDER:
            tap.ok(status == 200 and headers.get("content-type") == "image/png"
                   and png_1x1(answer) and headers.get("x-content-type-options") == "nosniff"
                   and headers.get("cache-control") == "public, max-age=300",
                   sentence, "%s %r %r" % (status, headers, answer))
        elif want == WEB:
            ours = isinstance(answer, dict)
            tap.ok((ours and status == 400 and error_of(answer).get("code") == "bad_hash")
                   or (not ours and status in (400, 403, 404)
                       and not headers.get("content-type", "").startswith("image/")),
                   sentence, "%s %r %r" % (status, headers, answer))
        else:
            expect_error(got, want[0], want[1], None, sentence)
            if status == 405:
                tap.is_(headers.get("allow"), "GET", "%s names GET in its Allow header" % sentence)


def test_health(st):
    status, _, answer = st.call(None, None, method="GET", path="/health", content_type=None)
    tap.is_((status, answer), (200, {"redis": "ok", "daemons": 1}),
            "health answers 200 with redis ok and one daemon")


def test_login_wrong_password(st):
    got = st.call("login", {"jid": "alice@" + DOMAIN, "password": "not-alice-pw"})
    expect_error(got, 401, "auth_failed", ANY, "login with a wrong password answers 401 auth_failed")


def test_login(st):
    status, _, answer = st.call("login", {"jid": "alice@" + DOMAIN, "password": "alice-pw",
                                          "resource": "phone"})
    if not tap.ok(status == 200 and isinstance(answer, dict), "login as alice answers 200",
                  "%s %r" % (status, answer)):
        tap.bail_out("cannot go on without a session")
    token = answer.get("token", "")
    tap.ok(isinstance(token, str) and TOKEN_RE.match(token),
           "the token is 43 base64url characters", repr(token))
    jid = answer.get("jid", "")
    tap.ok(isinstance(jid, str) and jid.startswith("alice@%s/" % DOMAIN),
           "the answer names the bound full JID", repr(jid))
    tap.ok(isinstance(answer.get("url"), str) and answer["url"].startswith(st.url),
           "the answer names the URL to use next", repr(answer.get("url")))
    st.sessions[token] = answer
    return token, jid


def test_redis_holds_no_token(st, token):
    import base64
    raw = base64.urlsafe_b64decode(token + "=")
    dump = st.redis_dump()
    found = []
    for key, values in dump.items():
        for blob in [key] + values:
            for needle, what in ((token.encode(), "token"), (raw, "raw token bytes"),
                                 (raw.hex().encode(), "token hex"),
                                 (b"alice-pw", "password")):
                if needle in blob:
                    found.append("%s in %r" % (what, key))
    tap.ok(not found, "Redis holds no copy of the token or the password", "\n".join(found))
    token_keys = [k for k in dump if re.match(rb"^tp:token:[0-9a-f]{64}$", k)]
    tap.ok(token_keys, "Redis holds the token's hash under tp:token:<64 hex>",
           "keys: %r" % sorted(dump)[:20])
    hashes = token_hashes(token)
    how = [what for what, h in hashes.items() if ("tp:token:" + h).encode() in token_keys]
    tap.diag("token key is BLAKE2b-256 of the token's %s" % (how[0] if how else "(neither text nor bytes)"))


def test_message(st, token, jid, bob):
    body = "Hello Bob, this is message one " + uuid.uuid4().hex
    status, _, answer = st.call("message", {"to": BOB, "body": body, "id": "m-1",
                                            "state": "active"}, token=token)
    tap.is_((status, answer), (200, {"id": "m-1"}), "a message answers 200 with its id")
    got = bob.wait_message(lambda m: m["body"] == body, 10)
    tap.ok(got is not None, "bob receives the message")
    if got:
        tap.is_(got["from"], jid, "the message comes from alice's bound JID")
        tap.is_(got["type"], "chat", "the message is of type chat")
        tap.is_(got["state"], "active", "the message carries the chat state active")

    status, _, answer = st.call("message", {"to": BOB, "body": body, "id": "m-1",
                                            "state": "active"}, token=token)
    tap.is_((status, answer), (200, {"id": "m-1"}), "the same id again answers 200 with that id")
    time.sleep(1.5)
    copies = [m for m in bob.messages() if m["body"] == body]
    tap.is_(len(copies), 1, "bob receives a message sent twice with one id exactly once")

    # A retry can pass the handlers' check before the first request's id
    # is written to Redis (both in flight at once); the daemon remembers
    # the ids it sent lately. Without the key the retry reaches it.
    body2 = "Sent twice, the second time past the handlers " + uuid.uuid4().hex
    status, _, answer = st.call("message", {"to": BOB, "body": body2, "id": "m-2"}, token=token)
    keys = st.redis("KEYS", "tp:idem:*:m-2")
    tap.is_((status, answer, len(keys)), (200, {"id": "m-2"}, 1),
            "a sent message's id is kept in Redis under tp:idem:")
    for k in keys:
        st.redis("DEL", k)
    status, _, answer = st.call("message", {"to": BOB, "body": body2, "id": "m-2"}, token=token)
    tap.is_((status, answer), (200, {"id": "m-2"}),
            "the retry that reached the daemon answers 200 with that id")
    bob.wait_message(lambda m: m["body"] == body2, 10)
    time.sleep(1.5)
    copies = [m for m in bob.messages() if m["body"] == body2]
    tap.is_(len(copies), 1, "bob receives it once: the daemon did not send it again")

    status, _, answer = st.call("message", {"to": BOB, "state": "composing"}, token=token)
    tap.ok(status == 200 and isinstance(answer, dict) and isinstance(answer.get("id"), str),
           "a chat state without a body answers 200 with an id", "%s %r" % (status, answer))
    got = bob.wait_message(lambda m: m["state"] == "composing", 10)
    tap.ok(got is not None and got["body"] is None,
           "bob receives the composing state without a body", repr(got))

    body = "\u00e9" * (MAX_MESSAGE // 2)  # exactly max_message bytes
    status, _, answer = st.call("message", {"to": BOB, "body": body}, token=token)
    tap.is_(status, 200, "a body of exactly max_message bytes is accepted")
    tap.ok(bob.wait_message(lambda m: m["body"] == body, 10) is not None,
           "bob receives the longest message intact")

    body = "two lines\n\tand a tab " + uuid.uuid4().hex
    status, _, _ = st.call("message", {"to": BOB, "body": body}, token=token)
    tap.is_(status, 200, "a body with a newline and a tab is accepted")
    tap.ok(bob.wait_message(lambda m: m["body"] == body, 10) is not None,
           "bob receives the newline and the tab unchanged")


def test_presence(st, token, jid, bob):
    t0 = time.time()
    status, _, answer = st.call("presence", {"show": "away", "status": "in a meeting"}, token=token)
    tap.is_((status, answer), (200, {}), "presence away with a status answers 200 {}")
    got = bob.wait_presence(lambda p: p["from"] == jid and p["show"] == "away" and p["at"] >= t0, 10)
    tap.ok(got is not None and got["status"] == "in a meeting",
           "bob sees alice away with her status", repr(got))
    t0 = time.time()
    status, _, answer = st.call("presence", {"show": "available"}, token=token)
    tap.is_((status, answer), (200, {}), "presence available answers 200 {}")
    got = bob.wait_presence(lambda p: p["from"] == jid and p["show"] is None
                            and p["type"] == "available" and p["at"] >= t0, 10)
    tap.ok(got is not None, "bob sees alice available again", repr(bob.presences()[-3:]))


def roster_bob(st, token, pred, timeout=10):
    """Polls the roster until bob's entry satisfies pred (bounded)."""
    answer, entry = None, None
    deadline = time.monotonic() + timeout
    for _ in range(100):
        status, _, answer = st.call("roster", {}, token=token)
        if status == 200 and isinstance(answer, dict):
            entries = [c for c in answer.get("contacts", []) if c.get("jid") == BOB]
            entry = entries[0] if entries else None
            if entry and pred(entry):
                return status, answer, entry
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return status, answer, entry


def test_roster(st, token, bob):
    bob.set_presence(show="dnd", status="testing talkproxy")

    def has_dnd(entry):
        s = entry.get("sessions", {}).get(bob.jid)
        return isinstance(s, dict) and s.get("show") == "dnd"
    status, answer, entry = roster_bob(st, token, has_dnd)
    tap.is_(status, 200, "roster answers 200")
    tap.ok(isinstance(answer, dict) and isinstance(answer.get("contacts"), list),
           "roster answers a list of contacts", repr(answer))
    if not tap.ok(entry is not None, "the roster lists bob", repr(answer)):
        return
    tap.is_(entry.get("name"), "Bob", "bob's entry is named Bob")
    tap.is_(entry.get("groups"), ["Friends"], "bob's entry is in the group Friends")
    tap.is_(entry.get("subscription"), "both", "bob's subscription is both")
    tap.ok("photo" in entry and entry["photo"] is None, "bob's photo is null", repr(entry))
    session = entry.get("sessions", {}).get(bob.jid)
    tap.ok(isinstance(session, dict), "bob's sessions include his full JID", repr(entry))
    if isinstance(session, dict):
        tap.is_(session.get("show"), "dnd", "bob's session shows dnd")
        tap.is_(session.get("status"), "testing talkproxy", "bob's session carries his status")
        tap.ok("caps" in session, "bob's session has a caps member", repr(session))


def test_incoming_logged_without_body(st, bob):
    msg_id = "bob-to-alice-" + uuid.uuid4().hex
    body = "a secret the log must not see " + uuid.uuid4().hex
    bob.send_message("alice@" + DOMAIN, body, id=msg_id)
    deadline = time.monotonic() + 5
    for _ in range(100):
        if msg_id in st.daemon_log() or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    log = st.daemon_log()
    tap.ok(msg_id in log, "the daemon logs an incoming message's id")
    tap.ok(body not in log and body.split()[-1] not in log,
           "the daemon log does not contain the message body")


def test_routes(st, token):
    expect_error(st.call("nope", {}, token=token), 404, "not_found", ANY,
                 "POST to an unknown call answers 404 not_found")
    expect_error(st.call("nope", None, method="GET", content_type=None), 404, "not_found", ANY,
                 "GET of an unknown call answers 404 not_found")
    for method, name, path, allow in (("GET", "login", None, "POST"),
                                      ("PUT", "message", None, "POST"),
                                      ("DELETE", "roster", None, "POST"),
                                      ("POST", None, "/health", "GET")):
        got = st.call(name, {} if method != "GET" else None, token=token, method=method, path=path)
        where = path or "/v1/" + name
        expect_error(got, 405, "method_not_allowed", ANY,
                     "%s %s answers 405 method_not_allowed" % (method, where))
        allowed = [m.strip() for m in got[1].get("allow", "").split(",")]
        tap.ok(allow in allowed, "%s %s names %s in its Allow header" % (method, where, allow),
               repr(got[1]))


def test_tokens(st, token):
    expect_error(st.call("roster", {}), 401, "missing_token", ANY,
                 "roster without a token answers 401 missing_token")
    expect_error(st.call("roster", {}, token="abc"), 401, "bad_token", ANY,
                 "a short token answers 401 bad_token")
    expect_error(st.call("roster", {}, token=token + "A"), 401, "bad_token", ANY,
                 "a 44-character token answers 401 bad_token")
    expect_error(st.call("roster", {}, token="+" * 43), 401, "bad_token", ANY,
                 "a token with characters outside base64url answers 401 bad_token")
    other = ("A" if token[0] != "A" else "B") + token[1:]
    expect_error(st.call("roster", {}, token=other), 401, "unknown_token", ANY,
                 "a well-formed token nobody was given answers 401 unknown_token")
    expect_error(st.call("roster", {"token": "abc"}), 401, "bad_token", ANY,
                 "a malformed token in the body answers 401 bad_token")
    status, _, answer = st.call("roster", {"token": token})
    tap.ok(status == 200 and "contacts" in answer, "the token is accepted in the body",
           "%s %r" % (status, answer))
    status, _, _ = st.call("roster", {}, headers={"Authorization": "bearer " + token})
    tap.is_(status, 200, "the Bearer scheme is matched without regard to case")


def live_pids(st):
    """The daemon and the handler processes (when lighttpd spawns them)."""
    web = st.procs.get("lighttpd")
    return (st.daemon_pid(), sorted(children(web.pid)) if web else [])


def test_bad_requests(st, token, jid, bob):
    before = live_pids(st)
    for sentence, call, body, options, status, code, field in BAD_REQUESTS:
        tok = token if call != "login" else None
        got = st.call(call, body, token=tok, **options)
        expect_error(got, status, code, field, sentence)
        if got[0] >= 500:
            tap.diag("5xx for bad input: %s" % sentence)
    status, _, _ = st.call("roster", b"x" * (1024 * 1024), token=token)
    tap.is_(status, 413, "a 1 MiB body is refused with 413 before any handler reads it")

    status, _, answer = st.call("roster", {}, token=token)
    tap.ok(status == 200 and isinstance(answer, dict) and "contacts" in answer,
           "after every bad request a good roster request still works", "%s %r" % (status, answer))
    tap.is_(live_pids(st), before,
            "no process died or was restarted over %d bad requests" % len(BAD_REQUESTS))
    body = "still here " + uuid.uuid4().hex
    status, _, _ = st.call("message", {"to": BOB, "body": body}, token=token)
    got = bob.wait_message(lambda m: m["body"] == body, 10)
    tap.ok(status == 200 and got is not None and got["from"] == jid,
           "alice's session is untouched by the bad requests", repr(got))


def test_login_again(st, token, jid):
    status, _, answer = st.call("login", {"jid": "alice@" + DOMAIN, "password": "alice-pw"})
    tap.is_(status, 200, "logging in again while the session lives answers 200")
    token2 = answer.get("token") if isinstance(answer, dict) else None
    tap.is_(answer.get("jid") if isinstance(answer, dict) else None, jid,
            "logging in again reuses the session (same bound JID)")
    tap.ok(token2 and TOKEN_RE.match(token2), "the second login gives a token", repr(answer))
    for name, t in (("first", token), ("second", token2)):
        status, _, _ = st.call("roster", {}, token=t)
        tap.is_(status, 200, "the %s token works" % name)
    return token2


def test_crashreport(st, token):
    trace = "Traceback:\n\tat Foo.bar(Foo.java:42)\n\u00e9t\u00e9"
    status, _, answer = st.call("crashreport", {"exception": trace}, token=token)
    tap.is_((status, answer), (200, {}), "crashreport answers 200 {}")
    first = json.loads(st.redis("LINDEX", "tp:crashreports", 0))
    tap.ok(first.get("exception") == trace and first.get("jid") == "alice@" + DOMAIN,
           "the report is kept with its newlines and the user's JID", repr(first))
    for i in range(1005):
        st.call("crashreport", {"exception": "report %d" % i}, token=token)
    tap.is_(st.redis("LLEN", "tp:crashreports"), 1000, "the list keeps the newest 1000")
    newest = json.loads(st.redis("LINDEX", "tp:crashreports", 0))
    tap.is_(newest.get("exception"), "report 1004", "newest first")
    tap.ok("report 1004" not in st.daemon_log(), "reports never reach the log")


def test_rawiq(st, token, jid):
    iq = "<iq type='get' to='localhost' id='ver-1'><query xmlns='jabber:iq:version'/></iq>"
    status, _, answer = st.call("rawiq", {"xml": iq, "wait": True}, token=token)
    reply = answer.get("xml", "") if isinstance(answer, dict) else ""
    tap.ok(status == 200 and answer.get("id") == "ver-1" and "type=\"result\"" in reply
           and "jabber:iq:version" in reply and "Prosody" in reply,
           "rawiq with wait returns the server's version reply", repr(answer))
    spoof = ("<iq type='get' to='localhost' from='bob@localhost/evil' id='ver-2'>"
             "<query xmlns='jabber:iq:version'/></iq>")
    status, _, answer = st.call("rawiq", {"xml": spoof, "wait": True}, token=token)
    reply = answer.get("xml", "") if isinstance(answer, dict) else ""
    tap.ok(status == 200 and ("to=\"%s\"" % jid) in reply and "bob@localhost/evil" not in reply,
           "a from given by the client is dropped: the reply comes to alice", reply)
    status, _, answer = st.call("rawiq", {"xml": "<iq type='get' to='localhost'>"
                                          "<query xmlns='urn:example:none'/></iq>",
                                          "wait": True}, token=token)
    tap.ok(status == 200 and "type=\"error\"" in answer.get("xml", ""),
           "an error reply is returned as it came", repr(answer))
    status, _, answer = st.call("rawiq", {"xml": "<iq type='get' to='localhost'>"
                                          "<ping xmlns='urn:xmpp:ping'/></iq>"}, token=token)
    tap.ok(status == 200 and len(answer.get("id", "")) == 32 and "xml" not in answer,
           "without wait it answers at once with the id it gave the iq", repr(answer))


def test_logout(st, token, token2, jid, bob):
    status, _, answer = st.call("logout", {}, token=token)
    tap.is_((status, answer), (200, {}), "logout answers 200 {}")
    expect_error(st.call("roster", {}, token=token), 401, "unknown_token", ANY,
                 "after logout the token answers 401 unknown_token")
    if token2:
        expect_error(st.call("roster", {}, token=token2), 401, "unknown_token", ANY,
                     "after logout the session's other token answers 401 unknown_token")
    got = bob.wait_presence(lambda p: p["from"] == jid and p["type"] == "unavailable", 10)
    tap.ok(got is not None, "bob sees alice go offline after logout")
    leftover = [k for k in st.redis_dump() if k.startswith(b"tp:token:")]
    tap.is_(leftover, [], "Redis holds no token hash after the only session logged out")


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack() as st:
        tap.on_failure(st.dump_logs)
        bob = st.peer("bob")
        test_health(st)
        test_login_wrong_password(st)
        token, jid = test_login(st)
        test_redis_holds_no_token(st, token)
        test_message(st, token, jid, bob)
        test_presence(st, token, jid, bob)
        test_roster(st, token, bob)
        test_incoming_logged_without_body(st, bob)
        test_routes(st, token)
        test_images(st)
        test_tokens(st, token)
        test_bad_requests(st, token, jid, bob)
        test_crashreport(st, token)
        test_rawiq(st, token, jid)
        token2 = test_login_again(st, token, jid)
        test_logout(st, token, token2, jid, bob)
        tap.done()


if __name__ == "__main__":
    main()
