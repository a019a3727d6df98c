#!/usr/bin/python3
"""
bench/api/run.py: issue 6, figures 1 and 2, on loopback with the same real
parts as the tests (tests/harness/stack.py: Redis, Prosody with its rate
limits raised and Nagle off, talkproxyd, lighttpd with the shipped
conf/lighttpd snippet). Prints a markdown section; fails nothing.

Figure 1, API throughput. One lighttpd serves four FastCGI pools with the
same handler count (max-procs of the shipped snippet, or --procs):
  /v1/message   talkproxy-fcgi -> Redis -> talkproxyd -> Prosody -> contact
  /bench-a/     (a) bench-trivial-fcgi: reads the body, answers 200
  /bench-b/     (b) the same plus one PUBLISH -> bench-responder -> BLPOP
  /bench-c/     (c) (b) whose responder (bench-xmpp-responder, libstrophe)
                also sends each message over XMPP to the same contact
driven by wrk (one thread, keep-alive connections, a Lua script giving
every message its own id), in rounds that rotate the order of the four;
a ratio is talkproxy over (b) (or (c)) within one round, and every figure
is the median over the rounds. The recipient is online (a raw XMPP client
that drains its socket and logs ids), so Prosody routes every message as
in real use; after a talkproxy or (c) run the next run waits until the
contact has everything, so no backlog spills over. CPU per process is read
from /proc during each run.

Figure 2, incoming message to push. A raw XMPP client (bench/api/rawxmpp.py;
slixmpp would be the bottleneck) sends chat messages at a paced rate (what
is due in one write) to a
user whose talkproxy session has a webhook registered at
bench/api/pushsink.py, a light HTTPS endpoint (push_endpoint.js stamps in
whole milliseconds); latency is from just before the sender's write to the
endpoint's read of the whole request, both CLOCK_MONOTONIC. Prosody alone is
measured in the same stack and at the same rates: the same sender to a raw
XMPP receiver. Every push's signature is verified and its payload opened
(python3-nacl) after the run to match it to the message it announces.

    /usr/bin/python3 bench/api/run.py [--rounds 3] [--seconds 5]
        [--conns 16] [--fig 1] [--fig 2] [--keep]

Needs: make (talkproxyd, talkproxy-fcgi; bench/api's three programs are
built by hand here when the build tree lacks them), wrk, node (the
harness's push endpoint starts with push=True, for the keys), python3-nacl.
--procs N sets the handler count of all four pools (the talkproxy pool
through a copy of the snippet with its max-procs replaced).
"""

import argparse
import atexit
import contextlib
import base64
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, HERE)

if not os.environ.get("TP_BUILDDIR"):
    for cand in (REPO, os.path.join(REPO, "build")):
        if os.access(os.path.join(cand, "talkproxyd"), os.X_OK):
            os.environ["TP_BUILDDIR"] = cand
            break

from harness.stack import (DOMAIN, LIGHTTPD_CONF, USERS, Proc, Stack,  # noqa: E402
                           StackError, builddir, children, free_port,
                           srcdir, tail, wait_until)
from harness.sealed import open_item  # noqa: E402
import rawxmpp  # noqa: E402

WARN = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Wshadow",
        "-Wstrict-prototypes", "-Wmissing-prototypes", "-Wformat=2", "-Werror",
        "-g", "-O2"]
PROGRAMS = {"bench-trivial-fcgi": ["trivial_fcgi.c", "benchbus.c"],
            "bench-responder": ["responder.c", "benchbus.c"],
            "bench-xmpp-responder": ["xmpp_responder.c", "benchbus.c"]}

ALICE = "alice@" + DOMAIN
BOB = "bob@" + DOMAIN
DAVE = "dave@" + DOMAIN


def log(msg):
    sys.stderr.write("# %s\n" % msg)
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# The machine, on top of the table.

def pkg_version(name):
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", name],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def machine():
    mem = "?"
    cpu = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = "%.1f GiB" % (int(line.split()[1]) / 1024 / 1024)
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = "?"
    pk = ", ".join("%s %s" % (p, pkg_version(p)) for p in (
        "lighttpd", "redis-server", "prosody", "libstrophe0", "libfcgi0ldbl",
        "libcurl4", "wrk"))
    return ("Machine: %d cores (%s), %s RAM, kernel %s, Debian %s; %s."
            % (os.cpu_count(), cpu, mem, platform.release(), debian, pk))


# ---------------------------------------------------------------------------
# Helpers.

