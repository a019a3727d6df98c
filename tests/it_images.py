#!/usr/bin/python3
"""
it_images.py: what the handler serves itself from the sealed avatar cache
(GET {base}/images/<sha1>), and how it turns the daemon's photo answer into
image bytes. Images are sealed here independently of our C code (hashlib's
keyed BLAKE2b and PyNaCl's XChaCha20-Poly1305, derived as common/avatar.c
derives), stored in Redis, and fetched through lighttpd; raw REQUEST_URIs a
web server would never pass on are sent straight to the handler's FastCGI
socket. The photo call is answered by a stand-in daemon on the bus, so the
handler's side of it is tested whatever the real daemon does. Prints TAP.
"""

import base64
import glob
import hashlib
import json
import os
import socket
import struct
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import tap  # noqa: E402
from harness.stack import (Stack, RedisError, _resp_encode, _resp_read,  # noqa: E402
                           http_call, redis_call)

AVATAR_PREFIX = "tp:avatar:"  # WIRE_KEY_AVATAR_PREFIX
# avatar.c's context: a 32-byte BLAKE2b key, the text zero-padded.
AVATAR_CONTEXT = b"talkproxy avatar cache v1".ljust(32, b"\0")
NONCE = 24
MAX_BODY = 65536  # http.max_body default
UNKNOWN = "0123456789abcdef0123456789abcdef01234567"
LONG_CACHE = "public, max-age=604800, immutable"
SHORT_CACHE = "public, max-age=300"
CSP = "default-src 'none'"


# --- the cache's derivations, written from common/seal.c and avatar.c

def digest2(a, b):
    """seal_digest2(): keyed BLAKE2b-256 over a, its NUL, then b."""
    return hashlib.blake2b(a.encode() + b"\0" + b.encode(), key=AVATAR_CONTEXT,
                           digest_size=32).digest()


def redis_key(hexhash):
    return AVATAR_PREFIX + digest2("name", hexhash).hex()


def seal(hexhash, data, nonce=None):
    """seal_box(): nonce || XChaCha20-Poly1305-IETF(data), the Redis key
    as associated data, the key derived from the hash."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt
    nonce = nonce or os.urandom(NONCE)
    return nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(
        data, redis_key(hexhash).encode(), nonce, digest2("key", hexhash))


def store(st, hexhash, blob, under=None):
    st.redis("SET", redis_key(under or hexhash), blob)


# --- images

def png(width, height, rgba=(255, 0, 0, 255)):
    """A real PNG: one colour, 8-bit RGBA."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    row = b"\0" + bytes(rgba) * width
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


