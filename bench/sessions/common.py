"""
bench/sessions/common.py: what the session benchmarks (issue 6 figures
3-7) share: the harness import, a hashed CA directory built from the
system's store, logins published straight onto the bus (as the handlers
would), and /proc readings (RSS, CPU, descriptors).

Every wait here is bounded in count and time; every process is ours and
stopped by its PID.
"""

import base64
import glob
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))

# The harness finds the programs in TP_BUILDDIR (default: the source tree);
# this checkout builds in build/.
if not os.environ.get("TP_BUILDDIR"):
    for cand in (os.path.join(REPO, "build"), REPO):
        if os.access(os.path.join(cand, "talkproxyd"), os.X_OK):
            os.environ["TP_BUILDDIR"] = cand
            break

# Stack, StackError and bench_user are re-exported for figures.py.
from harness.stack import (BENCH_PASSWORD, DOMAIN, Proc, Stack,  # noqa: E402,F401
                           StackError, bench_user, builddir)

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def log(msg):
    """Progress on stderr, so stdout keeps only the table."""
    sys.stderr.write("# %s\n" % msg)
    sys.stderr.flush()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------------------
# /proc

def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_ticks(pid):
    """utime + stime of pid (all its threads), in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_seconds(pid):
    return cpu_ticks(pid) / CLK_TCK


def redis_calls(st):
    """Redis's per-command call counts (INFO commandstats)."""
    txt = st.redis("INFO", "commandstats")
    txt = txt.decode() if isinstance(txt, bytes) else txt
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"cmdstat_([\w|]+):calls=(\d+)", txt)}


def redis_calls_delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)}


def max_fd(pid):
    """The highest descriptor number pid holds, and how many it holds."""
    fds = [int(x) for x in os.listdir("/proc/%d/fd" % pid)]
    return (max(fds) if fds else -1), len(fds)


def smaps_summary(pid):
    """Anonymous memory by mapping kind: heap, anonymous mmaps (malloc
    arenas and large blocks), everything else."""
    out = {"heap": 0, "anon": 0, "other": 0}
    kind = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
                kind = "heap" if name == "[heap]" else "anon" if not name else "other"
            elif line.startswith("Rss:"):
                out[kind] += int(line.split()[1])
    return out


def machine():
    """The machine line for the table: cores, RAM, kernel, package versions."""
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    versions = []
    for pkg in ("prosody", "redis-server", "libstrophe0", "lighttpd",
                "libssl3"):
        try:
            v = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               timeout=10).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            v = ""
        versions.append("%s %s" % (pkg, v or "?"))
    debian = "?"
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        pass
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = "?"
    try:
        commit = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                timeout=10).stdout.decode().strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"nproc": os.cpu_count(), "ram_gib": mem_kib / 1048576.0, "commit": commit,
            "kernel": os.uname().release, "debian": debian, "cpu": model,
            "versions": versions}


# ---------------------------------------------------------------------------
# CA setup

