#!/usr/bin/python3
"""
bench/sessions/run.py: issue 6 figures 3-7 (sessions per daemon, idle
cost, login storm, restart, several daemons), printed as a markdown
section with the machine on top. Progress goes to stderr. Benchmarks print;
they do not fail.

    /usr/bin/python3 bench/sessions/run.py            # the whole suite, ~10 min
    /usr/bin/python3 bench/sessions/run.py --quick    # small sizes, ~2 min
    /usr/bin/python3 bench/sessions/run.py --figures 3,6 --json out.json

Needs a build (talkproxyd in $TP_BUILDDIR, else build/ or the source
tree) and the harness's Debian packages (redis-server, prosody, lighttpd,
python3-nacl, python3-slixmpp). bare_login is built by make (bench/sessions.am)
or, failing that, here with cc and pkg-config.
"""

import argparse
import json
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import log, machine, median  # noqa: E402
import figures  # noqa: E402

TARGET_KIB = 80
TARGET_RATIO = 1.2
TARGET_IDLE_PCT = 0.5
TARGET_P99_MS = 50.0


def plan(quick):
    if quick:
        return {
            "fig3": [("capath", [(100, 2), (300, 1)]), ("default", [(100, 1)]),
                     ("bundle", [(100, 1)])],
            "big": 300, "idle_s": 10.0, "restarts": 1,
            "storm": 300, "storm_runs": 1,
            "fig7": (1000, 300, 10.0),
        }
    return {
        "fig3": [("capath", [(100, 3), (500, 3), (900, 1)]), ("default", [(100, 3)]),
                 ("bundle", [(100, 1)])],
        "big": 900, "idle_s": 30.0, "restarts": 2,
        "storm": 500, "storm_runs": 3,
        "fig7": (5000, 900, 20.0),
    }


def fmt(x, spec="%.2f"):
    if x is None or (isinstance(x, float) and x != x):
        return "–"
    return spec % x


def mark(ok):
    return "" if ok is None else (" ✓" if ok else " ✗")


def print_machine(m):
    print("### Sessions per daemon process (issue 6, figures 3-7)\n")
    print("Machine: %d cores (%s), %.1f GiB RAM, Linux %s, Debian %s; %s. "
          "talkproxy %s.\n" % (
              m["nproc"], m["cpu"] or "?", m["ram_gib"], m["kernel"], m["debian"],
              ", ".join(m["versions"]), m.get("commit", "?")))