def bench_programs(tmp):
    """Paths of bench-trivial-fcgi and bench-responder: the build tree's
    (bench/api.am), or built here by hand with the project's flags."""
    found = {n: os.path.join(builddir(), "bench", "api", n) for n in PROGRAMS}
    if all(os.access(p, os.X_OK) for p in found.values()):
        return found
    cc = os.environ.get("CC", "cc")
    hi = subprocess.run(["pkg-config", "--cflags", "--libs", "hiredis"],
                        capture_output=True, text=True).stdout.split()
    fc = subprocess.run(["pkg-config", "--cflags", "--libs", "fcgi"],
                        capture_output=True, text=True).stdout.split() or ["-lfcgi"]
    xs = subprocess.run(["pkg-config", "--cflags", "--libs", "libstrophe"],
                        capture_output=True, text=True).stdout.split()
    for name, srcs in PROGRAMS.items():
        out = os.path.join(tmp, name)
        argv = ([cc] + WARN + [os.path.join(HERE, src) for src in srcs] +
                ["-o", out] + hi + fc + xs)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit("building %s failed:\n%s" % (name, r.stderr))
        found[name] = out
    return found


def daemon_pids(st):
    """The daemons whose CPU counts as talkproxyd's: the stack's one, or
    all of them at scale (--sessions); idle ones add little."""
    return getattr(st, "bench_daemon_pids", None) or [st.daemon_pid()]


def cpu_ticks(pid):
    """utime + stime of a process; a negative pid means its main thread only
    (talkproxyd's loop thread is the main one)."""
    path = "/proc/%d/stat" % pid if pid > 0 else "/proc/%d/task/%d/stat" % (-pid, -pid)
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class CpuMeter:
    """CPU seconds of named process groups over an interval, as % of a core."""

    def __init__(self, groups):
        self.groups = groups  # name -> [pid]
        self.hz = os.sysconf("SC_CLK_TCK")

    def start(self):
        self.t0 = time.monotonic()
        self.c0 = {n: sum(cpu_ticks(p) for p in ps) for n, ps in self.groups.items()}

    def stop(self):
        dt = time.monotonic() - self.t0
        return {n: 100.0 * (sum(cpu_ticks(p) for p in ps) - self.c0[n]) / self.hz / dt
                for n, ps in self.groups.items()}


