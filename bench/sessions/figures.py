"""
bench/sessions/figures.py: issue 6 figures 3-7, one function each, and
carry_sessions(), a context manager that leaves N sessions up across
several talkproxyd processes for other benchmarks to measure at that size.

Logins are published straight onto the bus (tp:login), as the handlers
would, so login times are the daemon's, not the web server's. A session
counts as online when its daemon logs "online as" (after roster and
initial presence), which needs no decoding of the sealed replies.
"""

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from common import (DOMAIN, ExtraDaemon, Stack, StackError, bare_login_binary,
                    bench_user, collect_replies, count_in_log, cpu_seconds,
                    cpu_ticks, log, log_size, login_all, make_ca_dir, max_fd,
                    median, publish_logins, redis_calls, redis_calls_delta,
                    rss_kib, smaps_summary, tally, wait_online)

LOGIN_TIMEOUT = float(os.environ.get("TP_BENCH_LOGIN_TIMEOUT", "240"))


# ---------------------------------------------------------------------------
# CA setups: what the daemon is configured with, and what the process's
# environment tells OpenSSL.

class CaSetup:
    """How TLS peers are verified in a run: the daemon's CA settings and
    environment, and the bare client's arguments and environment.

    "capath" (the setup issue 6 asks for): xmpp.capath = a hashed copy of
        /etc/ssl/certs plus the test CA, no xmpp.cafile. The bare client
        gets the same directory (-C) and, like talkproxyd since ea19192,
        SSL_CERT_FILE=/dev/null (-L), so both load CAs lazily from it.
    "default": neither key; SSL_CERT_DIR points both at that directory
        (it stands for /etc/ssl/certs, which lacks the test CA).
    "bundle" (bare client only): libstrophe 0.12 as it comes, -C DIR
        without -L: SSL_CTX_set_default_verify_paths() parses Debian's
        whole bundle (/etc/ssl/certs/ca-certificates.crt) for every
        connection. This is what talkproxyd did before ea19192.
    """

    SIDES = {"capath": ("daemon", "bare"), "default": ("daemon", "bare"),
             "bundle": ("bare",)}

    def __init__(self, kind, capath):
        if kind not in self.SIDES:
            raise ValueError("CA kind %r is not one of %s" % (kind, ", ".join(self.SIDES)))
        self.kind = kind
        self.capath = capath
        self.sides = self.SIDES[kind]

    def _env(self):
        env = dict(os.environ)
        env.pop("SSL_CERT_FILE", None)
        env.pop("SSL_CERT_DIR", None)
        if self.kind == "default":
            env["SSL_CERT_DIR"] = self.capath
        return env

    def daemon_env(self):
        return self._env()

    def bare_env(self):
        return self._env()

    def daemon_overrides(self):
        if self.kind == "capath":
            return {"xmpp.capath": self.capath, "xmpp.cafile": None}
        return {"xmpp.capath": None, "xmpp.cafile": None}

    def bare_args(self):
        return {"capath": ["-C", self.capath, "-L"], "default": ["-L"],
                "bundle": ["-C", self.capath]}[self.kind]


