#!/usr/bin/python3
"""
pushsink.py: a light HTTPS webhook endpoint for figure 2 of bench/api/run.py.

tests/js/push_endpoint.js checks everything and stamps requests with
Date.now() (milliseconds), too coarse for sub-millisecond figures, and
costs more per request than the daemon does. This one does the least a
webhook receiver must while timed: HTTP/1.1 with keep-alive over TLS, POST
to /hook/<name>, Content-Type application/json, an X-Talkproxy-Timestamp
and an "ed25519=" X-Talkproxy-Signature header, a body within 64 KiB. It
stamps each request (CLOCK_MONOTONIC, ns) as its last body byte is read,
answers 200, and writes one line per request:

    <ns> <problems or -> <timestamp header> <signature header> <body base64>

run.py then verifies every signature and opens every payload (python3-nacl)
after the run, outside the timed path.

    pushsink.py PORT CERT KEY OUTFILE      prints "listening PORT"; runs
                                           until SIGTERM or stdin closes
"""

import base64
import select
import signal
import socket
import ssl
import sys
import threading
import time

MAX_BODY = 64 * 1024
MAX_HEAD = 16 * 1024
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Sink:
    def __init__(self, port, cert, key, outfile):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.out = open(outfile, "w", buffering=1 << 16)
        self.lock = threading.Lock()
        self.stop = False

    def record(self, line):
        with self.lock:
            self.out.write(line)

    def flush(self):
        with self.lock:
            self.out.flush()

    def serve_conn(self, raw):
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.settimeout(30)
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        buf = b""
        try:
            for _ in range(10 ** 9):
                if self.stop:
                    break
                head_end = buf.find(b"\r\n\r\n")
                if head_end < 0:
                    if len(buf) > MAX_HEAD:
                        break
                    data = conn.recv(65536)
                    if not data:
                        break
                    buf += data
                    continue
                head = buf[:head_end].decode("latin-1").split("\r\n")
                buf = buf[head_end + 4:]
                method, path = (head[0].split(" ") + ["", ""])[:2]
                hdrs = {}
                for line in head[1:]:
                    name, _, value = line.partition(":")
                    hdrs[name.strip().lower()] = value.strip()
                try:
                    length = int(hdrs.get("content-length", "-1"))
                except ValueError:
                    length = -1
                if length < 0 or length > MAX_BODY:
                    conn.sendall(BAD)
                    break
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                t = now_ns()
                problems = []
                if method != "POST" or not path.startswith("/hook/"):
                    problems.append("method-or-path")
                if hdrs.get("content-type", "").split(";")[0] != "application/json":
                    problems.append("content-type")
                ts = hdrs.get("x-talkproxy-timestamp", "")
                sig = hdrs.get("x-talkproxy-signature", "")
                if not ts.isdigit() or not sig.startswith("ed25519="):
                    problems.append("signature-headers")
                if not body.startswith(b"{"):
                    problems.append("body")
                conn.sendall(OK)
                self.record("%d %s %s %s %s\n" % (
                    t, ",".join(problems) or "-", ts or "-", sig or "-",
                    base64.b64encode(body).decode()))
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def run(self):
        print("listening %d" % self.port, flush=True)
        deadline = time.monotonic() + 86400
        while not self.stop and time.monotonic() < deadline:
            r, _, _ = select.select([self.lsock, sys.stdin], [], [], 0.2)
            if sys.stdin in r and not sys.stdin.buffer.read1(1):
                break
            if self.lsock in r:
                raw, _ = self.lsock.accept()
                threading.Thread(target=self.serve_conn, args=(raw,), daemon=True).start()
            self.flush()
        self.stop = True
        self.flush()


def main():
    if len(sys.argv) != 5:
        sys.stderr.write(__doc__)
        return 2
    sys.setswitchinterval(0.0002)
    sink = Sink(int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4])

    def on_term(*_):
        sink.stop = True
    signal.signal(signal.SIGTERM, on_term)
    sink.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