def pct(values, q):
    """The q-th percentile (0-100) of values, nearest rank."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


# ---------------------------------------------------------------------------
# Figure 1.

EXTRA_POOL = """
$HTTP["url"] =~ "^/{name}/" {{
  fastcgi.server = (
    "/" => ((
      "bin-path" => "{argv}",
      "socket" => "{tmp}/run/{name}.sock",
      "max-procs" => {procs},
      "check-local" => "disable",
      "fix-root-scriptname" => "enable",
    ))
  )
}}
"""


def snippet_procs():
    with open(os.path.join(srcdir(), "conf", "lighttpd", "talkproxy.conf")) as f:
        m = re.search(r'"max-procs"\s*=>\s*(\d+)', f.read())
    return int(m.group(1)) if m else 2


def start_lighttpd(st, progs, procs):
    """lighttpd with the shipped snippet (its max-procs replaced in a copy
    when --procs asks for another handler count) and the two baseline pools
    with the same count."""
    port = st.ports["lighttpd"]
    conf = st.path("lighttpd.conf")
    snippet = os.path.join(srcdir(), "conf", "lighttpd", "talkproxy.conf")
    if procs != snippet_procs():
        with open(snippet) as f:
            text = re.sub(r'("max-procs"\s*=>\s*)\d+', r"\g<1>%d" % procs, f.read())
        snippet = st.path("talkproxy-snippet.conf")
        with open(snippet, "w") as f:
            f.write(text)
    text = LIGHTTPD_CONF.format(
        tmp=st.tmp, port=port, bin=os.path.join(builddir(), "talkproxy-fcgi"),
        conf=st.conf, snippet=snippet)
    text += EXTRA_POOL.format(name="bench-a", argv=progs["bench-trivial-fcgi"],
                              tmp=st.tmp, procs=procs)
    text += EXTRA_POOL.format(name="bench-b", tmp=st.tmp, procs=procs,
                              argv="%s -p %d" % (progs["bench-trivial-fcgi"],
                                                 st.ports["redis"]))
    text += EXTRA_POOL.format(name="bench-c", tmp=st.tmp, procs=procs,
                              argv="%s -p %d -C bench:xreq" % (
                                  progs["bench-trivial-fcgi"], st.ports["redis"]))
    with open(conf, "w") as f:
        f.write(text)
    proc = Proc("lighttpd", ["lighttpd", "-D", "-f", conf], st.path("lighttpd.out"))
    proc.logs.append(st.path("lighttpd-error.log"))
    st.procs["lighttpd"] = proc
    errorlog = st.path("lighttpd-error.log")
    wait_until(lambda: proc.alive() and "server started" in tail(errorlog, 50),
               30, "lighttpd to start")
    return proc


def start_responder(st, progs, xmpp=False):
    """bench-responder on bench:req, or (xmpp) bench-xmpp-responder on
    bench:xreq, logged in as carol and sending every message to bob."""
    name, chan = ("bench-xmpp-responder", "bench:xreq") if xmpp else ("bench-responder",
                                                                      "bench:req")
    argv = [progs[name], "-p", str(st.ports["redis"]), "-C", chan]
    if xmpp:
        argv += ["-x", str(st.ports["prosody"]), "-j", "carol@" + DOMAIN,
                 "-w", USERS["carol"], "-a", st.cafile, "-t", BOB]
    proc = Proc(name, argv, st.path(name + ".out"))
    st.procs[name] = proc

    def ready():
        if not proc.alive():
            raise proc.failure("exited")
        return int(st.redis("PUBSUB", "NUMSUB", chan)[1]) >= 1
    wait_until(ready, 20, name + " to subscribe")
    return proc


class Helper:
    """A bench/api helper in its own process: started from argv, ready once
    its first stdout line is the given one, stopped by its PID (SIGTERM,
    then SIGKILL) at stop() or at exit."""

    def __init__(self, argv, errlog, ready, what, timeout):
        self.popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=open(errlog, "ab"), start_new_session=True)
        import select
        r, _, _ = select.select([self.popen.stdout], [], [], timeout)
        line = self.popen.stdout.readline().decode().strip() if r else ""
        if line != ready:
            self.stop()
            raise StackError("%s did not start: %r\n%s" % (what, line, tail(errlog)))
        self.pid = self.popen.pid
        atexit.register(self.stop)  # also when a run fails half way

    def stop(self):
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


class Receiver(Helper):
    """rawxmpp.py recv in its own process: (ns, id) for every bench- message."""

    def __init__(self, st, user, resource):
        self.out = st.path("recv-%s-%s.txt" % (user, resource))
        argv = [sys.executable, os.path.join(HERE, "rawxmpp.py"), "recv",
                str(st.ports["prosody"]), st.cafile, "%s@%s" % (user, DOMAIN),
                USERS[user], resource, self.out]
        super().__init__(argv, st.path("recv.err"), "ready",
                         "raw receiver " + user, 15)

    def count_prefix(self, prefix):
        """How many messages whose tag starts with prefix arrived."""
        self.count("")
        return sum(n for t, n in self._counts.items() if t.startswith(prefix))

    def count(self, tag):
        """How many messages with ids "<tag>-<n>" arrived (read incrementally)."""
        if not hasattr(self, "_counts"):
            self._counts, self._offset = {}, 0
        try:
            with open(self.out) as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return 0
        end = data.rfind("\n") + 1
        self._offset += len(data[:end].encode())
        for line in data[:end].splitlines():
            parts = line.split()
            if len(parts) == 2:
                t = parts[1].rsplit("-", 1)[0]
                self._counts[t] = self._counts.get(t, 0) + 1
        return self._counts.get(tag, 0)

    def times(self):
        got = {}
        try:
            with open(self.out) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 2 and parts[1] not in got:
                        got[parts[1]] = int(parts[0])
        except OSError:
            pass
        return got



def wrk(url, conns, seconds, token, tag, path):
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_TO=BOB, BENCH_TAG=tag, BENCH_PATH=path)
    argv = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds, "--latency",
            "--timeout", "10s", "-s", os.path.join(HERE, "post.lua"), url + path]
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, text=True)
    return p


def wrk_result(p, seconds):
    out, _ = p.communicate(timeout=seconds + 30)
    m = re.search(r"^BENCH (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+)$", out, re.M)
    if not m:
        raise SystemExit("wrk said:\n" + out)
    n, dur, p50, p99, mean, non2xx, errors = m.groups()
    return {"rps": int(n) / (int(dur) / 1e6), "p50": float(p50) / 1000,
            "p99": float(p99) / 1000, "mean": float(mean) / 1000,
            "bad": int(non2xx) + int(errors), "n": int(n)}


def drain_wait(count, r, secs, limit=30.0):
    """After a talkproxy or (c) run: waits (bounded) until the contact has
    every message answered 200 (count() says how many of the run's
    arrived), so no backlog spills into the next run; records how long
    that took and the rate of actual delivery."""
    want = r["n"] - r["bad"]
    t0 = time.monotonic()
    last, still = -1, t0
    for _ in range(int(limit / 0.05) + 2):
        got = count()
        now = time.monotonic()
        if got >= want or now - t0 > limit:
            break
        if got != last:
            last, still = got, now
        elif now - still > 3.0:
            break
        time.sleep(0.05)
    r["delivered"] = got
    r["drain"] = time.monotonic() - t0
    r["deliv_rps"] = got / (secs + r["drain"])


VARIANTS = [("a", "/bench-a/message"), ("b", "/bench-b/message"), ("c", "/bench-c/message"),
            ("tp", "/v1/message")]


def figure1(st, progs, args, out):
    procs = args.procs or snippet_procs()
    responder = start_responder(st, progs)
    xresponder = start_responder(st, progs, xmpp=True)
    web = start_lighttpd(st, progs, procs)
    token = st.login("alice", full_retries=20)
    sink = Receiver(st, "bob", "sink")
    handlers = {"tp": [], "a": [], "b": [], "c": []}
    for pid in children(web.pid):
        c = cmdline(pid)
        handlers["tp" if "talkproxy-fcgi" in c else "c" if "bench:xreq" in c
                 else "b" if " -p " in c else "a"].append(pid)
    groups = {"lighttpd": [web.pid], "handlers": None, "redis": [st.procs["redis"].pid],
              "talkproxyd": daemon_pids(st), "prosody": [st.procs["prosody"].pid],
              "responder": [responder.pid], "wrk": None, "contact": [sink.pid]}
    # Warm up every pool (handlers connect, scripts load) and check answers.
    for name, path in VARIANTS:
        r = wrk_result(wrk(st.url, 2, 1, token, "warm" + name, path), 1)
        if r["bad"] or r["n"] == 0:
            raise SystemExit("%s answered %d bad of %d while warming up" % (path, r["bad"], r["n"]))
    results = {c: {v: [] for v, _ in VARIANTS} for c in (args.conns, 1)}
    cpu = {v: [] for v, _ in VARIANTS}
    for rnd in range(args.rounds):
        k = rnd % len(VARIANTS)
        order = VARIANTS[k:] + VARIANTS[:k]
        for conns, secs in ((args.conns, args.seconds), (1, max(2, args.seconds // 2))):
            for name, path in order:
                g = dict(groups, handlers=handlers[name],
                         responder=[xresponder.pid] if name == "c" else [responder.pid])
                tag = "bench-r%d%s%d" % (rnd, name, conns)
                xc_before = sink.count_prefix("bench-xc")
                p = wrk(st.url, conns, secs, token, tag, path)
                g["wrk"] = [p.pid]
                meter = CpuMeter(g)
                meter.start()
                time.sleep(secs * 0.8)
                use = meter.stop()
                r = wrk_result(p, secs)
                if name == "tp":
                    drain_wait(lambda: sink.count(tag), r, secs)
                elif name == "c":
                    drain_wait(lambda: sink.count_prefix("bench-xc") - xc_before, r, secs)
                results[conns][name].append(r)
                if conns == args.conns:
                    cpu[name].append(use)
                log("fig1 round %d c=%d %-3s %8.0f req/s p50 %.3f ms p99 %.3f ms%s%s" % (
                    rnd + 1, conns, name, r["rps"], r["p50"], r["p99"],
                    "  (%d bad)" % r["bad"] if r["bad"] else "",
                    "  delivered %d/s, %.1f s after the run" % (r["deliv_rps"], r["drain"])
                    if name in ("tp", "c") else ""))
    sink.stop()
    st.procs.pop("bench-responder").stop()
    st.procs.pop("bench-xmpp-responder").stop()

    c = args.conns
    R = results[c]
    R1 = results[1]
    ratio = [R["tp"][i]["rps"] / R["b"][i]["rps"] for i in range(args.rounds)]
    ratio_a = [R["b"][i]["rps"] / R["a"][i]["rps"] for i in range(args.rounds)]
    ratio_c = [R["tp"][i]["rps"] / R["c"][i]["rps"] for i in range(args.rounds)]
    dp50_c = [R1["tp"][i]["p50"] - R1["c"][i]["p50"] for i in range(args.rounds)]
    dp50 = [R["tp"][i]["p50"] - R["b"][i]["p50"] for i in range(args.rounds)]
    dp50_1 = [R1["tp"][i]["p50"] - R1["b"][i]["p50"] for i in range(args.rounds)]
    label = {"a": "(a) trivial FastCGI", "b": "(b) trivial + PUBLISH/BLPOP round trip",
             "c": "(c) = (b) + the responder sends the message over XMPP (libstrophe)",
             "tp": "talkproxy `POST /v1/message`"}
    out.append("### Figure 1: API throughput (lighttpd, %d handler processes per pool, "
               "wrk 1 thread; median of %d rounds of %d s)\n" % (procs, args.rounds, args.seconds))
    out.append("| | req/s (%d conns) | p50 | p99 | p50 (1 conn) | p99 (1 conn) | bad answers |"
               % c)
    out.append("|---|---|---|---|---|---|---|")
    for name, _ in VARIANTS:
        rs, r1 = R[name], R1[name]
        out.append("| %s | %.0f | %.2f ms | %.2f ms | %.3f ms | %.3f ms | %d |" % (
            label[name], med([r["rps"] for r in rs]), med([r["p50"] for r in rs]),
            med([r["p99"] for r in rs]), med([r["p50"] for r in r1]),
            med([r["p99"] for r in r1]), sum(r["bad"] for r in rs + r1)))
    out.append("")
    out.append("- talkproxy / (b): **%.2f** (target >= 0.85; rounds: %s); (b) / (a): %.2f"
               % (med(ratio), " ".join("%.2f" % x for x in ratio), med(ratio_a)))
    out.append("- talkproxy / (c): **%.2f** (rounds: %s); p50 talkproxy - (c) at 1 conn: %+.3f ms"
               % (med(ratio_c), " ".join("%.2f" % x for x in ratio_c), med(dp50_c)))
    out.append("- p50 talkproxy - (b): **%+.2f ms** at %d conns, **%+.3f ms** at 1 conn "
               "(target <= 0.3 ms; rounds at %d: %s)" % (
                   med(dp50), c, med(dp50_1), c, " ".join("%+.2f" % x for x in dp50)))
    for name in ("tp", "c"):
        T = R[name]
        out.append("- Messages the contact actually received, %s: %.0f/s (answered %.0f/s; "
                   "the last arrived %.1f s after the run ended; %d of %d arrived)" % (
                       label[name], med([r["deliv_rps"] for r in T]),
                       med([r["rps"] for r in T]), med([r["drain"] for r in T]),
                       sum(r["delivered"] for r in T), sum(r["n"] - r["bad"] for r in T)))
    out.append("- CPU, %% of one core during the %d-conn runs (median of rounds; 200 %% = "
               "the whole machine):\n" % c)
    names = list(groups)
    out.append("| | " + " | ".join(names) + " |")
    out.append("|---|" + "---|" * len(names))
    for name, _ in VARIANTS:
        out.append("| %s | " % name + " | ".join(
            "%.0f" % med([u[n] for u in cpu[name]]) for n in names) + " |")
    out.append("")
    out.append("- The same as CPU time per request, in microseconds (less sensitive to "
               "whatever else the machine runs):\n")
    out.append("| | " + " | ".join(names) + " | all |")
    out.append("|---|" + "---|" * (len(names) + 1))
    for name, _ in VARIANTS:
        per = [med([u[n] * 1e4 / r["rps"] for u, r in zip(cpu[name], R[name])]) for n in names]
        out.append("| %s | " % name + " | ".join("%.0f" % x for x in per) +
                   " | %.0f |" % sum(per))
    out.append("")
    out.append(ceiling_line(R["b"], cpu["b"], R["tp"], cpu["tp"]))
    out.append("")
    return token


def ceiling_line(rb, ub, rt, ut):
    """The most any server could answer here that passes each message through
    (b)'s architecture and answers only what the same Prosody delivers: (b)'s
    CPU per request plus Prosody's per delivered message, all in this run."""
    b_us = med([sum(u.values()) * 1e4 / r["rps"] for u, r in zip(ub, rb)])
    b_use = med([sum(u.values()) for u in ub])
    pro_us = med([u["prosody"] * 1e4 / r["deliv_rps"] for u, r in zip(ut, rt)
                  if r["deliv_rps"] > 0] or [float("nan")])
    b_rps = med([r["rps"] for r in rb])
    at_b = b_rps * b_us / (b_us + pro_us)
    full = 100.0 * (os.cpu_count() or 1) * 1e4 / (b_us + pro_us)
    return ("- Ceiling on this machine for anything that answers only what this "
            "Prosody delivers: (b)'s %.0f us of CPU per request plus Prosody's "
            "%.0f us per delivered message; at (b)'s own use of the machine "
            "(%.0f %%) that is %.0f req/s = **%.2f of (b)**, with every core busy "
            "%.0f req/s = %.2f of (b)." % (b_us, pro_us, b_use, at_b, at_b / b_rps,
                                           full, full / b_rps))