@contextlib.contextmanager
def environ(env):
    """Runs the body with os.environ replaced (the harness's Proc inherits
    it): how a daemon gets SSL_CERT_FILE without touching the harness."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class BenchStack:
    """A Stack with N bench accounts, a hashed CA directory and a default
    bundle, the daemon configured for one CaSetup. The CA directory lives
    outside the stack's tmp (its path goes into the config before the stack
    exists) and is filled once the test CA is made."""

    def __init__(self, users, kind="capath", web=False, daemon=True, push=False,
                 **overrides):
        self.users = users
        self.kind = kind
        self.web = web
        self.push = push
        self.want_daemon = daemon
        self.overrides = overrides
        self.cadir_parent = None
        self.st = None

    def __enter__(self):
        self.cadir_parent = tempfile.mkdtemp(prefix="tp-bench-ca-")
        capath = os.path.join(self.cadir_parent, "cadir")
        self.ca = CaSetup(self.kind, capath)
        conf = {"log.level": "info"}
        conf.update(self.ca.daemon_overrides())
        conf.update(self.overrides)
        self.st = Stack(web=self.web, daemon=False, push=self.push,
                        extra_users=self.users, **conf)
        self.st.__enter__()
        try:
            self._fill_ca(capath)
            if self.want_daemon:
                self.start_daemon()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _fill_ca(self, capath):
        # make_ca_dir builds under the stack's tmp; the config names this
        # link, made before the stack (and its test CA) existed.
        os.symlink(make_ca_dir(self.st), capath)

    def __exit__(self, *exc):
        try:
            if self.st:
                self.st.__exit__(*exc)
        finally:
            if self.cadir_parent:
                shutil.rmtree(self.cadir_parent, ignore_errors=True)
        return False

    def start_daemon(self):
        with environ(self.ca.daemon_env()):
            return self.st.start_daemon()

    def pid(self):
        return self.st.daemon_pid()

    def prosody_pid(self):
        return self.st.procs["prosody"].pid

    def reset(self):
        """Stops the daemon (SIGTERM: streams close cleanly) and forgets
        every session, so the next daemon starts empty."""
        self.st.stop_daemon()
        self.st.redis("FLUSHALL")


def daemon_login(bs, n, first=0):
    """Starts a fresh daemon, logs in n sessions, measures. Stops it after."""
    st = bs.st
    bs.start_daemon()
    pid = bs.pid()
    time.sleep(0.3)
    rss0, cpu0, pcpu0 = rss_kib(pid), cpu_ticks(pid), cpu_ticks(bs.prosody_pid())
    seconds, replies = login_all(st, [bench_user(first + i) for i in range(n)], LOGIN_TIMEOUT)
    online = sum(1 for status, _ in replies.values() if status == 200)
    if online < n:
        log("  not every login succeeded: %s" % tally(replies))
    cpu1, pcpu1 = cpu_ticks(pid), cpu_ticks(bs.prosody_pid())
    time.sleep(1.0)
    rss1 = rss_kib(pid)
    res = {"n": n, "online": online, "seconds": seconds,
           "kib_per_session": (rss1 - rss0) / n, "rss_kib": rss1,
           "cpu_ms_per_login": (cpu1 - cpu0) * 1000.0 / os.sysconf("SC_CLK_TCK") / n,
           "prosody_cpu_ms_per_login": (pcpu1 - pcpu0) * 1000.0 / os.sysconf("SC_CLK_TCK") / n,
           "max_fd": max_fd(pid)[0], "smaps": smaps_summary(pid)}
    return res


def bare_login(bs, n, first=0, hold=0):
    """The bare libstrophe client doing the same n logins."""
    argv = [bare_login_binary(), "-p", str(bs.st.ports["prosody"]), "-n", str(n),
            "-o", str(first), "-d", DOMAIN, "-t", str(int(LOGIN_TIMEOUT)),
            "-s", str(hold)] + bs.ca.bare_args()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=bs.ca.bare_env())
    try:
        out, err = p.communicate(timeout=LOGIN_TIMEOUT + hold + 30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate(timeout=10)
        raise StackError("bare_login did not finish")
    lines = [l for l in out.decode(errors="replace").splitlines() if l.startswith("{")]
    if not lines:
        raise StackError("bare_login printed nothing: %s" % err.decode(errors="replace")[-1000:])
    return json.loads(lines[-1])


# ---------------------------------------------------------------------------
# Figure 3 (and 4, 6 on the 900 run)

def fig3(plan, extra=None):
    """plan: [(CA kind, [(N, runs)])]. For each: daemon login time and
    RSS/session, and the bare client's, medians over runs (daemon and bare
    alternate, so drift hits both). extra(bs, n, kind) runs after the last
    daemon run of a size, with that daemon still up (figures 4 and 6 use
    the 900 one)."""
    rows = []
    for kind, sizes in plan:
        with BenchStack(max(n for n, _ in sizes), kind=kind, daemon=False) as bs:
            sides = bs.ca.sides
            for n, runs in sizes:
                d, b = [], []
                extra_out = None
                for r in range(runs):
                    if "daemon" in sides:
                        log("fig3 %s N=%d run %d/%d: daemon" % (kind, n, r + 1, runs))
                        d.append(daemon_login(bs, n))
                        log("  daemon %.2f s, %.1f KiB/session, %.1f ms CPU/login, online %d, "
                            "max fd %d" % (d[-1]["seconds"], d[-1]["kib_per_session"],
                                           d[-1]["cpu_ms_per_login"], d[-1]["online"],
                                           d[-1]["max_fd"]))
                        if extra and r == runs - 1:
                            extra_out = extra(bs, n, kind)
                        bs.reset()
                    if "bare" in sides:
                        log("fig3 %s N=%d run %d/%d: bare client" % (kind, n, r + 1, runs))
                        b.append(bare_login(bs, n))
                        log("  bare %.2f s, %.1f KiB/session, %.1f ms CPU/login, online %d" % (
                            b[-1]["seconds"], b[-1]["kib_per_session"],
                            b[-1].get("cpu_ms_per_login", float("nan")), b[-1]["online"]))
                rows.append({"kind": kind, "n": n, "runs": runs, "daemon": d,
                             "bare": b, "extra": extra_out})
    return rows


def summarize3(row):
    d, b = row["daemon"], row["bare"]
    nan = float("nan")

    def med(xs, key):
        return median([x[key] for x in xs]) if xs else nan
    ds, bs_ = med(d, "seconds"), med(b, "seconds")
    return {
        "kind": row["kind"], "n": row["n"], "runs": row["runs"],
        "daemon_s": ds, "bare_s": bs_,
        "ratio": ds / bs_ if d and b and bs_ else nan,
        "daemon_kib": med(d, "kib_per_session"), "bare_kib": med(b, "kib_per_session"),
        "daemon_cpu_ms": med(d, "cpu_ms_per_login"),
        "bare_cpu_ms": med(b, "cpu_ms_per_login") if b and "cpu_ms_per_login" in b[0] else nan,
        "prosody_cpu_ms": med(d, "prosody_cpu_ms_per_login"),
        "online": min(x["online"] for x in d) if d else None,
        "bare_online": min(x["online"] for x in b) if b else None,
        "max_fd": max(x["max_fd"] for x in d) if d else None,
        "all_daemon_s": [x["seconds"] for x in d], "all_bare_s": [x["seconds"] for x in b],
    }


# ---------------------------------------------------------------------------
# Figure 4: idle CPU

def fig4_idle(bs, seconds=30.0):
    """Daemon (and Prosody, Redis) CPU over `seconds` with the sessions up
    and nothing happening."""
    pids = {"daemon": bs.pid(), "prosody": bs.prosody_pid(),
            "redis": bs.st.procs["redis"].pid}
    time.sleep(2.0)  # let the tail of the logins settle
    t0 = time.monotonic()
    c0 = {k: cpu_seconds(p) for k, p in pids.items()}
    r0 = redis_calls(bs.st)
    time.sleep(seconds)
    c1 = {k: cpu_seconds(p) for k, p in pids.items()}
    wall = time.monotonic() - t0
    calls = redis_calls_delta(r0, redis_calls(bs.st))
    calls.pop("info", None)
    return {k: 100.0 * (c1[k] - c0[k]) / wall for k in pids} | {
        "seconds": wall, "redis_calls_per_s": sum(calls.values()) / wall,
        "redis_calls": calls}


# ---------------------------------------------------------------------------
# Figure 6: restart

def log_phases(path, offset, wall0):
    """Seconds after wall0 of the restore's milestones in a daemon log:
    first record restored, adoption done, first and last 'online as';
    and how many streams were resumed (XEP-0198) rather than bound anew."""
    import datetime
    import re
    out = {"resumed": 0}
    with open(path, errors="replace") as f:
        f.seek(offset)
        for line in f:
            m = re.match(r"(\S+)Z talkproxyd\[\d+\] \w+: (.*)", line)
            if not m:
                continue
            try:
                t = datetime.datetime.fromisoformat(m.group(1)).replace(
                    tzinfo=datetime.timezone.utc).timestamp() - wall0
            except ValueError:
                continue
            msg = m.group(2)
            if "restored from its record" in msg:
                out.setdefault("first_restored", t)
            elif msg.startswith("adopted "):
                out.setdefault("adopted", t)
            elif msg.startswith("stream of ") and msg.endswith(" resumed"):
                out["resumed"] += 1
            elif " online as " in msg:
                out.setdefault("first_online", t)
                out["last_online"] = t
    return out


def fig6_restart(bs, n, runs=1, sig=signal.SIGKILL):
    """Stops the daemon holding n sessions with sig (SIGKILL: a crash;
    SIGTERM: a planned restart, streams closed first), starts a new one,
    times until every session is online again, from the start of the new
    process. Runs times; the daemon is left up with the sessions restored."""
    out = []
    for r in range(runs):
        bs.st.stop_daemon(sig)
        logp = bs.st.path("talkproxyd.log")
        offset = log_size(logp)
        ppid = bs.prosody_pid()
        pc0 = cpu_ticks(ppid)
        wall0 = time.time()
        t0 = time.monotonic()
        bs.start_daemon()
        started = time.monotonic() - t0
        secs, online = wait_online([logp], n, LOGIN_TIMEOUT, [offset])
        tck = os.sysconf("SC_CLK_TCK")
        res = {"seconds": started + secs, "start_s": started, "online": online,
               "rss_kib": rss_kib(bs.pid()), "signal": signal.Signals(sig).name,
               "daemon_cpu_ms_per_session": cpu_ticks(bs.pid()) * 1000.0 / tck / n,
               "prosody_cpu_ms_per_session": (cpu_ticks(ppid) - pc0) * 1000.0 / tck / n}
        res.update(log_phases(logp, offset, wall0))
        out.append(res)
        log("fig6 restore after %s %d/%d: %.2f s, %d online (%d resumed); adopted "
            "at %.2f s, online %.2f..%.2f s; CPU/session daemon %.1f ms, Prosody %.1f ms" % (
                res["signal"], r + 1, runs, res["seconds"], online, res["resumed"],
                res.get("adopted", float("nan")), res.get("first_online", float("nan")),
                res.get("last_online", float("nan")), res["daemon_cpu_ms_per_session"],
                res["prosody_cpu_ms_per_session"]))
    return out


# ---------------------------------------------------------------------------
# Figure 5: login storm

class Sender:
    """POST /v1/message at a steady rate through lighttpd. Latency is
    measured from each request's scheduled time (no coordinated omission:
    a stalled request does not delay the schedule; each request runs in its
    own thread, at most `inflight` at once)."""

    def __init__(self, port, token, to, rate=20.0, inflight=64):
        self.port, self.token, self.to = port, token, to
        self.interval = 1.0 / rate
        self.inflight = threading.BoundedSemaphore(inflight)
        self.samples = []  # (scheduled monotonic, latency s, status)
        self.lock = threading.Lock()
        self.stop_evt = threading.Event()
        self.thread = None
        self.seq = 0

    def _one(self, scheduled, seq):
        status = None
        try:
            body = json.dumps({"to": self.to, "body": "storm %d" % seq,
                               "id": "storm-%d-%s" % (seq, os.urandom(4).hex())})
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request("POST", "/v1/message", body,
                             {"Content-Type": "application/json",
                              "Authorization": "Bearer " + self.token})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            finally:
                conn.close()
        except OSError:
            status = -1
        lat = time.monotonic() - scheduled
        with self.lock:
            self.samples.append((scheduled, lat, status))
        self.inflight.release()

    def _run(self):
        t = time.monotonic()
        for _ in range(10 ** 6):
            if self.stop_evt.is_set():
                break
            now = time.monotonic()
            if now < t:
                time.sleep(t - now)
            if not self.inflight.acquire(timeout=5):
                break
            self.seq += 1
            threading.Thread(target=self._one, args=(t, self.seq), daemon=True).start()
            t += self.interval

    def start(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self, wait=35.0):
        self.stop_evt.set()
        self.thread.join(10)
        deadline = time.monotonic() + wait
        for _ in range(int(wait / 0.05) + 1):  # outstanding requests
            with self.lock:
                if len(self.samples) >= self.seq or time.monotonic() > deadline:
                    break
            time.sleep(0.05)

    def between(self, t0, t1):
        with self.lock:
            return [(lat, st) for sch, lat, st in self.samples if t0 <= sch < t1]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def fig5_storm(n=500, runs=1, rate=20.0, baseline_s=3.0):
    """While n sessions log in (published at once), the message latency of
    an already logged-in session, through lighttpd. A baseline before the
    storm in the same run."""
    out = []
    with BenchStack(n, kind="capath", web=True, daemon=False) as bs:
        st = bs.st
        for r in range(runs):
            bs.start_daemon()
            token = st.login("alice")
            st.peer("bob", resource="storm")
            sender = Sender(st.ports["lighttpd"], token, "bob@%s" % DOMAIN, rate=rate)
            sender.start()
            time.sleep(baseline_s)
            t_storm = time.monotonic()
            log("fig5 run %d/%d: storm of %d logins" % (r + 1, runs, n))
            secs, replies = login_all(st, [bench_user(i) for i in range(n)], LOGIN_TIMEOUT)
            online = sum(1 for status, _ in replies.values() if status == 200)
            t_end = time.monotonic()
            sender.stop()
            base = sender.between(t_storm - baseline_s, t_storm)
            storm = sender.between(t_storm, t_end)
            bl = [l for l, s in base if s == 200]
            sl = [l for l, s in storm if s == 200]
            res = {"login_s": secs, "online": online,
                   "base_p50": pct(bl, 50), "base_p99": pct(bl, 99),
                   "p50": pct(sl, 50), "p99": pct(sl, 99), "max": max(sl) if sl else float("nan"),
                   "requests": len(storm), "ok": len(sl),
                   "errors": sorted(set(s for _, s in storm + base if s != 200))}
            log("  storm %.1f s: p50 %.1f ms p99 %.1f ms max %.1f ms (%d/%d ok); "
                "baseline p50 %.1f p99 %.1f" % (
                    secs, res["p50"] * 1e3, res["p99"] * 1e3, res["max"] * 1e3, res["ok"],
                    res["requests"], res["base_p50"] * 1e3, res["base_p99"] * 1e3))
            out.append(res)
            for p in st.peers:
                p.close()
            st.peers = []
            bs.reset()
    return out


# ---------------------------------------------------------------------------
# Figure 7: several daemons, thousands of sessions

@contextlib.contextmanager
def carry_sessions(total=5000, per_daemon=900, kind="capath", web=False,
                   push=False, retries=3, **overrides):
    """Brings `total` sessions up across ceil(total / per_daemon) talkproxyd
    processes sharing one Redis and one Prosody, and yields a Carrier
    (.bs, .st, .daemons: [(name, pid, log path)], .login_s, .online,
    .retried, .tokens: {bench user: session token}). web and push are Stack's (lighttpd; the local push endpoint
    and keys), overrides are talkproxy config keys ("section.key": value).
    Each daemon gets daemon.max_sessions = per_daemon. The
    first daemon is the harness's own; the others are ExtraDaemon (same
    config file contents, own log), stopped by PID on exit.

    Logins go to tp:login, where every daemon competes for each (the first
    to claim it answers). A login answered with "daemon_full" (a full daemon
    won the claim) is not online: those users are published again, up to
    `retries` more times, as a phone would retry."""
    ndaemons = -(-total // per_daemon)
    conf = dict(overrides)
    conf["daemon.max_sessions"] = per_daemon
    with BenchStack(total, kind=kind, web=web, push=push, daemon=False, **conf) as bs:
        st = bs.st
        extras = []
        try:
            bs.start_daemon()
            daemons = [("talkproxyd", bs.pid(), st.path("talkproxyd.log"))]
            with environ(bs.ca.daemon_env()):
                for i in range(1, ndaemons):
                    d = ExtraDaemon(st, i)
                    extras.append(d)
            for d in extras:
                d.wait_started()
                daemons.append(("talkproxyd-%d" % d.index, d.pid, d.log))
            # every daemon subscribed to tp:login?
            for _ in range(100):
                if int(st.redis("PUBSUB", "NUMSUB", "tp:login")[1]) >= ndaemons:
                    break
                time.sleep(0.1)
            c = Carrier(bs, daemons, extras)
            c.login(total, retries)
            yield c
        finally:
            for d in extras:
                try:
                    d.stop()
                except Exception as e:  # keep stopping the rest
                    log("stopping %s: %r" % (d.proc.name, e))


class Carrier:
    def __init__(self, bs, daemons, extras):
        self.bs, self.st, self.daemons, self.extras = bs, bs.st, daemons, extras
        self.login_s = None
        self.online = 0
        self.retried = 0
        self.tokens = {}  # bench user -> session token (Bearer for the API)
        self.tallies = []
        self.login_cpu_s = {}

    def online_users(self):
        """Bare JIDs with an 'online as' line in any daemon's log."""
        import re
        users = set()
        for _, _, path in self.daemons:
            with open(path, errors="replace") as f:
                for m in re.finditer(r" online as (bench\d+)@", f.read()):
                    users.add(m.group(1))
        return users

    def login(self, total, retries):
        """Publishes every login, collects the replies; logins that did not
        answer 200 (a full daemon won the claim: 503 daemon_full) are
        published again, at most `retries` more rounds."""
        users = [bench_user(i) for i in range(total)]
        port = self.st.ports["redis"]
        procs = {"daemons": [p for _, p, _ in self.daemons],
                 "prosody": [self.bs.prosody_pid()], "redis": [self.st.procs["redis"].pid]}
        cpu0 = {k: sum(cpu_seconds(p) for p in v) for k, v in procs.items()}
        t0 = time.monotonic()
        todo = users
        self.tallies = []
        ok = 0
        for attempt in range(retries + 1):
            sent = publish_logins(port, todo, LOGIN_TIMEOUT)
            replies, _ = collect_replies(port, sent, LOGIN_TIMEOUT, self.tokens)
            self.tallies.append(tally(replies))
            ok += sum(1 for status, _ in replies.values() if status == 200)
            todo = [u for u, (status, _) in replies.items() if status != 200]
            log("fig7 round %d: %s" % (attempt + 1, self.tallies[-1]))
            if not todo or attempt == retries:
                break
            self.retried += len(todo)
        self.login_s = time.monotonic() - t0
        self.online = ok
        self.login_cpu_s = {k: sum(cpu_seconds(p) for p in v) - cpu0[k]
                            for k, v in procs.items()}

    def per_daemon(self):
        out = []
        for name, pid, path in self.daemons:
            fd, nfds = max_fd(pid)
            out.append({"name": name, "pid": pid, "rss_kib": rss_kib(pid),
                        "max_fd": fd, "nfds": nfds,
                        "online": count_in_log(path, r" online as ")})
        return out


