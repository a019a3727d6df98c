"""
stack.py: brings up the whole talkproxy stack for one integration test, from
real Debian servers, in a fresh temporary directory on free loopback ports:
Redis, Prosody (TLS with a CA made here, accounts and rosters written before
start), talkproxyd, and lighttpd running the shipped conf/lighttpd snippet,
which spawns talkproxy-fcgi. Every process is tracked by PID and stopped by
PID; nothing here looks processes up by name.

Also: a tiny Redis client, an HTTP helper for the JSON API, and Peer, a real
XMPP client (slixmpp) standing on the other side of a conversation.

    python3 -m harness.stack --demo     (from tests/) runs it by hand.
"""

import asyncio
import atexit
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

DOMAIN = "localhost"
USERS = {
    "alice": "alice-pw",
    "bob": "bob-pw",
    "carol": "carol-pw",
    "dave": "dave-pw",
}
# Mutual subscriptions written into Prosody's roster store before it starts:
# (owner, contact, name shown at the owner, groups).
ROSTERS = [
    ("alice", "bob", "Bob", ["Friends"]),
    ("bob", "alice", "Alice", ["Friends"]),
]

# Fixed ports for --demo, used when free, so the printed curl lines stay valid
# between runs.
DEMO_PORTS = {"lighttpd": 8480, "redis": 8479, "prosody": 8422}

CHATSTATES_NS = "http://jabber.org/protocol/chatstates"

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# Bounds for every wait in this file.
START_TIMEOUT = float(os.environ.get("TP_START_TIMEOUT", "30"))
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = 40.0
POLL = 0.05
START_ATTEMPTS = 3
# What a server says when its port is taken.
PORT_TAKEN = ("Address already in use", "Failed to open server port",
              "not ours")


class StackError(Exception):
    """A server could not be started, or answered nonsense."""


class WaitTimeout(StackError):
    """A bounded wait ran out."""


def builddir():
    return os.path.abspath(os.environ.get("TP_BUILDDIR") or REPO)


def srcdir():
    return os.path.abspath(os.environ.get("TP_SRCDIR") or REPO)


def tail(path, lines=40):
    """The last lines of a file, or a note that it does not exist."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(%s: %s)" % (path, e.strerror)
    return "\n".join(data.splitlines()[-lines:])


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def poll(fn, timeout=10.0, interval=0.1):
    """fn() until it returns something true (returned), or its last value
    once timeout seconds have passed; bounded in count and time."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 1):
        got = fn()
        if got or time.monotonic() >= deadline:
            return got
        time.sleep(interval)
    return fn()


def wait_until(cond, timeout, what, interval=POLL):
    """poll() that must succeed: True, or WaitTimeout naming what."""
    if poll(cond, timeout, interval):
        return True
    raise WaitTimeout("timed out after %.1f s waiting for %s" % (timeout, what))


# ---------------------------------------------------------------------------
# Processes: every one is tracked here and stopped by its PID.

_live = []  # Proc objects not yet stopped, for the atexit safety net
_live_lock = threading.Lock()