# ---------------------------------------------------------------------------
# Figure 2.

class PushSink(Helper):
    def __init__(self, st):
        self.out = st.path("pushsink.txt")
        self.port = free_port()
        d = st.path("certs")
        argv = [sys.executable, os.path.join(HERE, "pushsink.py"), str(self.port),
                d + "/localhost.crt", d + "/localhost.key", self.out]
        super().__init__(argv, st.path("pushsink.err"), "listening %d" % self.port,
                         "pushsink", 10)

    def lines(self):
        try:
            with open(self.out) as f:
                return f.read().splitlines()
        except OSError:
            return []



class PushTimes:
    """Reads the sink's lines once each: verifies, opens, and maps id -> ns."""

    def __init__(self, sink, key, webhook_public):
        import nacl.signing
        self.sink = sink
        self.key = key
        self.vk = nacl.signing.VerifyKey(base64.urlsafe_b64decode(
            webhook_public + "=" * (-len(webhook_public) % 4)))
        self.seen = 0
        self.times = {}
        self.problems = []

    def update(self):
        lines = self.sink.lines()
        for line in lines[self.seen:]:
            parts = line.split(" ")
            if len(parts) != 5:
                continue
            t, problems, ts, sig, body_b64 = parts
            body = base64.b64decode(body_b64)
            if problems != "-":
                self.problems.append(problems)
            try:
                raw = base64.urlsafe_b64decode(sig[len("ed25519="):] + "=" * (-len(sig) % 4))
                self.vk.verify(ts.encode() + b"." + body, raw)
                doc = json.loads(body)
                msg_id = open_item(self.key, doc["payload"]).get("id")
            except Exception as e:  # counted, reported
                self.problems.append("unverifiable: %r" % (e,))
                continue
            if msg_id and msg_id not in self.times:
                self.times[msg_id] = int(t)
        self.seen = len(lines)
        return self.times