def png_size(data):
    """(width, height) of a well-formed PNG (every CRC right, the pixels
    inflate to the size IHDR names), else None."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos, chunks = 8, []
    while pos + 12 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = data[pos + 8 + n:pos + 12 + n]
        if len(body) != n or len(crc) != 4 or \
                struct.unpack(">I", crc)[0] != zlib.crc32(kind + body) & 0xffffffff:
            return None
        chunks.append((kind, body))
        pos += 12 + n
    if pos != len(data) or not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        return None
    w, h, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if depth != 8 or not channels:
        return None
    try:
        pixels = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    except zlib.error:
        return None
    return (w, h) if len(pixels) == h * (1 + w * channels) else None


IMAGES = [
    # sentence, bytes, content type the handler must name
    ("a PNG", png(3, 2), "image/png"),
    ("a JPEG", b"\xff\xd8\xff\xe0\0\x10JFIF\0" + os.urandom(64) + b"\xff\xd9", "image/jpeg"),
    ("a GIF", b"GIF89a\1\0\1\0\x80\0\0" + os.urandom(16) + b";", "image/gif"),
    ("a WebP", b"RIFF\x24\0\0\0WEBPVP8 " + os.urandom(32), "image/webp"),
]
SVG = (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'>"
       b"<script>alert(2)</script></svg>")


def sha1(data):
    return hashlib.sha1(data).hexdigest()


def get(st, path):
    return http_call(st.ports["lighttpd"], "GET", path)


def served_headers(headers, cache, name):
    tap.is_(headers.get("x-content-type-options"), "nosniff", name + ": X-Content-Type-Options nosniff")
    tap.is_(headers.get("content-security-policy"), CSP, name + ": a CSP that allows nothing")
    tap.is_(headers.get("cache-control"), cache, name + ": Cache-Control " + cache)


def expect_placeholder(got, name):
    status, headers, body = got
    good = status == 200 and headers.get("content-type") == "image/png" and \
        isinstance(body, bytes) and png_size(body) == (1, 1)
    tap.ok(good, name + ": 200 with the 1x1 PNG placeholder",
           "%s %r %r" % (status, headers, body[:80] if isinstance(body, bytes) else body))
    served_headers(headers, SHORT_CACHE, name)


def expect_json_error(got, status, code, name):
    st_, headers, body = got
    err = body.get("error", {}) if isinstance(body, dict) else {}
    tap.ok(st_ == status and err.get("code") == code and err.get("message"),
           "%s: %d %s" % (name, status, code), "%s %r %r" % (st_, headers, body))


# --- FastCGI, straight to the handler's socket

def fcgi_record(kind, content=b"", rid=1):
    return struct.pack(">BBHHBB", 1, kind, rid, len(content), 0, 0) + content


def fcgi_pair(name, value):
    def length(n):
        return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)
    name, value = name.encode(), value.encode("latin-1")
    return length(len(name)) + length(len(value)) + name + value


def fcgi_call(sock_path, method, uri, body=b"", content_type=None, timeout=10.0):
    """One FastCGI request (responder role, connection closed after it).
    Returns (status, headers with lower-case names, body bytes)."""
    params = {"REQUEST_METHOD": method, "REQUEST_URI": uri,
              "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
              "CONTENT_LENGTH": str(len(body))}
    if content_type:
        params["CONTENT_TYPE"] = content_type
    pairs = b"".join(fcgi_pair(k, v) for k, v in params.items())
    out = fcgi_record(1, struct.pack(">HB5x", 1, 0)) + fcgi_record(4, pairs) + fcgi_record(4)
    for i in range(0, len(body), 32768):
        out += fcgi_record(5, body[i:i + 32768])
    out += fcgi_record(5)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        try:
            s.sendall(out)
        except (BrokenPipeError, ConnectionResetError):
            pass  # it answered without reading all we sent: read that answer
        data = b""
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            part = s.recv(65536)
            if not part or time.monotonic() > deadline:
                break
            data += part
    finally:
        s.close()
    stdout, pos = b"", 0
    while pos + 8 <= len(data):
        _, kind, _, n, pad, _ = struct.unpack(">BBHHBB", data[pos:pos + 8])
        if kind == 6:
            stdout += data[pos + 8:pos + 8 + n]
        pos += 8 + n + pad
    head, _, payload = stdout.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "0").split()[0] or 0)
    return status, headers, payload


# --- a stand-in daemon on the bus

class FakeDaemon:
    """Owns one made-up session (its token hash and owner keys written in
    Redis) and answers every request published to its channel with
    answer(call, body) -> (status, body), sealing the reply as
    envelope_encode_reply does. Keeps the requests it saw."""

    def __init__(self, st, answer):
        self.st, self.answer = st, answer
        self.requests = []
        raw = os.urandom(32)
        self.token = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        th = hashlib.blake2b(self.token.encode(), digest_size=32).hexdigest()
        st.redis("SET", "tp:token:" + th, "fake-session")
        st.redis("SET", "tp:owner:fake-session", "fake-daemon")
        self.sock = socket.create_connection(("127.0.0.1", st.ports["redis"]), timeout=5)
        self.reader = self.sock.makefile("rb")
        self.sock.sendall(_resp_encode(["SUBSCRIBE", "tp:daemon:fake-daemon"]))
        _resp_read(self.reader)  # the subscription's confirmation
        self.sock.settimeout(None)  # from here, blocked until stop()
        self.thread = threading.Thread(target=self._run, daemon=True, name="fake daemon")
        self.thread.start()

    def _run(self):
        from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt
        for _ in range(10000):
            try:
                msg = _resp_read(self.reader)
            except (OSError, ValueError, RedisError):
                return
            req = json.loads(msg[2])
            self.requests.append(req)
            status, body = self.answer(req["call"], req["body"])
            text = json.dumps({"v": req["v"], "rid": req["rid"], "status": status,
                               "body": body}).encode()
            rk = base64.urlsafe_b64decode(req["rk"] + "=" * (-len(req["rk"]) % 4))
            nonce = os.urandom(NONCE)
            key = "tp:reply:" + req["rid"]
            blob = nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(
                text, key.encode(), nonce, rk)
            redis_call(self.st.ports["redis"], "RPUSH", key, blob)

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(5)
        self.reader.close()
        self.sock.close()


# --- the tests

def test_served(st):
    for what, data, ctype in IMAGES:
        h = sha1(data)
        store(st, h, seal(h, data))
        status, headers, body = get(st, "/images/" + h)
        tap.ok(status == 200 and body == data, "%s in the cache is served byte for byte" % what,
               "%s %r" % (status, body[:60]))
        tap.is_(headers.get("content-type"), ctype, "%s is served as %s" % (what, ctype))
        served_headers(headers, LONG_CACHE, what)
    data = IMAGES[0][1]
    tap.is_(png_size(data), (3, 2), "(the test's own PNG is well-formed)")
    status, headers, body = get(st, "/images/" + sha1(data).upper())
    tap.ok(status == 200 and body == data and headers.get("content-type") == "image/png",
           "the hash in upper case names the same image", "%s %r" % (status, headers))
    status, _, body = get(st, "/images/" + sha1(data) + "?size=64")
    tap.ok(status == 200 and body == data, "a query string after the hash is ignored")


def test_placeholders(st):
    expect_placeholder(get(st, "/images/" + UNKNOWN), "an unknown hash")
    expect_placeholder(get(st, "/images/" + UNKNOWN.upper()), "an unknown hash in upper case")

    mine, other = png(1, 2), png(2, 1)
    store(st, sha1(mine), seal(sha1(other), other))
    expect_placeholder(get(st, "/images/" + sha1(mine)),
                       "a blob sealed for another hash, stored under this one")
    log = st.daemon_log()
    tap.ok("does not open" in log, "the handler logs that a cached blob did not open")
    tap.ok(sha1(mine) not in log and sha1(mine).upper() not in log,
           "the log does not name the hash (it is the image's only key)")

    h = sha1(SVG)
    store(st, h, seal(h, SVG))
    expect_placeholder(get(st, "/images/" + h), "an SVG sealed correctly")

    html = b"<!DOCTYPE html><script>alert(1)</script>"
    store(st, sha1(html), seal(sha1(html), html))
    expect_placeholder(get(st, "/images/" + sha1(html)), "HTML sealed correctly")

    for what, blob in (("an empty value", b""), ("a blob shorter than its overhead", b"x" * 39),
                       ("a blob with one bit flipped", None)):
        data = png(2, 2, (0, 0, 255, 255))
        h = sha1(data + what.encode())
        if blob is None:
            good = bytearray(seal(h, data))
            good[-1] ^= 1
            blob = bytes(good)
        store(st, h, blob)
        expect_placeholder(get(st, "/images/" + h), what + " in the cache")


RAW_URIS = [
    # sentence, REQUEST_URI as the handler receives it
    ("a dot-dot path", "/images/../etc/passwd"),
    ("a dot-dot path after a hash", "/images/" + UNKNOWN + "/../" + UNKNOWN),
    ("encoded dots and a slash", "/images/%2e%2e%2f"),
    ("encoded dots before a hash", "/images/%2e%2e%2f" + UNKNOWN),
    ("an encoded NUL", "/images/%00" + UNKNOWN[:37]),
    ("a backslash path", "/images/..\\..\\" + UNKNOWN[:34]),
    ("39 hex digits", "/images/" + UNKNOWN[:39]),
    ("41 hex digits", "/images/" + UNKNOWN + "0"),
    ("a trailing slash", "/images/" + UNKNOWN + "/"),
    ("nothing after /images/", "/images/"),
    ("the hash only in the query string", "/images/?" + UNKNOWN),
    ("non-ASCII bytes", "/images/" + "\u00e9" * 40),
]


def test_raw_uris(st):
    sock = sorted(glob.glob(st.path("run", "talkproxy-fcgi.sock*")))
    if not tap.ok(sock, "the handler's FastCGI socket is there", repr(os.listdir(st.path("run")))):
        return
    for name, uri in RAW_URIS:
        status, headers, body = fcgi_call(sock[0], "GET", uri)
        try:
            code = json.loads(body.decode())["error"]["code"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            code = None
        tap.ok(status == 400 and code == "bad_hash" and
               headers.get("content-type") == "application/json",
               "%s straight to the handler answers 400 bad_hash" % name,
               "%s %r %r" % (status, headers, body[:200]))

    # The handler takes no body for this GET: one over max_body, which a
    # POST would be refused for, goes unread.
    status, headers, body = fcgi_call(sock[0], "GET", "/images/" + UNKNOWN,
                                      body=b"x" * (MAX_BODY + 4096), content_type="application/json")
    tap.ok(status == 200 and png_size(body) == (1, 1),
           "a GET with a body over max_body is answered without reading it",
           "%s %r %r" % (status, headers, body[:200]))
    status, _, body = fcgi_call(sock[0], "POST", "/v1/roster",
                                body=b"x" * (MAX_BODY + 4096), content_type="application/json")
    tap.is_(status, 413, "(the same body on a POST is refused with 413)")


def photo_answers(call, body):
    """The stand-in daemon's photo answers, picked by the JID asked for."""
    jid = body.get("jid", "")
    image = IMAGES[0][1]
    b64 = base64.b64encode(image).decode()
    answers = {
        "png@localhost": (200, {"type": "image/png", "data": b64, "hash": sha1(image)}),
        "jpeg@localhost": (200, {"type": "image/jpeg", "data": base64.b64encode(IMAGES[1][1]).decode(),
                                 "hash": sha1(IMAGES[1][1])}),
        "liar@localhost": (200, {"type": "image/gif", "data": b64, "hash": sha1(image)}),
        "svg@localhost": (200, {"type": "image/svg+xml", "data": base64.b64encode(SVG).decode(),
                                "hash": sha1(SVG)}),
        "html@localhost": (200, {"type": "text/html", "data": base64.b64encode(b"<html>").decode(),
                                 "hash": "x"}),
        "notb64@localhost": (200, {"type": "image/png", "data": "***", "hash": sha1(image)}),
        "urlsafe@localhost": (200, {"type": "image/png", "data": base64.urlsafe_b64encode(
            b"\x89PNG\r\n\x1a\n\xfb\xff\xfe").decode(), "hash": "x"}),
        "empty@localhost": (200, {"type": "image/png", "data": "", "hash": "x"}),
        "nodata@localhost": (200, {"type": "image/png", "hash": sha1(image)}),
        "numtype@localhost": (200, {"type": 5, "data": b64, "hash": sha1(image)}),
        "huge@localhost": (200, {"type": "image/png", "data": base64.b64encode(
            b"\x89PNG\r\n\x1a\n" + b"\0" * (1024 * 1024)).decode(), "hash": "x"}),
        "nophoto@localhost": (404, {"error": {"code": "no_photo", "message": "no photo"}}),
    }
    if call != "photo":
        return 404, {"error": {"code": "not_found", "message": "not here"}}
    return answers.get(jid, (502, {"error": {"code": "xmpp_error", "message": "?"}}))