def fig7(total=5000, per_daemon=900, idle_s=20.0):
    """carry_sessions(), then the daemons' (and Prosody's, Redis's) idle
    CPU over idle_s, and whether any stream went down meanwhile."""
    with carry_sessions(total, per_daemon) as c:
        per = c.per_daemon()
        pids = [p for _, p, _ in c.daemons]
        extra = {"prosody": c.bs.prosody_pid(), "redis": c.st.procs["redis"].pid}
        time.sleep(2.0)
        t0 = time.monotonic()
        c0 = [cpu_seconds(p) for p in pids]
        e0 = {k: cpu_seconds(p) for k, p in extra.items()}
        r0 = redis_calls(c.st)
        time.sleep(idle_s)
        wall = time.monotonic() - t0
        calls = redis_calls_delta(r0, redis_calls(c.st))
        calls.pop("info", None)
        idle = [100.0 * (cpu_seconds(p) - c) / wall for p, c in zip(pids, c0)]
        eidle = {k: 100.0 * (cpu_seconds(p) - e0[k]) / wall for k, p in extra.items()}
        down = [count_in_log(path, r"stream down") for _, _, path in c.daemons]
        alive = all(os.path.exists("/proc/%d" % p) for p in pids)
        return {"total": total, "per_daemon": per_daemon, "daemons": per,
                "login_s": c.login_s, "online": c.online, "retried": c.retried,
                "tallies": c.tallies, "idle_pct": idle, "other_idle_pct": eidle,
                "login_cpu_s": c.login_cpu_s,
                "redis_calls_per_s": sum(calls.values()) / wall, "redis_calls": calls,
                "stream_down": down, "still_online": alive and not any(down)
                and c.online == total,
                "prosody_rss_kib": rss_kib(extra["prosody"]),
                "redis_rss_kib": rss_kib(extra["redis"])}