class Proc:
    """One child process with its log, stopped by PID only."""

    def __init__(self, name, argv, log, cwd=None, env=None):
        self.name = name
        self.argv = argv
        self.log = log
        self.logs = [log]  # files worth showing when it fails
        out = open(log, "ab")
        # setpriv --pdeathsig: if this Python process dies without cleaning
        # up (SIGKILL), the kernel still stops the child.
        prefix = []
        if shutil.which("setpriv"):
            prefix = ["setpriv", "--pdeathsig", "TERM", "--"]
        try:
            self.popen = subprocess.Popen(
                prefix + argv, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=cwd, env=env,
                start_new_session=True)
        finally:
            out.close()
        self.pid = self.popen.pid
        with _live_lock:
            _live.append(self)

    def alive(self):
        return self.popen.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Signals the PID, waits (bounded), then SIGKILLs it. Returns the
        exit status."""
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    self.popen.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
        with _live_lock:
            if self in _live:
                _live.remove(self)
        return self.popen.returncode

    def failure(self, why):
        text = "%s %s (pid %d, exit status %r)" % (
            self.name, why, self.pid, self.popen.poll())
        for log in self.logs:
            text += "\n--- tail of %s ---\n%s" % (log, tail(log))
        return StackError(text)


def children(pid):
    """Direct children of pid, from /proc/<pid>/task/*/children."""
    out = []
    base = "/proc/%d/task" % pid
    try:
        tasks = os.listdir(base)
    except OSError:
        return []
    for task in tasks:
        try:
            with open("%s/%s/children" % (base, task)) as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            pass
    return out


def pid_gone(pid):
    """True once pid has exited (gone, or a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def kill_and_wait(pids, timeout):
    """SIGKILLs pids (ours) and waits, bounded, until they are gone.
    Returns True when every one is."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while not all(pid_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    return all(pid_gone(p) for p in pids)


def stop_pid(pid, must_contain, timeout=STOP_TIMEOUT):
    """Stops a process this harness did not start itself (a handler that
    outlived lighttpd): SIGTERM, bounded wait, SIGKILL. Only if its command
    line still contains must_contain, so a reused PID is left alone."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if must_contain.encode() not in f.read():
                return
    except OSError:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / POLL) + 1):
            if pid_gone(pid) or time.monotonic() > deadline:
                break
            time.sleep(POLL)
        if pid_gone(pid):
            return


def _stop_all_live():
    with _live_lock:
        procs = list(reversed(_live))
    for p in procs:
        p.stop()


atexit.register(_stop_all_live)


# ---------------------------------------------------------------------------
# Redis: a minimal RESP client, one connection per call (survives restarts).

class RedisError(Exception):
    pass


def _resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def _resp_read(f, depth=0):
    if depth > 8:
        raise RedisError("reply nested too deep")
    line = f.readline(1024 * 1024)
    if not line.endswith(b"\r\n"):
        raise RedisError("connection closed mid-reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RedisError(rest.decode("utf-8", "replace"))
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise RedisError("short bulk reply")
        return data[:-2]
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_resp_read(f, depth + 1) for _ in range(n)]
    raise RedisError("unexpected reply %r" % line[:40])


def redis_call(port, *args, timeout=5.0):
    """Runs one command; bulk strings come back as bytes, status replies as
    str, errors raise RedisError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(_resp_encode(args))
        with s.makefile("rb") as f:
            return _resp_read(f)


# ---------------------------------------------------------------------------
# Prosody's internal storage is Lua source ("return { ... };"), written the
# way util.serialization writes it; the roster store keeps its metadata under
# the key false and each group as a set.

def _lua(value, indent=1):
    pad = "\t" * indent
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # Lua's decimal escapes work for every byte, in every Lua version.
        return '"%s"' % "".join(
            chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else "\\%03d" % b
            for b in value.encode("utf-8"))
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for k, v in value.items():
            key = "[%s]" % _lua(k)
            lines.append("%s%s = %s;" % (pad, key, _lua(v, indent + 1)))
        return "{\n%s\n%s}" % ("\n".join(lines), "\t" * (indent - 1))
    raise TypeError("cannot write %r as Lua" % (value,))


def roster_data(entries):
    """entries: [(contact bare jid, name, groups)] -> Lua file text."""
    roster = {False: {"version": 1, "pending": {}}}
    for contact, name, groups in entries:
        roster[contact] = {
            "subscription": "both",
            "name": name,
            "groups": {g: True for g in groups},
        }
    return "return " + _lua(roster) + ";\n"


# ---------------------------------------------------------------------------
# The HTTP side.

def http_call(port, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One HTTP/1.1 request on a fresh connection. Returns (status, headers
    with lower-case names, JSON value or raw bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body is not None and not any(k.lower() == "content-length" for k in hdrs):
            hdrs["Content-Length"] = str(len(body))
        elif body is None and method in ("POST", "PUT") and not any(
                k.lower() == "content-length" for k in hdrs):
            hdrs["Content-Length"] = "0"
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        rheaders = {k.lower(): v for k, v in resp.getheaders()}
        status = resp.status
    finally:
        conn.close()
    if rheaders.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            return status, rheaders, json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            pass
    return status, rheaders, data


# ---------------------------------------------------------------------------
# Peer: a real XMPP client on the other side of the conversation.

class Peer:
    """A slixmpp client running its asyncio loop in a background thread.
    Records every message and presence it receives; all waits are bounded."""

    def __init__(self, jid, password, port, cafile, host="127.0.0.1",
                 timeout=20.0, on_message=None, answer_requests=True):
        import slixmpp  # only Debian's /usr/bin/python3 has it

        self._slixmpp = slixmpp
        self.jid = jid
        self._password = password
        self._addr = (host, port)
        self._cafile = cafile
        self._on_message = on_message
        # slixmpp approves subscription requests itself unless told not to.
        self._answer_requests = answer_requests
        self._cond = threading.Condition()
        self._messages = []
        self._presences = []
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._error = None
        self._loop = None
        self._client = None
        self._thread = threading.Thread(target=self._run, name="peer " + jid,
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.close()
            raise StackError("peer %s did not log in within %.0f s" % (jid, timeout))
        if self._error:
            self.close()
            raise StackError("peer %s: %s" % (jid, self._error))

    # --- the loop thread

    def _run(self):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            c = self._slixmpp.ClientXMPP(self.jid, self._password)
            c.loop = loop
            c.ca_certs = self._cafile
            c.auto_reconnect = False
            if not self._answer_requests:
                c.roster.auto_authorize = None
                c.roster.auto_subscribe = False
            c.add_event_handler("session_start", self._session_start)
            # slixmpp's "message" event skips messages without a body, and
            # chat states travel alone: take every message stanza.
            from slixmpp.xmlstream.handler import Callback
            from slixmpp.xmlstream.matcher import MatchXPath
            c.register_handler(Callback("peer: every message", MatchXPath(
                "{jabber:client}message"), self._got_message))
            c.add_event_handler("presence", self._got_presence)
            c.add_event_handler("failed_auth", lambda *_: self._fail("authentication failed"))
            c.add_event_handler("connection_failed", lambda e: self._fail("connection failed: %s" % (e,)))
            c.add_event_handler("disconnected", lambda *_: self._stopped.set())
            self._client = c
            c.connect(self._addr)
            loop.run_forever()
        except Exception as e:  # reported to the constructor
            self._fail(repr(e))
        finally:
            # slixmpp leaves its queue readers pending: end them in this loop
            # instead of letting them complain when it is closed.
            try:
                pending = asyncio.all_tasks(loop)
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.wait_for(
                    asyncio.gather(*pending, return_exceptions=True), 5))
                loop.run_until_complete(loop.shutdown_asyncgens())
            except Exception:
                pass
            loop.close()
            self._stopped.set()

    def _fail(self, why):
        if not self._ready.is_set():
            self._error = why
            self._ready.set()

    async def _session_start(self, _event):
        try:
            await self._client.get_roster(timeout=10)
        except Exception as e:
            self._fail("roster: %r" % (e,))
            return
        self._client.send_presence()
        self._ready.set()

    def _got_message(self, msg):
        state = None
        for child in msg.xml:
            if child.tag.startswith("{%s}" % CHATSTATES_NS):
                state = child.tag.split("}", 1)[1]
        body = msg.xml.find("{jabber:client}body")
        rec = {
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "type": msg.xml.get("type", "normal"),
            "id": msg.xml.get("id"),
            "body": body.text if body is not None else None,
            "state": state,
            "xml": ET.tostring(msg.xml, encoding="unicode"),
            "at": time.time(),
        }
        with self._cond:
            self._messages.append(rec)
            self._cond.notify_all()
        if self._on_message:
            self._on_message(rec)

    def _got_presence(self, pres):
        show = pres.xml.find("{jabber:client}show")
        status = pres.xml.find("{jabber:client}status")
        rec = {
            "from": str(pres["from"]),
            "type": pres.xml.get("type", "available"),
            "show": show.text if show is not None else None,
            "status": status.text if status is not None else None,
            "xml": ET.tostring(pres.xml, encoding="unicode"),
            "at": time.time(),
        }
        with self._cond:
            self._presences.append(rec)
            self._cond.notify_all()

    def _in_loop(self, fn, timeout=10.0):
        """Runs fn() in the loop thread and waits (bounded) for it."""
        if self._stopped.is_set() or self._loop is None:
            raise StackError("peer %s is not connected" % self.jid)
        done = threading.Event()
        box = {}

        def call():
            try:
                box["value"] = fn()
            except Exception as e:
                box["error"] = e
            done.set()

        self._loop.call_soon_threadsafe(call)
        if not done.wait(timeout):
            raise StackError("peer %s: loop did not run a call in %.0f s" % (self.jid, timeout))
        if "error" in box:
            raise box["error"]
        return box.get("value")

    # --- the test's side

    def messages(self):
        with self._cond:
            return list(self._messages)

    def presences(self):
        with self._cond:
            return list(self._presences)

    def _wait(self, records, pred, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            for _ in range(10000):
                for rec in records:
                    if pred(rec):
                        return rec
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.5))
        return None

    def wait_message(self, pred=lambda m: True, timeout=10.0):
        """The first received message matching pred, or None after timeout."""
        return self._wait(self._messages, pred, timeout)

    def wait_presence(self, pred=lambda p: True, timeout=10.0):
        return self._wait(self._presences, pred, timeout)

    def send_message(self, to, body, id=None, state=None, mtype="chat",
                     extra=()):
        """Sends a chat message; returns its id. extra: (namespace, name)
        pairs of empty child elements, such as XEP-0334 hints."""
        def send():
            msg = self._client.make_message(mto=to, mbody=body, mtype=mtype)
            if id is not None:
                msg["id"] = id
            if state is not None:
                msg.xml.append(ET.Element("{%s}%s" % (CHATSTATES_NS, state)))
            for ns, name in extra:
                msg.xml.append(ET.Element("{%s}%s" % (ns, name)))
            msg.send()
            return msg["id"]
        return self._in_loop(send)

    def send_raw(self, xml):
        """Sends XML text as it is (stanzas the helpers do not build)."""
        self._in_loop(lambda: self._client.send_raw(xml))

    def set_presence(self, show=None, status=None):
        self._in_loop(lambda: self._client.send_presence(pshow=show, pstatus=status))

    def close(self, timeout=5.0):
        if self._loop is None or self._stopped.is_set():
            self._thread.join(timeout)
            return
        try:
            self._in_loop(lambda: self._client.disconnect(wait=1.0), timeout)
        except Exception:
            pass
        self._stopped.wait(timeout)
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._loop.stop)
            except RuntimeError:
                pass
        self._thread.join(timeout)


# ---------------------------------------------------------------------------
# The stack.

PROSODY_CONF = """\
-- Written by tests/harness/stack.py for one test run; everything under {tmp}.
-- Tests run as root: Prosody refuses that unless told (mod_posix, prosodyctl).
run_as_root = true
pidfile = "{tmp}/prosody.pid"
data_path = "{tmp}/prosody-data"
certificates = "{tmp}/certs"
log = {{
	{{ levels = {{ min = "{log_level}" }}, to = "file", filename = "{tmp}/prosody.log" }};
}}

interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}

modules_enabled = {{
	"roster"; "saslauth"; "tls"; "disco"; "private"; "vcard"; "smacks";
	"version"; "uptime"; "time"; "ping"; "posix"; "limits";
	"external_services";
}}
-- XEP-0215 for the jingle call: one STUN server and one TURN server with
-- credentials derived from a shared secret (no server listens there).
external_services = {{
	{{ type = "stun"; transport = "udp"; host = "127.0.0.1"; port = 3478 }};
	{{ type = "turn"; transport = "udp"; host = "127.0.0.1"; port = 3478;
	  secret = "talkproxy-test-turn-secret" }};
}}
-- No server-to-server and no HTTP: only c2s on loopback.
modules_disabled = {{ "s2s"; "s2s_auth_certs" }}

authentication = "internal_hashed"
storage = "internal"
allow_registration = false
c2s_require_encryption = true
-- Debian's default (10 kb/s per client) throttles the tests.
limits = {{ c2s = {{ rate = "10mb/s"; burst = "2s" }} }}
-- Nagle on Prosody's side adds 40 ms stalls to small round trips.
network_settings = {{ nagle = false }}

ssl = {{
	certificate = "{tmp}/certs/localhost.crt";
	key = "{tmp}/certs/localhost.key";
}}
{extra}
VirtualHost "{domain}"
"""

LIGHTTPD_CONF = """\
# Written by tests/harness/stack.py for one test run. It sets what a site's
# own lighttpd.conf would set, then includes the shipped snippet unchanged.
server.document-root = "{tmp}/www"
server.bind = "127.0.0.1"
server.port = {port}
server.pid-file = "{tmp}/lighttpd.pid"
server.errorlog = "{tmp}/lighttpd-error.log"
server.upload-dirs = ( "{tmp}/uploads" )
server.modules = ( "mod_accesslog" )
accesslog.filename = "{tmp}/lighttpd-access.log"

var.talkproxy_bin = "{bin}"
var.talkproxy_conf = "{conf}"
var.talkproxy_sockdir = "{tmp}/run"
var.talkproxy_base = ""

include "{snippet}"
"""


WEB_SERVERS = ("lighttpd", "apache-fcgid", "apache-proxy")


def web_kind(web):
    """Stack's web option -> the web server to start, or None."""
    if web is True:
        web = os.environ.get("TP_WEB") or "lighttpd"
    if not web:
        return None
    if web not in WEB_SERVERS:
        raise ValueError("web server %r is not one of %s" % (web, ", ".join(WEB_SERVERS)))
    return web


class Stack:
    """Context manager: the whole stack up on enter, down (by PID) on exit.

    Stack(**{"daemon.max_sessions": 1}) overrides talkproxy config keys
    ("section.key": value; None removes a key the harness would set).
    Keyword-only options: ports (dict name->port, for --demo), daemon and
    web (False leaves talkproxyd / the web server unstarted; web is also
    the web server: "lighttpd", "apache-fcgid" or "apache-proxy", see
    harness/apache.py; True means $TP_WEB, else lighttpd; the HTTP port is
    ports["lighttpd"] whichever it is), push (True starts
    the local push endpoint, self.pushep, makes the VAPID and webhook keys
    with talkproxy-keygen and points the daemon's [push] section at them,
    loopback allowed).
    """

    def __init__(self, *, ports=None, daemon=True, web=True, push=False,
                 extra_users=0, xmpp="prosody", valgrind=False,
                 prosody_extra="", prosody_debug=False, **conf_overrides):
        for key in conf_overrides:
            if "." not in key:
                raise TypeError("config overrides are 'section.key', not %r" % key)
        self.conf_overrides = conf_overrides
        self.want_ports = dict(ports or {})
        self.want_daemon = daemon
        self.want_web = web_kind(web)
        self.apache = None  # harness.apache.Apache when want_web is apache-*
        self.want_push = push
        self.extra_users = extra_users
        self.want_xmpp = xmpp  # "prosody", or "ejabberd" (token logins)
        self.prosody_extra = prosody_extra  # global Prosody settings added
        # Prosody logs some events (resumptions, ack requests) only at debug.
        self.prosody_debug = prosody_debug or bool(os.environ.get("TP_DEBUG"))
        self.valgrind = valgrind  # run talkproxyd under memcheck
        self.ejabberd = None
        self.pushep = None
        self.vapid_public = None
        self.webhook_public = None
        self.tmp = None
        self.procs = {}
        self.peers = []
        self.sessions = {}  # token -> login answer
        self.keep = bool(os.environ.get("TP_KEEP"))
        self._dumped = False
        self._old_sigterm = None

    # --- lifecycle

    def __enter__(self):
        self._install_sigterm()
        # Free ports are found by binding port 0 and closing it again, so a
        # stack starting at the same moment may take one first: start over
        # on new ports when a server found its port taken.
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                self.start()
                return self
            except StackError as e:
                taken = any(s in str(e) for s in PORT_TAKEN)
                if not taken or attempt == START_ATTEMPTS or self.want_ports:
                    self._abort()
                    raise
                sys.stdout.write("# a port was taken, starting over (%s)\n"
                                 % str(e).splitlines()[0])
                self.stop()
            except BaseException:
                self._abort()
                raise
        raise StackError("unreachable")

    def _abort(self):
        self.dump_logs()
        self.keep = True
        self.stop()
        self._restore_sigterm()

    def __exit__(self, etype, value, tb):
        clean = etype is None or (etype is SystemExit and value.code in (0, None))
        # A check that failed inside the block: keep and show the logs now,
        # while they exist (tap.done() runs after the stack is gone).
        try:
            from harness import tap as _tap
            clean = clean and not _tap.failed()
        except ImportError:
            pass
        if not clean:
            self.dump_logs()
        # Servers stop first: leaks are reported as a program exits.
        keep, self.keep = self.keep, True
        self.stop(quiet=True)
        reports = self.sanitizer_reports() if self.tmp else []
        self.keep = keep or not clean or bool(reports)
        self._remove_tmp()
        self._restore_sigterm()
        if reports and clean:
            raise StackError("sanitizer reports from our programs:\n" + "\n".join(reports))
        return False

    def sanitizer_reports(self):
        """ASan/UBSan/LSan lines our programs wrote (the sanitizer build),
        found after the fact: a test passing with one is still a failure."""
        found = []
        for name in ("talkproxyd.out", "lighttpd.out", "lighttpd-error.log",
                     "apache.out", "apache-error.log", "fcgi-handler.out"):
            p = self.path(name)
            if not os.path.exists(p):
                continue
            with open(p, errors="replace") as f:
                for line in f:
                    if ("ERROR: AddressSanitizer" in line or "ERROR: LeakSanitizer" in line
                            or "runtime error:" in line):
                        found.append("%s: %s" % (name, line.rstrip()))
        return found[:20]

    def _install_sigterm(self):
        # SIGTERM unwinds like an exception, so __exit__ stops the servers.
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            def on_term(signum, frame):
                raise SystemExit(128 + signum)
            self._old_sigterm = signal.signal(signal.SIGTERM, on_term)

    def _restore_sigterm(self):
        if self._old_sigterm is not None:
            signal.signal(signal.SIGTERM, self._old_sigterm)
            self._old_sigterm = None

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="tp-it-")
        for d in ("certs", "redis", "prosody-data", "www", "run", "uploads"):
            os.mkdir(os.path.join(self.tmp, d))
        os.chmod(os.path.join(self.tmp, "run"), 0o700)
        self.ports = {}
        for name in ("redis", "prosody", "lighttpd"):
            want = self.want_ports.get(name)
            self.ports[name] = want if want and port_is_free(want) else free_port()
        self.url = "http://127.0.0.1:%d" % self.ports["lighttpd"]
        self.cafile = os.path.join(self.tmp, "certs", "ca.pem")
        self.conf = os.path.join(self.tmp, "talkproxy.conf")
        self._make_certs()
        self._start_redis()
        if self.want_xmpp == "ejabberd":
            from harness.ejabberd import Ejabberd
            self.ejabberd = Ejabberd(self.tmp, self.path("certs"), DOMAIN, USERS)
            self.ejabberd.start()
            self.ports["prosody"] = self.ejabberd.port  # the XMPP port
        else:
            self._start_prosody()
        self.keygen("master", self.path("master.key"))
        if self.want_push:
            self._start_push()
        self._write_talkproxy_conf()
        if self.want_daemon:
            self.start_daemon()
        if self.want_web == "lighttpd":
            self._start_lighttpd()
        elif self.want_web:
            from harness.apache import Apache
            self.apache = Apache(self, self.want_web)
            self.apache.start()

    def stop(self, quiet=False):
        """Stops every server by PID; removes the temporary directory unless
        kept (or quiet: the caller does it)."""
        # Each step on its own: one that fails must not leave the rest running.
        steps = [peer.close for peer in self.peers] + [self.stop_web]
        if self.pushep:
            steps.append(self.pushep.stop)
        if self.ejabberd:
            steps.append(self.ejabberd.stop)
            self.ejabberd = None
        for name in ("talkproxyd", "prosody", "redis"):
            proc = self.procs.pop(name, None)
            if proc:
                steps.append(proc.stop)
        self.peers = []
        for step in steps:
            try:
                step()
            except Exception as e:
                sys.stdout.write("# stopping the stack: %r\n" % (e,))
        if not quiet:
            self._remove_tmp()

    def _remove_tmp(self):
        if self.tmp and os.path.isdir(self.tmp):
            if self.keep:
                sys.stdout.write("# stack files kept in %s\n" % self.tmp)
                sys.stdout.flush()
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def dump_logs(self, lines=30):
        """Prints the tails of every log as TAP comments (once)."""
        if self._dumped or not self.tmp:
            return
        self._dumped = True
        self.keep = True
        for name in ("talkproxyd.log", "talkproxyd.out", "lighttpd-error.log",
                     "lighttpd.out", "apache-error.log", "apache.out",
                     "fcgi-handler.out", "prosody.log", "redis.log",
                     "push_endpoint.log"):
            p = self.path(name)
            if os.path.exists(p):
                sys.stdout.write("# --- tail of %s ---\n" % p)
                for line in tail(p, lines).splitlines():
                    sys.stdout.write("#   %s\n" % line)
        sys.stdout.flush()

    def _run(self, argv, what, timeout=30):
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, cwd=self.tmp)
        if r.returncode != 0:
            raise StackError("%s failed (%s): %s\n%s" % (
                what, r.returncode, " ".join(argv), r.stdout.decode(errors="replace")))
        return r.stdout.decode(errors="replace")

    # --- certificates

    def _make_certs(self):
        d = self.path("certs")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        self._run(["openssl", "req", "-x509"] + ec + [
            "-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days", "30",
            "-subj", "/CN=talkproxy test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign"], "making the test CA")
        self._run(["openssl", "req"] + ec + [
            "-keyout", d + "/localhost.key", "-out", d + "/localhost.csr",
            "-subj", "/CN=" + DOMAIN], "making the server key")
        with open(d + "/server.ext", "w") as f:
            f.write("subjectAltName = DNS:%s, IP:127.0.0.1\n"
                    "basicConstraints = CA:FALSE\n"
                    "keyUsage = critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage = serverAuth\n" % DOMAIN)
        self._run(["openssl", "x509", "-req", "-in", d + "/localhost.csr",
                   "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key", "-CAcreateserial",
                   "-days", "30", "-extfile", d + "/server.ext",
                   "-out", d + "/localhost.crt"], "signing the server certificate")

    # --- Redis

    def stop_redis(self, sig=signal.SIGTERM):
        """Stops Redis (SIGTERM writes the AOF out) and returns its status."""
        proc = self.procs.pop("redis", None)
        return proc.stop(sig) if proc else None

    def start_redis(self):
        """Starts Redis again on its port and data directory (AOF reload)."""
        self._start_redis()

    def stop_prosody(self, sig=signal.SIGTERM):
        proc = self.procs.pop("prosody", None)
        return proc.stop(sig) if proc else None

    def _start_redis(self):
        port = self.ports["redis"]
        conf = self.path("redis.conf")
        with open(conf, "w") as f:
            f.write("port %d\nbind 127.0.0.1\nprotected-mode yes\n"
                    "dir %s\ndaemonize no\npidfile %s\nlogfile \"\"\n"
                    "appendonly yes\nsave \"\"\n"
                    % (port, self.path("redis"), self.path("redis.pid")))
        proc = self.procs["redis"] = Proc("redis-server", ["redis-server", conf],
                                          self.path("redis.log"))

        def pong():
            if not proc.alive():
                raise proc.failure("exited")
            try:
                if redis_call(port, "PING", timeout=1) != "PONG":
                    return False
                # Ours, not another Redis that took the port first?
                reply = redis_call(port, "CONFIG", "GET", "pidfile", timeout=1)
            except (OSError, RedisError):
                return False
            if reply[1].decode() != self.path("redis.pid"):
                raise proc.failure("answers from a Redis that is not ours")
            return True
        try:
            wait_until(pong, START_TIMEOUT, "redis PING")
        except WaitTimeout as e:
            raise proc.failure(str(e)) from None

    def redis(self, *args):
        """One Redis command against this stack's Redis."""
        return redis_call(self.ports["redis"], *args)

    def redis_dump(self, limit=100000):
        """Every key and the values stored under it, as bytes, for checks
        that something is absent from Redis. Bounded by limit keys."""
        out = {}
        cursor = b"0"
        for _ in range(limit):
            cursor, keys = self.redis("SCAN", cursor, "COUNT", "1000")
            for key in keys:
                kind = self.redis("TYPE", key)
                if kind == "string":
                    vals = [self.redis("GET", key)]
                elif kind == "list":
                    vals = self.redis("LRANGE", key, 0, -1)
                elif kind == "hash":
                    vals = self.redis("HGETALL", key)
                elif kind == "set":
                    vals = self.redis("SMEMBERS", key)
                elif kind == "zset":
                    vals = self.redis("ZRANGE", key, 0, -1)
                elif kind == "stream":
                    vals = []
                    for entry_id, fields in self.redis("XRANGE", key, "-", "+"):
                        vals.append(entry_id)
                        vals.extend(fields)
                else:
                    raise StackError("redis_dump: %r has type %r, unknown here" % (key, kind))
                out[key] = [v for v in vals if v is not None]
                if len(out) >= limit:
                    return out
            if cursor in (b"0", 0):
                break
        return out

    def redis_bytes(self):
        """Everything Redis holds now, and everything in its data directory
        (the append-only files, which keep what was since deleted), as one
        bytes value: `needle in st.redis_bytes()` is a real search."""
        parts = []
        for key, vals in self.redis_dump().items():
            parts.append(key)
            parts.extend(vals)
        for root, _, files in os.walk(self.path("redis")):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    parts.append(f.read())
        return b"\n".join(p if isinstance(p, bytes) else str(p).encode() for p in parts)

    # --- Prosody

    def _start_prosody(self):
        port = self.ports["prosody"]
        conf = self.path("prosody.cfg.lua")
        with open(conf, "w") as f:
            f.write(PROSODY_CONF.format(
                tmp=self.tmp, port=port, domain=DOMAIN, extra=self.prosody_extra,
                log_level="debug" if self.prosody_debug else "info"))
        write_accounts(self.path("prosody-data", DOMAIN, "accounts"),
                       {bench_user(i): BENCH_PASSWORD for i in range(self.extra_users)})
        for user, password in USERS.items():
            self._run(["prosodyctl", "--config", conf, "register", user, DOMAIN, password],
                      "registering %s" % user)
        # Roster store: data/<host>/roster/<user>.dat (host and user are
        # plain here; datamanager only escapes unusual characters).
        rosters = {}
        for owner, contact, name, groups in ROSTERS:
            rosters.setdefault(owner, []).append(("%s@%s" % (contact, DOMAIN), name, groups))
        rdir = self.path("prosody-data", DOMAIN, "roster")
        os.makedirs(rdir, exist_ok=True)
        for owner, entries in rosters.items():
            with open(os.path.join(rdir, owner + ".dat"), "w") as f:
                f.write(roster_data(entries))
        self.start_prosody()

    def start_prosody(self):
        """Starts Prosody on its configured port and waits for c2s."""
        port = self.ports["prosody"]
        conf = self.path("prosody.cfg.lua")
        log = self.path("prosody.log")
        offset = os.path.getsize(log) if os.path.exists(log) else 0
        proc = Proc("prosody", ["prosody", "--config", conf, "-F"], self.path("prosody.out"))
        proc.logs.append(log)
        self.procs["prosody"] = proc
        active = "Activated service 'c2s' on [127.0.0.1]:%d" % port

        def listening():
            if not proc.alive():
                raise proc.failure("exited")
            with open(log, errors="replace") as f:
                f.seek(offset)
                text = f.read()
            if "Failed to open server port" in text:
                raise proc.failure("cannot listen")
            return active in text and port_accepts(port)
        try:
            wait_until(listening, START_TIMEOUT, "prosody c2s port %d" % port)
        except WaitTimeout as e:
            raise proc.failure(str(e)) from None

    # --- push

    def keygen(self, kind, path):
        """Runs talkproxy-keygen; returns the public key it prints (or "")."""
        binary = os.path.join(builddir(), "talkproxy-keygen")
        out = self._run([binary, kind, path], "talkproxy-keygen " + kind)
        return out.strip().rsplit(" ", 1)[-1] if ": " in out else ""

    def _start_push(self):
        from harness.pushep import PushEndpoint
        d = self.path("certs")
        self.pushep = PushEndpoint(self.tmp, d + "/localhost.crt",
                                   d + "/localhost.key", self.cafile,
                                   port=self.want_ports.get("push"))
        self.pushep.start()
        self.vapid_public = self.keygen("vapid", self.path("vapid.pem"))
        self.webhook_public = self.keygen("webhook", self.path("webhook.key"))
        self.pushep.config(vapid_public=self.vapid_public,
                           webhook_public=self.webhook_public)

    # --- talkproxy

    def _write_talkproxy_conf(self):
        conf = {
            "redis.host": "127.0.0.1",
            "redis.port": self.ports["redis"],
            "xmpp.connect_host": "127.0.0.1",
            "xmpp.connect_port": self.ports["prosody"],
            "xmpp.cafile": self.cafile,
            "log.level": "debug",
            "log.file": self.path("talkproxyd.log"),
            "daemon.key_file": self.path("master.key"),
            # Tests log in far more often than people do; it_abuse.py sets
            # the real limits it checks.
            "http.login_per_address": 1000000,
            "http.login_failures_per_jid": 1000000,
        }
        if self.want_push:
            conf.update({
                "push.vapid_key": self.path("vapid.pem"),
                "push.vapid_subject": "mailto:admin@example.org",
                "push.webhook_key": self.path("webhook.key"),
                "push.cafile": self.cafile,
                "push.allow_loopback": 1,
            })
        for key, value in self.conf_overrides.items():
            if value is None:
                conf.pop(key, None)
            else:
                conf[key] = value
        sections = {}
        for key, value in conf.items():
            section, name = key.split(".", 1)
            sections.setdefault(section, []).append((name, value))
        with open(self.conf, "w") as f:
            f.write("# talkproxy configuration written by tests/harness/stack.py\n")
            for section, items in sections.items():
                f.write("\n[%s]\n" % section)
                for name, value in items:
                    f.write("%s = %s\n" % (name, value))

    def start_daemon(self):
        """Starts talkproxyd and waits until it listens on the login channel."""
        if "talkproxyd" in self.procs and self.procs["talkproxyd"].alive():
            raise StackError("talkproxyd is already running")
        binary = os.path.join(builddir(), "talkproxyd")
        if not os.access(binary, os.X_OK):
            raise StackError("%s is missing: build first (make)" % binary)
        argv = [binary, "-c", self.conf]
        if self.valgrind:
            # memcheck execs the program in place: the PID is the daemon's.
            argv = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                    "--show-leak-kinds=definite,indirect",
                    "--errors-for-leak-kinds=definite,indirect",
                    "--suppressions=" + os.path.join(srcdir(), "tests", "valgrind.supp"),
                    "--log-file=" + self.path("valgrind.%p.log")] + argv
        proc = Proc("talkproxyd", argv, self.path("talkproxyd.out"))
        proc.logs.append(self.path("talkproxyd.log"))
        self.procs["talkproxyd"] = proc

        def subscribed():
            if not proc.alive():
                raise proc.failure("exited")
            reply = self.redis("PUBSUB", "NUMSUB", "tp:login")
            return int(reply[1]) >= 1
        try:
            wait_until(subscribed, START_TIMEOUT, "talkproxyd to subscribe to tp:login")
        except WaitTimeout as e:
            raise proc.failure(str(e)) from None
        return proc

    def stop_daemon(self, sig=signal.SIGTERM):
        """Stops talkproxyd (sig, then SIGKILL after a bounded wait) and
        returns its exit status."""
        proc = self.procs.pop("talkproxyd", None)
        return proc.stop(sig) if proc else None

    def daemon_pid(self):
        proc = self.procs.get("talkproxyd")
        return proc.pid if proc and proc.alive() else None

    def daemon_log(self):
        try:
            with open(self.path("talkproxyd.log"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # --- lighttpd

    def _start_lighttpd(self):
        port = self.ports["lighttpd"]
        snippet = os.path.join(srcdir(), "conf", "lighttpd", "talkproxy.conf")
        binary = os.environ.get("TP_FCGI_BIN") or os.path.join(builddir(), "talkproxy-fcgi")
        if not os.access(binary, os.X_OK):
            raise StackError("%s is missing: build first (make)" % binary)
        conf = self.path("lighttpd.conf")
        with open(conf, "w") as f:
            f.write(LIGHTTPD_CONF.format(tmp=self.tmp, port=port, bin=binary,
                                         conf=self.conf, snippet=snippet))
        check = subprocess.run(["lighttpd", "-tt", "-f", conf], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if check.returncode != 0:
            raise StackError("lighttpd rejects %s:\n%s" % (conf, check.stdout.decode(errors="replace")))
        proc = Proc("lighttpd", ["lighttpd", "-D", "-f", conf], self.path("lighttpd.out"))
        proc.logs.append(self.path("lighttpd-error.log"))
        self.procs["lighttpd"] = proc

        errorlog = self.path("lighttpd-error.log")

        def listening():
            # lighttpd writes "server started" once it has bound its port.
            if not proc.alive():
                raise proc.failure("exited")
            return "server started" in tail(errorlog, 50) and port_accepts(port)
        try:
            wait_until(listening, START_TIMEOUT, "lighttpd port %d" % port)
        except WaitTimeout as e:
            raise proc.failure(str(e)) from None

    def stop_web(self, grace=3.0):
        """Stops lighttpd, then waits up to grace seconds for the handlers
        it ran to exit (lighttpd sends them SIGTERM as it stops). Returns
        the PIDs that outlived it; those are then stopped here, by PID.
        Apache: the same, see harness/apache.py."""
        if self.apache:
            apache, self.apache = self.apache, None
            return apache.stop(grace)
        proc = self.procs.pop("lighttpd", None)
        if not proc:
            return []
        pids = self.handler_pids(proc)
        proc.stop()
        deadline = time.monotonic() + grace
        for _ in range(int(grace / POLL) + 1):
            if all(pid_gone(p) for p in pids) or time.monotonic() > deadline:
                break
            time.sleep(POLL)
        survivors = [p for p in pids if not pid_gone(p)]
        for pid in survivors:
            stop_pid(pid, must_contain=self.conf, timeout=1.0)
        return survivors

    def handler_pids(self, proc=None):
        """PIDs of the processes lighttpd spawned (the talkproxy-fcgi
        backends), from /proc/<pid>/task/*/children. Apache: its handlers,
        see harness/apache.py."""
        if self.apache and proc is None:
            return self.apache.handler_pids()
        proc = proc or self.procs.get("lighttpd")
        if not proc or not proc.alive():
            return []
        return sorted(set(children(proc.pid)))

    # --- the API

    def call(self, name, body=None, token=None, method="POST", headers=None,
             content_type="application/json", path=None):
        """One API request: POST /v1/<name> unless path is given. body is a
        dict (sent as JSON), bytes (sent as is) or None. Returns (status,
        headers, JSON value or bytes)."""
        hdrs = {}
        if content_type is not None:
            hdrs["Content-Type"] = content_type
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        hdrs.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        return http_call(self.ports["lighttpd"], method, path or "/v1/" + name, body, hdrs)

    def login(self, user, resource=None, password=None, full_retries=0):
        """Logs user in through the API; asserts 200 and returns the token.
        The whole answer is kept in self.sessions[token]. With several
        daemons a full one may win the login's claim and answer 503
        daemon_full: it is tried again up to full_retries times, as
        phones do."""
        body = {"jid": "%s@%s" % (user, DOMAIN),
                "password": password if password is not None else USERS[user]}
        if resource is not None:
            body["resource"] = resource
        for _ in range(full_retries + 1):
            status, _, answer = self.call("login", body)
            if not (status == 503 and isinstance(answer, dict) and
                    answer.get("error", {}).get("code") == "daemon_full"):
                break
            time.sleep(0.2)
        if status != 200 or not isinstance(answer, dict) or "token" not in answer:
            raise StackError("login %s answered %s %r" % (user, status, answer))
        self.sessions[answer["token"]] = answer
        return answer["token"]

    def peer(self, user, resource="peer", on_message=None, **kw):
        """A real XMPP client logged in as user (closed with the stack)."""
        p = Peer("%s@%s/%s" % (user, DOMAIN, resource), USERS[user],
                 self.ports["prosody"], self.cafile, on_message=on_message,
                 **kw)
        self.peers.append(p)
        return p


BENCH_PASSWORD = "bench-pw"


def bench_user(i):
    return "bench%05d" % i


def write_accounts(directory, users):
    """Writes Prosody internal_hashed account files (SCRAM-SHA-1, as
    prosodyctl would) directly: registering thousands of users one
    prosodyctl run at a time would take minutes."""
    import hmac
    import uuid
    os.makedirs(directory, exist_ok=True)
    iterations = 4096
    for user, password in users.items():
        salt = str(uuid.uuid4())
        salted = hashlib.pbkdf2_hmac("sha1", password.encode(), salt.encode(), iterations)
        client_key = hmac.new(salted, b"Client Key", "sha1").digest()
        server_key = hmac.new(salted, b"Server Key", "sha1").hexdigest()
        with open(os.path.join(directory, user + ".dat"), "w") as f:
            f.write('return {\n\t["salt"] = "%s";\n\t["iteration_count"] = %d;\n'
                    '\t["stored_key"] = "%s";\n\t["server_key"] = "%s";\n};\n'
                    % (salt, iterations, hashlib.sha1(client_key).hexdigest(), server_key))


def token_hashes(token):
    """Plausible Redis keys for a token: BLAKE2b-256 (crypto_generichash) of
    its text and of its decoded bytes."""
    import base64
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return {
        "text": hashlib.blake2b(token.encode(), digest_size=32).hexdigest(),
        "bytes": hashlib.blake2b(raw, digest_size=32).hexdigest(),
    }


# ---------------------------------------------------------------------------
# By hand: python3 -m harness.stack --demo

def _demo():
    def show(rec):
        what = rec["body"] if rec["body"] is not None else "(no body)"
        state = " [%s]" % rec["state"] if rec["state"] else ""
        print("bob received from %s: %s%s" % (rec["from"], what, state), flush=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt  # SIGTERM stops the demo like Ctrl-C
    signal.signal(signal.SIGTERM, on_term)

    with Stack(ports=DEMO_PORTS) as st:
        url = st.url
        j = "-H 'Content-Type: application/json'"
        print("""