def test_photo(st):
    fake = FakeDaemon(st, photo_answers)
    try:
        def photo(jid):
            return st.call("photo", {"jid": jid}, token=fake.token)

        status, headers, body = photo("png@localhost")
        tap.ok(status == 200 and body == IMAGES[0][1] and headers.get("content-type") == "image/png",
               "photo answers the decoded bytes as image/png", "%s %r" % (status, headers))
        served_headers(headers, "private, no-store", "photo")
        req = fake.requests[-1] if fake.requests else {}
        tap.ok(req.get("call") == "photo" and req.get("body") == {"jid": "png@localhost"},
               "the daemon is asked for the photo with the JID alone", repr(req))
        status, headers, body = photo("jpeg@localhost")
        tap.ok(status == 200 and body == IMAGES[1][1] and headers.get("content-type") == "image/jpeg",
               "a JPEG photo is answered as image/jpeg", "%s %r" % (status, headers))
        for jid, why in (("liar", "a type other than what the bytes are"),
                         ("svg", "an SVG"), ("html", "HTML"), ("notb64", "data that is not base64"),
                         ("urlsafe", "base64url instead of base64"), ("empty", "empty data"),
                         ("nodata", "no data"), ("numtype", "a number for its type"),
                         ("huge", "more than the largest image served")):
            expect_json_error(photo(jid + "@localhost"), 502, "bad_reply",
                              "a photo answer with %s" % why)
        got = photo("nophoto@localhost")
        expect_json_error(got, 404, "no_photo", "the daemon's 404 no_photo passes through")
        tap.is_(got[1].get("content-type"), "application/json", "and stays JSON")
    finally:
        fake.stop()