def make_ca_dir(st, name="cadir"):
    """A hashed CA directory the way a site has one: every certificate of
    the system's store (/etc/ssl/certs/*.pem) plus the harness's test CA,
    then `openssl rehash`. Returns its path (inside the stack's tmp)."""
    d = st.path(name)
    if os.path.isdir(d):
        return d
    os.mkdir(d)
    n = 0
    for pem in sorted(glob.glob("/etc/ssl/certs/*.pem")):
        os.symlink(os.path.realpath(pem), os.path.join(d, os.path.basename(pem)))
        n += 1
    shutil.copy(st.cafile, os.path.join(d, "talkproxy-test-ca.pem"))
    subprocess.run(["openssl", "rehash", d], check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log("CA directory %s: %d system certificates + the test CA, rehashed" % (d, n))
    return d


# ---------------------------------------------------------------------------
# Logins on the bus

def login_envelope(user, timeout, password=BENCH_PASSWORD, resource=None):
    """A login request envelope as the handler builds it. Returns (rid, rk
    bytes, JSON text): the reply comes sealed with rk."""
    rid = os.urandom(16).hex()
    rk = os.urandom(32)
    body = {"jid": "%s@%s" % (user, DOMAIN), "password": password}
    if resource:
        body["resource"] = resource
    env = {"v": 2, "call": "login", "rid": rid, "th": "", "peer": "bench",
           "deadline": int((time.time() + timeout) * 1000),
           "rk": base64.urlsafe_b64encode(rk).rstrip(b"=").decode(),
           "body": body}
    return rid, rk, json.dumps(env)


def open_reply(rid, rk, blob):
    """A daemon's reply, opened as the handler does: nonce (24) ||
    XChaCha20-Poly1305 with "tp:reply:<rid>" as associated data (PyNaCl,
    independent of our C). Returns (status, body)."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
    plain = crypto_aead_xchacha20poly1305_ietf_decrypt(
        blob[24:], ("tp:reply:" + rid).encode(), blob[:24], rk)
    o = json.loads(plain.decode("utf-8"))
    return o.get("status"), o.get("body")


class Redis:
    """One pipelined RESP connection (the harness opens one per command,
    too slow for thousands of logins)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def close(self):
        self.f.close()
        self.sock.close()

    def send(self, *cmds):
        from harness.stack import _resp_encode
        self.sock.sendall(b"".join(_resp_encode(list(c)) for c in cmds))

    def read(self):
        from harness.stack import _resp_read
        return _resp_read(self.f)

    def call(self, *args):
        self.send(args)
        return self.read()


def publish_logins(redis_port, users, timeout):
    """PUBLISHes one login per user on tp:login (pipelined). Returns
    [(rid, rk, user, receivers)]."""
    r = Redis(redis_port)
    try:
        batch = []
        for user in users:
            rid, rk, env = login_envelope(user, timeout)
            batch.append((rid, rk, user))
            r.send(("PUBLISH", "tp:login", env))
        return [(rid, rk, user, r.read()) for rid, rk, user in batch]
    finally:
        r.close()


def collect_replies(redis_port, sent, timeout, tokens=None):
    """Waits (bounded: timeout in all) for the reply to every login in
    sent (publish_logins' list). Returns ({user: (status, error code or
    None)}, seconds until the last reply arrived). No reply: status None.
    tokens (a dict), when given, receives user -> session token."""
    r = Redis(redis_port, timeout=timeout + 10)
    out = {}
    t0 = time.monotonic()
    last = 0.0
    deadline = t0 + timeout
    try:
        for rid, rk, user, _ in sent:
            left = deadline - time.monotonic()
            reply = None
            if left > 0:
                reply = r.call("BLPOP", "tp:reply:" + rid, "%.2f" % max(0.01, left))
            if not reply:
                out[user] = (None, "no reply")
                continue
            last = time.monotonic() - t0
            status, body = open_reply(rid, rk, reply[1])
            code = None
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                code = body["error"].get("code")
            elif tokens is not None and isinstance(body, dict) and "token" in body:
                tokens[user] = body["token"]
            out[user] = (status, code)
    finally:
        r.close()
    return out, last


def tally(replies):
    """{"200": n, "503 daemon_full": n, ...}"""
    counts = {}
    for status, code in replies.values():
        key = str(status) if status == 200 else "%s %s" % (status, code)
        counts[key] = counts.get(key, 0) + 1
    return counts


def count_in_log(path, pattern, offset=0):
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            return len(re.findall(pattern, f.read()))
    except OSError:
        return 0


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def wait_online(logs, n, timeout, offsets=None, what="sessions online"):
    """Polls daemon logs until n 'online as' lines appeared after the
    offsets. Returns (seconds, count) — count < n when time ran out."""
    offsets = offsets or [0] * len(logs)
    t0 = time.monotonic()
    deadline = t0 + timeout
    count = 0
    for _ in range(int(timeout / 0.02) + 2):
        count = sum(count_in_log(p, r" online as ", o) for p, o in zip(logs, offsets))
        if count >= n or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    return time.monotonic() - t0, count


def login_all(st, users, timeout):
    """Logs users in through the bus, as the handlers would, and waits for
    every reply (a 200 comes once the session is online: bound, roster,
    presence). Returns (seconds from the first PUBLISH to the last reply,
    {user: (status, code)})."""
    t0 = time.monotonic()
    sent = publish_logins(st.ports["redis"], users, timeout)
    replies, _ = collect_replies(st.ports["redis"], sent, timeout)
    return time.monotonic() - t0, replies


# ---------------------------------------------------------------------------
# Daemons beyond the harness's one

class ExtraDaemon:
    """Another talkproxyd on the stack's config (same Redis, Prosody, key),
    with its own log file: Stack.start_daemon() refuses a second. Stopped
    by its PID."""

    def __init__(self, st, index, overrides=None):
        self.st = st
        self.index = index
        src = st.conf
        self.conf = st.path("talkproxyd-%d.conf" % index)
        self.log = st.path("talkproxyd-%d.log" % index)
        with open(src) as f:
            text = f.read()
        text = re.sub(r"(?m)^file = .*$", "file = %s" % self.log, text)
        for key, value in (overrides or {}).items():
            text = re.sub(r"(?m)^%s = .*$" % re.escape(key), "%s = %s" % (key, value), text)
        with open(self.conf, "w") as f:
            f.write(text)
        binary = os.path.join(builddir(), "talkproxyd")
        self.proc = Proc("talkproxyd-%d" % index, [binary, "-c", self.conf],
                         st.path("talkproxyd-%d.out" % index))
        self.proc.logs.append(self.log)
        self.pid = self.proc.pid

    def wait_started(self, timeout=30):
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.05) + 2):
            if not self.proc.alive():
                raise self.proc.failure("exited")
            if count_in_log(self.log, r" started as ") >= 1:
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        raise self.proc.failure("did not start in %d s" % timeout)

    def stop(self, sig=None):
        import signal
        return self.proc.stop(sig or signal.SIGTERM)


def bare_login_binary():
    """bench/sessions/bare_login as make builds it (bench/sessions.am), or,
    when that is missing or older than its source, compiled here with the
    same warnings into a temporary file named by the source's hash."""
    import hashlib
    import tempfile
    src = os.path.join(HERE, "bare_login.c")
    built = os.path.join(builddir(), "bench", "sessions", "bare_login")
    if os.access(built, os.X_OK) and os.path.getmtime(built) >= os.path.getmtime(src):
        return built
    with open(src, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    out = os.path.join(tempfile.gettempdir(), "tp-bench-bare_login-%s" % digest)
    if os.access(out, os.X_OK):
        return out
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libstrophe"],
                           stdout=subprocess.PIPE, check=True,
                           timeout=30).stdout.decode().split()
    tmp = out + ".%d" % os.getpid()
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-g", "-Wall", "-Wextra",
                    "-Werror", "-o", tmp, src] + flags, check=True, timeout=120)
    os.rename(tmp, out)
    return out
