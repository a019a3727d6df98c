#!/usr/bin/python3
"""
rawxmpp.py: the lightest XMPP client that still is one, for bench/api/run.py:
STARTTLS, SASL PLAIN, resource binding and initial presence over a plain
socket, then stanzas written as prepared bytes. slixmpp parses every stanza
into objects and would be the bottleneck at a few thousand messages a
second; this neither parses nor builds anything while it is timed.

As a library: RawClient(...).connect() and .send(bytes).
As a program, a receiver in its own process (so its timing does not share a
GIL with the sender):

    rawxmpp.py recv PORT CAFILE JID PASSWORD RESOURCE OUTFILE

logs in, prints "ready", then writes "<monotonic ns> <message id>" for
every <message> carrying an id that starts with "bench-", until SIGTERM or
its stdin closes. Times are CLOCK_MONOTONIC, comparable across processes.
"""

import base64
import re
import select
import signal
import socket
import ssl
import sys
import time

STEP_TIMEOUT = 10.0
READ = 256 * 1024


class XmppError(Exception):
    pass


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class RawClient:
    def __init__(self, port, cafile, jid, password, resource, host="127.0.0.1"):
        self.addr = (host, port)
        self.cafile = cafile
        self.jid = jid
        self.user, self.domain = jid.split("@", 1)
        self.password = password
        self.resource = resource
        self.sock = None
        self.buf = b""
        self.full_jid = None

    def _read_until(self, pattern, what):
        """Reads (bounded in time) until pattern matches the buffer; returns
        the match and drops the buffer up to its end."""
        deadline = time.monotonic() + STEP_TIMEOUT
        rx = re.compile(pattern, re.S)
        for _ in range(100000):
            m = rx.search(self.buf)
            if m:
                self.buf = self.buf[m.end():]
                return m
            if b"<stream:error" in self.buf or b"<failure" in self.buf:
                raise XmppError("%s: server said %r" % (what, self.buf[-300:]))
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(READ)
            except socket.timeout:
                break
            if not data:
                raise XmppError("%s: connection closed (%r)" % (what, self.buf[-300:]))
            self.buf += data
        raise XmppError("%s: timed out (%r)" % (what, self.buf[-300:]))

    def _open_stream(self):
        self.sock.sendall((
            "<?xml version='1.0'?><stream:stream to='%s' version='1.0' "
            "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"
            % self.domain).encode())
        return self._read_until(rb"<stream:features.*?</stream:features>", "stream features")

    def connect(self):
        raw = socket.create_connection(self.addr, timeout=STEP_TIMEOUT)
        # Prosody runs with nagle = false; do the same on our side.
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = raw
        self._open_stream()
        raw.sendall(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        self._read_until(rb"<proceed[^>]*/>", "starttls")
        ctx = ssl.create_default_context(cafile=self.cafile)
        self.sock = ctx.wrap_socket(raw, server_hostname=self.domain)
        self.buf = b""
        feats = self._open_stream().group(0)
        if b"PLAIN" not in feats:
            raise XmppError("the server offers no SASL PLAIN: %r" % feats)
        cred = base64.b64encode(b"\0" + self.user.encode() + b"\0" + self.password.encode())
        self.sock.sendall(b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                          b"mechanism='PLAIN'>" + cred + b"</auth>")
        self._read_until(rb"<success[^>]*(/>|>.*?</success>)", "SASL PLAIN")
        self.buf = b""
        self._open_stream()
        self.sock.sendall((
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            "<resource>%s</resource></bind></iq>" % self.resource).encode())
        m = self._read_until(rb"<jid>([^<]+)</jid>", "resource binding")
        self.full_jid = m.group(1).decode()
        self._read_until(rb"</iq>", "bind result")
        # Available with a positive priority: messages to the bare JID come here.
        self.sock.sendall(b"<presence><priority>1</priority></presence>")
        self.sock.settimeout(None)
        return self

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        if self.sock is None:
            return
        try:
            self.sock.settimeout(1.0)
            self.sock.sendall(b"<presence type='unavailable'/></stream:stream>")
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None


def message(to, msg_id, body):
    return ("<message type='chat' to='%s' id='%s'><body>%s</body></message>"
            % (to, msg_id, body)).encode()


# Our ids are "bench-<run>-<n>"; a <message> start tag carries it.
ID_RX = re.compile(rb"<message\b[^>]*?\bid=['\"](bench-[A-Za-z0-9_-]+)['\"]")


def receive(argv):
    port, cafile, jid, password, resource, outfile = argv
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    c = RawClient(int(port), cafile, jid, password, resource).connect()
    out = open(outfile, "w", buffering=1 << 16)
    print("ready", flush=True)
    sock = c.sock
    sock.setblocking(False)
    tail = b""
    # Bounded: at most a day, checking stop at least every 0.2 s.
    deadline = time.monotonic() + 86400
    while not stop and time.monotonic() < deadline:
        r, _, _ = select.select([sock, sys.stdin], [], [], 0.2)
        if sys.stdin in r and not sys.stdin.buffer.read1(1):
            break
        if sock not in r:
            continue
        for _ in range(64):  # drain what TLS has decrypted already
            try:
                data = sock.recv(READ)
            except (ssl.SSLWantReadError, BlockingIOError):
                break
            if not data:
                stop.append(1)
                break
            t = now_ns()
            chunk = tail + data
            last = 0
            for m in ID_RX.finditer(chunk):
                out.write("%d %s\n" % (t, m.group(1).decode()))
                last = m.end()
            # Keep an unfinished start tag for the next read.
            cut = chunk.rfind(b"<message", last)
            tail = chunk[cut:] if cut >= 0 and chunk.find(b">", cut) < 0 else b""
            if not sock.pending():
                break
        out.flush()
    out.close()
    c.close()


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "recv":
        receive(sys.argv[2:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