def test_forwarding(st):
    """What the handler puts on the bus for the new calls (the daemon's
    handling of them is tested with the daemon)."""
    fake = FakeDaemon(st, lambda call, body: (200, {}))
    try:
        for call, body in (("jingle", {}),
                           ("contact", {"jid": "bob@localhost", "action": "rename", "name": ""}),
                           ("contact", {"jid": "bob@localhost", "action": "regroup",
                                        "groups": ["Friends", "W\u00f6rk"]})):
            status, _, answer = st.call(call, dict(body, token=fake.token))
            req = fake.requests[-1] if fake.requests else {}
            tap.ok(status == 200 and answer == {} and req.get("call") == call
                   and req.get("body") == body,
                   "%s %s is forwarded as sent, without the session token" % (call, json.dumps(body)),
                   "%s %r %r" % (status, answer, req))
    finally:
        fake.stop()


def test_login_forwarding(st):
    """A token login goes to any daemon on tp:login, its OAuth token in the
    body as sent (it is the XMPP server's credential, not one of ours)."""
    seen = []
    sock = socket.create_connection(("127.0.0.1", st.ports["redis"]), timeout=5)
    reader = sock.makefile("rb")
    try:
        sock.sendall(_resp_encode(["SUBSCRIBE", "tp:login"]))
        _resp_read(reader)
        body = {"jid": "alice@localhost", "token": "ya29.oauth-token", "mechanism": "OAUTHBEARER",
                "resource": "phone"}
        done = threading.Event()

        def listen():
            try:
                seen.append(json.loads(_resp_read(reader)[2]))
            except (OSError, ValueError, RedisError, IndexError):
                pass
            done.set()
        threading.Thread(target=listen, daemon=True).start()
        st.call("login", body)  # nobody answers: 504 after login_timeout_ms
        done.wait(5)
        req = seen[0] if seen else {}
        tap.ok(req.get("call") == "login" and req.get("body") == body and req.get("th") == "",
               "a token login is published with jid, token, mechanism and resource unchanged",
               repr(req))
    finally:
        reader.close()
        sock.close()