talkproxy demo stack is up (files in {tmp}).
  API      {url}/v1/...   (lighttpd, conf/lighttpd/talkproxy.conf)
  Prosody  127.0.0.1:{xmpp}  users alice bob carol dave, password <user>-pw
  Redis    127.0.0.1:{redis}
  logs     {tmp}/talkproxyd.log  {tmp}/lighttpd-error.log  {tmp}/prosody.log

Try (bob is online as a real XMPP client and prints what he receives):

  curl -s {url}/health
  TOKEN=$(curl -s {j} -d '{{"jid":"alice@localhost","password":"alice-pw"}}' {url}/v1/login | sed 's/.*"token": *"\\([^"]*\\)".*/\\1/'); echo $TOKEN
  curl -s {j} -H "Authorization: Bearer $TOKEN" -d '{{"to":"bob@localhost","body":"Hello Bob","id":"demo-1"}}' {url}/v1/message
  curl -s {j} -H "Authorization: Bearer $TOKEN" -d '{{}}' {url}/v1/roster
  curl -s {j} -H "Authorization: Bearer $TOKEN" -d '{{"show":"away","status":"at lunch"}}' {url}/v1/presence
  curl -s {j} -H "Authorization: Bearer $TOKEN" -d '{{}}' {url}/v1/logout

Ctrl-C stops everything.
""".format(tmp=st.tmp, url=url, j=j, xmpp=st.ports["prosody"], redis=st.ports["redis"]),
              flush=True)
        st.peer("bob", resource="demo", on_message=show)
        try:
            for _ in range(10 ** 9):  # until Ctrl-C or SIGTERM
                time.sleep(1)
                for name, proc in list(st.procs.items()):
                    if not proc.alive():
                        raise proc.failure("exited")
        except KeyboardInterrupt:
            print("\nstopping", flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--demo"]:
        sys.stderr.write("usage: python3 -m harness.stack --demo\n")
        return 2
    _demo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