def paced_send(sender, to, rate, seconds, tag):
    """Sends rate*seconds messages at rate/s; returns ({id: ns}, achieved rate)."""
    n = max(1, int(rate * seconds))
    sent = {}
    ids = ["bench-%s-%d" % (tag, i) for i in range(n)]
    stanzas = [rawxmpp.message(to, ids[i], "benchmark message %d" % i) for i in range(n)]
    now = rawxmpp.now_ns
    step = 1e9 / rate
    t0 = now()
    i = 0
    for _ in range(n * 4 + 1000):  # bounded; each pass sends what is due
        if i >= n:
            break
        t = now()
        due = min(n, int((t - t0) / step) + 1)
        if i < due:
            # What is due goes in one write: a write per stanza made the
            # sender the largest user of the machine's CPU at 6000/s.
            t = now()
            for k in range(i, due):
                sent[ids[k]] = t
            sender.send(b"".join(stanzas[i:due]))
            i = due
        if i < n:
            wait = (t0 + i * step - now()) / 1e9
            if wait > 0:
                time.sleep(wait)
    elapsed = (now() - t0) / 1e9
    return sent, (n - 1) / elapsed if elapsed > 0 and n > 1 else float(rate)


def measure(sender, to, rate, seconds, tag, get_times, drain=3.0):
    """One paced run; returns a result dict with latencies in ms."""
    sent, achieved = paced_send(sender, to, rate, seconds, tag)
    deadline = time.monotonic() + drain
    got = {}
    for _ in range(int(drain / 0.05) + 2):
        got = get_times()
        if all(i in got for i in sent) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    order = sorted(sent, key=sent.get)
    lat = [(got[i] - sent[i]) / 1e6 for i in order if i in got]
    q = max(1, len(order) // 4)
    last = [(got[i] - sent[i]) / 1e6 for i in order[-q:] if i in got]
    lost = len(sent) - len(lat)
    res = {"rate": rate, "achieved": achieved, "n": len(sent), "lost": lost,
           "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat) if lat else float("nan"),
           "last_p50": pct(last, 50)}
    # Sustained: everything arrived, and the last quarter is not queueing.
    res["ok"] = lost == 0 and res["last_p50"] < 20.0 and achieved >= 0.95 * rate
    return res


def figure2(st, token, args, out):
    status, _, answer = st.call("key", {}, token=token)
    key = answer["key"]
    sink = PushSink(st)
    url = "https://127.0.0.1:%d/hook/alice" % sink.port
    status, _, answer = st.call("register", {"url": url, "kind": "webhook"}, token=token)
    if status != 200:
        raise SystemExit("register answered %s %r" % (status, answer))
    pt = PushTimes(sink, key, st.webhook_public)
    recv = Receiver(st, "dave", "recv")
    # The sender sends no presence: messages to bob's bare JID never come here.
    sender = rawxmpp.RawClient(st.ports["prosody"], st.cafile, BOB, USERS["bob"], "sender")
    sender.connect()
    groups = {"talkproxyd": daemon_pids(st), "tp-loop": [-p for p in daemon_pids(st)],
              "prosody": [st.procs["prosody"].pid],
              "redis": [st.procs["redis"].pid], "pushsink": [sink.pid], "receiver": [recv.pid],
              "driver": [os.getpid()]}

    paths = {"prosody": (DAVE, recv.times), "tp": (ALICE, pt.update)}
    # Warm up both paths (TLS connection to the sink, caches).
    for name, (to, get) in paths.items():
        r = measure(sender, to, 50, 1, "warm" + name, get)
        if r["lost"]:
            raise SystemExit("%s lost %d of %d while warming up" % (name, r["lost"], r["n"]))

    def run(name, rate, seconds, tag):
        to, get = paths[name]
        meter = CpuMeter(groups)
        meter.start()
        r = measure(sender, to, rate, seconds, tag, get)
        r["cpu"] = meter.stop()
        log("fig2 %-7s %5d/s (sent %5.0f/s) p50 %6.2f ms p99 %7.2f ms last-q p50 %7.2f lost %d"
            " cpu%%: %s%s" % (name, rate, r["achieved"], r["p50"], r["p99"], r["last_p50"],
                             r["lost"], " ".join("%s %.0f" % kv for kv in r["cpu"].items()),
                             "" if r["ok"] else "  NOT SUSTAINED"))
        return r

    fixed = {}
    # Message ids name the step, so equal light and heavy rates stay apart.
    for step, rate in enumerate((args.light, args.heavy)):
        for rnd in range(args.rounds):
            for name in (("prosody", "tp") if rnd % 2 == 0 else ("tp", "prosody")):
                fixed.setdefault((rate, name), []).append(
                    run(name, rate, args.seconds2, "f%d-%d-%d-%s" % (step, rate, rnd, name)))
    ladder = {}
    for name in ("prosody", "tp"):
        for rate in args.ladder:
            r = run(name, rate, 3, "l%d-%s" % (rate, name))
            ladder.setdefault(name, []).append(r)
            if not r["ok"]:
                break
    sender.close()
    recv.stop()
    sink.stop()

    out.append("### Figure 2: incoming message -> push (webhook), peer's send to the "
               "endpoint's receipt; median of %d runs of %d s\n" % (args.rounds, args.seconds2))
    out.append("| rate | Prosody alone p50 | p99 | through talkproxy p50 | p99 | added p50 | "
               "added p99 | CPU/msg talkproxyd (loop thread) | Redis | Prosody alone / via talkproxy |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")

    def per_msg(rs, n):
        return med([r["cpu"][n] * 1e4 / r["rate"] for r in rs])
    for rate in (args.light, args.heavy):
        P, T = fixed[(rate, "prosody")], fixed[(rate, "tp")]
        adds50 = [t["p50"] - p["p50"] for p, t in zip(P, T)]
        adds99 = [t["p99"] - p["p99"] for p, t in zip(P, T)]
        out.append("| %d/s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | **%+.2f ms** | **%+.2f ms** | "
                   "%.0f us (%.0f) | %.0f us | %.0f / %.0f us |" % (
                       rate, med([r["p50"] for r in P]), med([r["p99"] for r in P]),
                       med([r["p50"] for r in T]), med([r["p99"] for r in T]),
                       med(adds50), med(adds99), per_msg(T, "talkproxyd"),
                       per_msg(T, "tp-loop"), per_msg(T, "redis"),
                       per_msg(P, "prosody"), per_msg(T, "prosody")))
    out.append("")
    best = {}
    for name, rs in ladder.items():
        good = [r["rate"] for r in rs if r["ok"]]
        best[name] = max(good) if good else 0
    out.append("Highest rate sustained (3 s steps of %s/s; sustained = every message "
               "arrived within 3 s and the last quarter's p50 stayed under 20 ms):"
               % ", ".join(str(x) for x in args.ladder))
    out.append("")
    out.append("| path | sustained | first failing step |")
    out.append("|---|---|---|")
    for name, label in (("prosody", "Prosody alone (peer -> peer)"),
                        ("tp", "through talkproxy (peer -> push)")):
        bad = [r for r in ladder[name] if not r["ok"]]
        why = ("%d/s: sent %.0f/s, lost %d, last-quarter p50 %.0f ms; CPU %%: %s" % (
                   bad[0]["rate"], bad[0]["achieved"], bad[0]["lost"], bad[0]["last_p50"],
                   ", ".join("%s %.0f" % kv for kv in bad[0]["cpu"].items()))) if bad else "none"
        out.append("| %s | %d/s | %s |" % (label, best[name], why))
    out.append("")
    out.append(thread_ceilings(ladder))
    out.append("")
    if pt.problems:
        out.append("Push requests with problems: %d (%s)" % (
            len(pt.problems), ", ".join(sorted(set(pt.problems))[:5])))
    else:
        out.append("Every push request passed the endpoint's checks; every signature "
                   "verified and every payload opened.")
    out.append("")


def thread_ceilings(ladder):
    """Each single-threaded part's CPU per message at the highest step its
    path sustained, as the rate that part alone would saturate a core at:
    which part is the bottleneck once each has a core of its own."""
    def top(name):
        good = [r for r in ladder.get(name, []) if r["ok"]]
        return good[-1] if good else None

    def per(r, n):
        return r["cpu"].get(n, 0.0) * 1e4 / r["rate"]
    parts = []
    p, t = top("prosody"), top("tp")
    if p:
        parts.append(("Prosody (one thread), peer -> peer at %d/s" % p["rate"],
                      per(p, "prosody")))
    if t:
        loop = per(t, "tp-loop")
        parts += [("Prosody, peer -> talkproxy at %d/s" % t["rate"], per(t, "prosody")),
                  ("talkproxyd loop thread", loop),
                  ("talkproxyd other threads (push)", per(t, "talkproxyd") - loop),
                  ("Redis", per(t, "redis"))]
    rows = ["Given a core each: CPU per message of each single-threaded part at the "
            "highest step its path sustained, and the rate at which it alone would "
            "fill a core:", "", "| part | us/msg | fills a core at |", "|---|---|---|"]
    for label, us in parts:
        rows.append("| %s | %.0f | %s |" % (
            label, us, "%.0f/s" % (1e6 / us) if us > 0 else "–"))
    return "\n".join(rows)


@contextlib.contextmanager
def bench_stack(args, out):
    """The stack the figures run on: the harness's, or with --sessions that
    many bench sessions logged in first over several daemons (figure 7's
    carry_sessions in bench/sessions), alice's session among them."""
    if not args.sessions:
        with Stack(web=False, push=True, **{"log.level": "info"}) as st:
            yield st
        return
    sys.path.insert(0, os.path.join(REPO, "bench", "sessions"))
    import figures
    with figures.carry_sessions(args.sessions, args.per_daemon, push=True) as c:
        c.st.bench_daemon_pids = [p for _, p, _ in c.daemons]
        out.append("At scale: %d other sessions online (of %d) over %d daemons of at most "
                   "%d, logged in in %.1f s before the figures; talkproxyd's CPU is all "
                   "daemons'.\n" % (c.online, args.sessions, len(c.daemons), args.per_daemon,
                                     c.login_s))
        log("%d sessions online in %.1f s" % (c.online, c.login_s))
        yield c.st


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5, help="figure 1 run length")
    ap.add_argument("--seconds2", type=int, default=4, help="figure 2 run length")
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--procs", type=int, default=0,
                    help="handlers per pool (default: the shipped snippet's max-procs)")
    ap.add_argument("--light", type=int, default=50)
    ap.add_argument("--heavy", type=int, default=1000)
    ap.add_argument("--ladder", default="500,1000,2000,3000,4000,5000,6000,7000,8000,10000")
    ap.add_argument("--fig", action="append", type=int, choices=(1, 2))
    ap.add_argument("--keep", action="store_true", help="keep the stack's files")
    ap.add_argument("--sessions", type=int, default=0,
                    help="first log in this many other sessions over daemons of "
                         "--per-daemon each (figure 7's setting: 5000)")
    ap.add_argument("--per-daemon", type=int, default=900)
    args = ap.parse_args()
    args.ladder = [int(x) for x in args.ladder.split(",")]
    figs = args.fig or [1, 2]
    if not shutil.which("wrk") and 1 in figs:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if args.keep:
        os.environ["TP_KEEP"] = "1"
    out = ["## Benchmarks: API throughput and message-to-push latency (issue 6, "
           "figures 1-2)", "", machine(), ""]
    tmp = tempfile.mkdtemp(prefix="tp-bench-api-")
    try:
        progs = bench_programs(tmp)
        t0 = time.monotonic()
        with bench_stack(args, out) as st:
            progs = dict(progs)
            if 1 in figs:
                token = figure1(st, progs, args, out)
                log("figure 1 took %.0f s" % (time.monotonic() - t0))
            else:
                start_lighttpd(st, progs, args.procs or snippet_procs())
                token = st.login("alice", full_retries=20)
            t1 = time.monotonic()
            if 2 in figs:
                figure2(st, token, args, out)
                log("figure 2 took %.0f s" % (time.monotonic() - t1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