def test_redis_down(st):
    data = IMAGES[0][1]
    st.stop_redis()
    try:
        got = get(st, "/images/" + sha1(data))
        expect_json_error(got, 503, "redis_unavailable", "with Redis stopped, an image")
        tap.is_(got[1].get("content-type"), "application/json", "the 503 is JSON")
        got = get(st, "/images/" + UNKNOWN)
        expect_json_error(got, 503, "redis_unavailable",
                          "with Redis stopped, an unknown hash (no placeholder)")
    finally:
        st.start_redis()
    # The handler reconnects on the next request that needs Redis.
    deadline = time.monotonic() + 10
    status, body = None, None
    for _ in range(100):
        status, _, body = get(st, "/images/" + sha1(data))
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    tap.ok(status == 200 and body == data, "once Redis is back the image is served again",
           "%s %r" % (status, body[:80] if isinstance(body, bytes) else body))


def main():
    tap.watchdog(int(os.environ.get("TP_TEST_TIMEOUT", "300")))
    with Stack(daemon=False, web="lighttpd", **{"http.login_timeout_ms": 1000}) as st:
        tap.on_failure(st.dump_logs)
        test_served(st)
        test_placeholders(st)
        test_raw_uris(st)
        test_photo(st)
        test_forwarding(st)
        test_login_forwarding(st)
        test_redis_down(st)
        tap.done()


if __name__ == "__main__":
    main()