def print_fig3(rows):
    print("**Figure 3: log in N sessions.** Logins published at once on "
          "tp:login; time from the first PUBLISH to the last reply (every "
          "session bound, roster fetched, presence sent). RSS growth of the "
          "process per session. Bare = `bench/sessions/bare_login`: libstrophe "
          "0.12 alone, one process, one xmpp_ctx, the same logins. Targets: "
          "talkproxyd ≤ %d KiB/session and ≤ %.1fx the bare client's time.\n"
          % (TARGET_KIB, TARGET_RATIO))
    print("| CA setup | N | runs | talkproxyd s | bare s | ratio | talkproxyd KiB/session "
          "| bare KiB/session | CPU ms/login: talkproxyd / bare / Prosody | online |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        s = figures.summarize3(row)
        kib_ok = s["daemon_kib"] <= TARGET_KIB if row["daemon"] else None
        ratio_ok = s["ratio"] <= TARGET_RATIO if row["daemon"] and row["bare"] and \
            row["kind"] != "bundle" else None
        online = []
        if s["online"] is not None:
            online.append("%d/%d" % (s["online"], row["n"]))
        if s["bare_online"] is not None:
            online.append("bare %d/%d" % (s["bare_online"], row["n"]))
        print("| %s | %d | %d | %s | %s | %s%s | %s%s | %s | %s / %s / %s | %s |" % (
            row["kind"], row["n"], row["runs"], fmt(s["daemon_s"]), fmt(s["bare_s"]),
            fmt(s["ratio"]), mark(ratio_ok), fmt(s["daemon_kib"], "%.0f"), mark(kib_ok),
            fmt(s["bare_kib"], "%.0f"), fmt(s["daemon_cpu_ms"], "%.1f"),
            fmt(s["bare_cpu_ms"], "%.1f"), fmt(s["prosody_cpu_ms"], "%.1f"),
            ", ".join(online)))
    print("\nCA setups: *capath* = `xmpp.capath` naming a hashed copy of "
          "/etc/ssl/certs/*.pem plus the test CA (`openssl rehash`), no `xmpp.cafile`; "
          "the bare client gets the same directory and, as talkproxyd does, "
          "SSL_CERT_FILE=/dev/null. *default* = neither key, SSL_CERT_DIR pointing "
          "at that directory (standing for /etc/ssl/certs). *bundle* = the bare "
          "client as libstrophe 0.12 comes: it calls SSL_CTX_set_default_verify_paths() "
          "for every connection, which parses Debian's whole CA bundle each time, "
          "whatever capath/cafile say (talkproxyd before ea19192).\n")


def print_fig4(res, n):
    if not res:
        return
    print("**Figure 4: idle cost** with %d sessions up, CPU over %.0f s "
          "(utime+stime from /proc/PID/stat), %% of one core. Target: "
          "talkproxyd < %.1f%%.\n" % (n, res["seconds"], TARGET_IDLE_PCT))
    print("| sessions | talkproxyd | Prosody | Redis | Redis commands/s from talkproxyd |")
    print("|---|---|---|---|---|")
    print("| %d | %s%%%s | %s%% | %s%% | %s (%s) |\n" % (
        n, fmt(res["daemon"]), mark(res["daemon"] < TARGET_IDLE_PCT),
        fmt(res["prosody"]), fmt(res["redis"]), fmt(res.get("redis_calls_per_s"), "%.0f"),
        ", ".join("%s %d" % kv for kv in sorted(res.get("redis_calls", {}).items()))))


def print_fig5(runs, n):
    if not runs:
        return
    print("**Figure 5: login storm.** While %d sessions log in (published at "
          "once), `POST /v1/message` of an already logged-in session through "
          "lighttpd at 20 requests/s; latency from each request's scheduled "
          "time. Median over %d runs. Target: p99 < %.0f ms.\n"
          % (n, len(runs), TARGET_P99_MS))
    p99 = median([r["p99"] for r in runs]) * 1e3
    print("| storm | login s | requests | p50 ms | p99 ms | max ms | before the storm: p50 / p99 ms | errors |")
    print("|---|---|---|---|---|---|---|---|")
    print("| %d logins | %s | %d | %s | %s%s | %s | %s / %s | %s |\n" % (
        n, fmt(median([r["login_s"] for r in runs])),
        int(median([r["requests"] for r in runs])),
        fmt(median([r["p50"] for r in runs]) * 1e3, "%.1f"), fmt(p99, "%.1f"),
        mark(p99 < TARGET_P99_MS), fmt(median([r["max"] for r in runs]) * 1e3, "%.0f"),
        fmt(median([r["base_p50"] for r in runs]) * 1e3, "%.1f"),
        fmt(median([r["base_p99"] for r in runs]) * 1e3, "%.1f"),
        ", ".join(str(e) for r in runs for e in r["errors"]) or "none"))


def print_fig6(res, login_s, n):
    if not res:
        return
    print("**Figure 6: restart.** The daemon holding %d sessions is stopped, "
          "a new one started; time from its start until every session is "
          "online again, against figure 3's login time for %d (same run). "
          "Target: ≤ %.1fx.\n" % (n, n, TARGET_RATIO))
    print("| stopped with | runs | restore s (median) | login s | ratio | adoption done at s "
          "| first / last online at s | streams resumed | Prosody CPU ms/session | all runs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for sig in ("SIGKILL", "SIGTERM"):
        rs = [r for r in res if r["signal"] == sig]
        if not rs:
            continue
        secs = median([r["seconds"] for r in rs])
        ratio = secs / login_s if login_s else float("nan")
        print("| %s | %d | %s | %s | %s%s | %s | %s / %s | %s | %s | %s |" % (
            sig, len(rs), fmt(secs), fmt(login_s), fmt(ratio), mark(ratio <= TARGET_RATIO),
            fmt(median([r.get("adopted", float("nan")) for r in rs])),
            fmt(median([r.get("first_online", float("nan")) for r in rs])),
            fmt(median([r.get("last_online", float("nan")) for r in rs])),
            "%d/%d" % (min(r.get("resumed", 0) for r in rs), n),
            fmt(median([r["prosody_cpu_ms_per_session"] for r in rs]), "%.1f"),
            " ".join("%.2f" % r["seconds"] for r in rs)))
    print()


def print_fig7(res):
    if not res:
        return
    rss = sum(d["rss_kib"] for d in res["daemons"])
    print("**Figure 7: more than one process.** %d sessions across %d talkproxyd "
          "processes (daemon.max_sessions = %d each) sharing one Redis and one "
          "Prosody; logins published at once on tp:login, where the daemons "
          "compete for each. One run.\n" % (
              res["total"], len(res["daemons"]), res["per_daemon"]))
    cpu = res.get("login_cpu_s", {})
    print("| sessions online | login s | CPU s during login: daemons / Prosody / Redis "
          "| logins retried | RSS total (daemons) | RSS / session | Prosody RSS | Redis RSS "
          "| idle CPU, all daemons | Redis idle CPU | Redis commands/s idle |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("| %d/%d | %s | %s / %s / %s | %d | %.0f MiB | %.0f KiB | %.0f MiB | %.0f MiB "
          "| %s%% | %s%% | %s |\n" % (
              res["online"], res["total"], fmt(res["login_s"]),
              fmt(cpu.get("daemons"), "%.1f"), fmt(cpu.get("prosody"), "%.1f"),
              fmt(cpu.get("redis"), "%.1f"), res["retried"], rss / 1024.0,
              rss / max(1, res["online"]), res["prosody_rss_kib"] / 1024.0,
              res["redis_rss_kib"] / 1024.0, fmt(sum(res["idle_pct"])),
              fmt(res["other_idle_pct"]["redis"]), fmt(res.get("redis_calls_per_s"), "%.0f")))
    print("| process | sessions | RSS MiB | highest fd | open fds | idle CPU |")
    print("|---|---|---|---|---|---|")
    for d, idle in zip(res["daemons"], res["idle_pct"]):
        print("| %s | %d | %.0f | %d | %d | %s%% |" % (
            d["name"], d["online"], d["rss_kib"] / 1024.0, d["max_fd"], d["nfds"], fmt(idle)))
    print("\nLogin rounds (replies by status): %s. A session stays online through "
          "the idle period: %s.\n" % (
              "; ".join(json.dumps(t, sort_keys=True) for t in res["tallies"]),
              "yes" if res.get("still_online") else "NO (see stream-down counts: %s)"
              % res.get("stream_down")))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for development")
    ap.add_argument("--figures", default="3,4,5,6,7", help="which figures (3-7)")
    ap.add_argument("--json", help="also write the raw results to this file")
    args = ap.parse_args(argv)
    want = {int(x) for x in args.figures.split(",") if x.strip()}
    p = plan(args.quick)
    t_start = time.monotonic()
    out = {"machine": machine(), "plan": {k: v for k, v in p.items()}}

    big = p["big"]
    fig3_plan = p["fig3"] if 3 in want else [("capath", [(big, 1)])] if want & {4, 6} else []

    def extra(bs, n, kind):
        if kind != "capath" or n != big:
            return None
        r = {}
        if 4 in want:
            log("fig4: %d idle sessions, %.0f s" % (n, p["idle_s"]))
            r["idle"] = figures.fig4_idle(bs, p["idle_s"])
            log("  talkproxyd %.2f%% of a core" % r["idle"]["daemon"])
        if 6 in want:
            r["restart"] = figures.fig6_restart(bs, n, p["restarts"], signal.SIGKILL)
            r["restart"] += figures.fig6_restart(bs, n, 1, signal.SIGTERM)
        return r

    rows = figures.fig3(fig3_plan, extra=extra) if fig3_plan else []
    out["fig3"] = rows
    if 5 in want:
        out["fig5"] = figures.fig5_storm(p["storm"], p["storm_runs"])
    if 7 in want:
        total, per, idle_s = p["fig7"]
        out["fig7"] = figures.fig7(total, per, idle_s)
    out["seconds"] = time.monotonic() - t_start

    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=str)

    print_machine(out["machine"])
    if 3 in want:
        print_fig3(rows)
    bigrow = next((r for r in rows if r["kind"] == "capath" and r["n"] == big), None)
    ex = (bigrow or {}).get("extra") or {}
    print_fig4(ex.get("idle"), big)
    print_fig5(out.get("fig5"), p["storm"])
    if bigrow and ex.get("restart"):
        print_fig6(ex["restart"], figures.summarize3(bigrow)["daemon_s"], big)
    print_fig7(out.get("fig7"))
    print("(The whole run took %.0f s.)" % out["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
