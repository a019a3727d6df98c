"""
apache.py: Apache httpd in front of talkproxy-fcgi for the integration
stack (stack.py), running a shipped conf/apache snippet unchanged:

    "apache-fcgid"  conf/apache/talkproxy-fcgid.conf: mod_fcgid spawns and
                    supervises the handler processes;
    "apache-proxy"  conf/apache/talkproxy-proxy-fcgi.conf: mod_proxy_fcgi
                    to a handler that spawn-fcgi started on a Unix socket
                    (talkproxy-fcgi serves the listening socket it is given
                    on fd 0; it cannot bind one itself).

Apache is started as root with its own config file in the stack's
temporary directory (apache2 -f FILE -DFOREGROUND) and runs its children,
and so mod_fcgid's handlers, as www-data. Stopped by PID only, like every
other server of the stack; handlers that outlive it are stopped by PID too.
"""

import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time

KINDS = ("apache-fcgid", "apache-proxy")
MODULES = "/usr/lib/apache2/modules"
WEB_USER = "www-data"  # Apache's User and Group, as on Debian

APACHE_CONF = """\
# Written by tests/harness/apache.py for one test run. It sets what a site's
# own apache2.conf would set, then includes the shipped snippet unchanged.
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{tmp}/apache.pid"
ErrorLog "{tmp}/apache-error.log"
LogLevel {log_level}
LogFormat "%h %t \\"%r\\" %>s %b %D" timed
CustomLog "{tmp}/apache-access.log" timed
# Tests run as root; Apache refuses to serve as root, so its children (and
# mod_fcgid's processes) run as Debian's web user.
User {user}
Group {user}

LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule alias_module {modules}/mod_alias.so
{load_modules}
# The event MPM, small: one process of 32 threads, a second under load.
StartServers 1
ServerLimit 2
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 4
MaxSpareThreads 64
Timeout 60
# A file-based mutex deadlocks mod_fcgid under the event MPM.
Mutex pthread default

DocumentRoot "{tmp}/www"
<Directory />
  AllowOverride None
  Require all denied
</Directory>
{server_wide}
{defines}
Include "{snippet}"
"""

FCGID_SERVER_WIDE = """\
# mod_fcgid's server-wide settings (Debian: mods-available/fcgid.conf).
FcgidIPCDir "{root}/fcgid-sockets"
FcgidProcessTableFile "{root}/fcgid-shm"
FcgidMaxProcesses 32
"""


def _stack_module(st):
    # The module that defines Stack, Proc, ...: harness.stack, or __main__
    # under "python3 -m harness.stack --demo" (importing harness.stack there
    # would load a second copy with its own list of live processes).
    return sys.modules[type(st).__module__]


def _descendants(S, pid, depth=4):
    """Every process below pid, at most depth generations down."""
    found, level = [], [pid]
    for _ in range(depth):
        level = [c for p in level for c in S.children(p)]
        if not level:
            break
        found += level
    return found


def _argv0(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return ""


class Apache:
    """Apache (and, for apache-proxy, the handler behind it) for one stack."""

    def __init__(self, st, kind):
        if kind not in KINDS:
            raise ValueError("unknown Apache kind %r" % (kind,))
        self.st = st
        self.kind = kind
        self.S = _stack_module(st)
        self.proc = None      # apache2
        self.handler = None   # apache-proxy: the handler spawn-fcgi runs
        self.root = st.path("apache")
        self.binary = (os.environ.get("TP_FCGI_BIN")
                       or os.path.join(self.S.builddir(), "talkproxy-fcgi"))
        self.socket = st.path("fcgi", "talkproxy-fcgi.sock")
        self.user = pwd.getpwnam(WEB_USER)
        self.gid = grp.getgrnam(WEB_USER).gr_gid

    # --- starting

    def start(self):
        S = self.S
        if not shutil.which("apache2"):
            raise S.StackError("apache2 is not installed (apt-get install apache2 "
                               "libapache2-mod-fcgid)")
        if not os.access(self.binary, os.X_OK):
            raise S.StackError("%s is missing: build first (make)" % self.binary)
        os.makedirs(self.root, exist_ok=True)
        self._open_to_web_user()
        if self.kind == "apache-proxy":
            self._start_handler()
        conf = self._write_conf()
        check = subprocess.run(["apache2", "-t", "-f", conf], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        if check.returncode != 0:
            raise S.StackError("apache2 rejects %s:\n%s"
                               % (conf, check.stdout.decode(errors="replace")))
        proc = S.Proc("apache2", ["apache2", "-f", conf, "-DFOREGROUND"],
                      self.st.path("apache.out"))
        proc.logs.append(self.st.path("apache-error.log"))
        self.proc = proc
        port = self.st.ports["lighttpd"]
        errorlog = self.st.path("apache-error.log")

        def listening():
            if not proc.alive():
                text = S.tail(errorlog, 50) + S.tail(proc.log, 50)
                if "Address already in use" in text:
                    raise proc.failure("cannot listen: Address already in use")
                raise proc.failure("exited")
            return ("resuming normal operations" in S.tail(errorlog, 200)
                    and S.port_accepts(port))
        try:
            S.wait_until(listening, S.START_TIMEOUT, "apache2 port %d" % port)
        except S.WaitTimeout as e:
            raise proc.failure(str(e)) from None

    def _open_to_web_user(self):
        """Apache's children and mod_fcgid's handlers run as www-data: they
        may pass through the temporary directory (not list it), read the
        talkproxy configuration and append to its log file."""
        st = self.st
        os.chown(st.tmp, -1, self.gid)
        os.chmod(st.tmp, 0o710)
        os.chown(st.conf, -1, self.gid)
        os.chmod(st.conf, 0o640)
        log = self._log_file()
        if log:
            with open(log, "a"):
                pass
            os.chown(log, -1, self.gid)
            os.chmod(log, 0o660)
        # The program itself, as www-data will run it. The build tree may
        # sit below a directory closed to others (a fresh clone in a
        # mktemp -d, say): run a copy placed beside the configuration, as a
        # shared-hosting install would put it among the site's files.
        if self.kind == "apache-fcgid":
            copy = st.path("bin", "talkproxy-fcgi")
            os.makedirs(os.path.dirname(copy), exist_ok=True)
            shutil.copy2(self.binary, copy)
            os.chown(os.path.dirname(copy), -1, self.gid)
            os.chmod(os.path.dirname(copy), 0o750)
            os.chown(copy, -1, self.gid)
            os.chmod(copy, 0o750)
            self.binary = copy
            r = subprocess.run(["setpriv", "--reuid=%d" % self.user.pw_uid,
                                "--regid=%d" % self.gid, "--clear-groups", "--",
                                "test", "-x", self.binary],
                               stdin=subprocess.DEVNULL, timeout=10)
            if r.returncode != 0:
                raise self.S.StackError(
                    "%s cannot run %s (a directory above it is closed to "
                    "others?)" % (WEB_USER, self.binary))

    def _log_file(self):
        """log.file from the talkproxy configuration the stack wrote."""
        import configparser
        cp = configparser.ConfigParser(interpolation=None)
        try:
            cp.read(self.st.conf)
            return cp.get("log", "file", fallback="").strip()
        except configparser.Error:
            return ""

    def _start_handler(self):
        """apache-proxy: spawn-fcgi binds the Unix socket (mode 0660, group
        www-data, in a directory only root and www-data may enter) and execs
        one talkproxy-fcgi on it (-n: no fork, so the PID we track is the
        handler's). It runs as root here, as lighttpd's handlers do in
        these tests; a real site runs it under its own user."""
        S = self.S
        if not shutil.which("spawn-fcgi"):
            raise S.StackError("spawn-fcgi is not installed (apt-get install spawn-fcgi)")
        d = os.path.dirname(self.socket)
        os.makedirs(d, exist_ok=True)
        os.chown(d, -1, self.gid)
        os.chmod(d, 0o750)
        argv = ["spawn-fcgi", "-n", "-s", self.socket, "-M", "0660", "-G", WEB_USER,
                "--", self.binary, "-c", self.st.conf]
        proc = S.Proc("talkproxy-fcgi", argv, self.st.path("fcgi-handler.out"))
        self.handler = proc

        def serving():
            if not proc.alive():
                raise proc.failure("exited")
            try:
                exe = os.readlink("/proc/%d/exe" % proc.pid)
            except OSError:
                return False
            return (os.path.exists(self.socket)
                    and os.path.realpath(self.binary) in (exe, os.path.realpath(exe)))
        try:
            S.wait_until(serving, S.START_TIMEOUT, "spawn-fcgi to start the handler")
        except S.WaitTimeout as e:
            raise proc.failure(str(e)) from None

    def _write_conf(self):
        st = self.st
        if self.kind == "apache-fcgid":
            snippet = os.path.join(self.S.srcdir(), "conf", "apache", "talkproxy-fcgid.conf")
            load = "LoadModule fcgid_module %s/mod_fcgid.so" % MODULES
            server_wide = FCGID_SERVER_WIDE.format(root=self.root)
            defines = ('Define TALKPROXY_BIN "%s"\nDefine TALKPROXY_CONF "%s"\n'
                       'Define TALKPROXY_PREFIX /' % (self.binary, st.conf))
        else:
            snippet = os.path.join(self.S.srcdir(), "conf", "apache",
                                   "talkproxy-proxy-fcgi.conf")
            load = ("LoadModule proxy_module %s/mod_proxy.so\n"
                    "LoadModule proxy_fcgi_module %s/mod_proxy_fcgi.so" % (MODULES, MODULES))
            server_wide = ""
            defines = ('Define TALKPROXY_SOCKET "%s"\nDefine TALKPROXY_PREFIX /'
                       % self.socket)
        conf = st.path("apache.conf")
        with open(conf, "w") as f:
            f.write(APACHE_CONF.format(
                root=self.root, tmp=st.tmp, port=st.ports["lighttpd"],
                log_level="debug" if os.environ.get("TP_DEBUG") else "info",
                user=WEB_USER, modules=MODULES, load_modules=load,
                server_wide=server_wide, defines=defines, snippet=snippet))
        return conf

    # --- running

    def handler_pids(self):
        """The talkproxy-fcgi processes serving this Apache: mod_fcgid's
        (children of its process manager, itself a child of Apache's
        parent process), or the one spawn-fcgi started."""
        if self.kind == "apache-proxy":
            h = self.handler
            return [h.pid] if h and h.alive() else []
        if not self.proc or not self.proc.alive():
            return []
        return sorted(p for p in set(_descendants(self.S, self.proc.pid))
                      if _argv0(p) == self.binary)

    # --- stopping

    def stop(self, grace=3.0):
        """Stops Apache (mod_fcgid sends its handlers SIGTERM as it goes),
        or for apache-proxy Apache and then the handler with SIGTERM. Waits
        up to grace seconds for the handlers to exit; returns the PIDs that
        outlived it, which are then stopped here, by PID."""
        S = self.S
        pids = self.handler_pids()
        if self.proc:
            self.proc.stop()
            self.proc = None
        if self.handler:
            try:
                os.kill(self.handler.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for _ in range(int(grace / S.POLL) + 1):
            if all(S.pid_gone(p) for p in pids) or time.monotonic() > deadline:
                break
            time.sleep(S.POLL)
        survivors = [p for p in pids if not S.pid_gone(p)]
        if self.handler:
            self.handler.stop()  # reaps it, SIGKILL if it is still there
            self.handler = None
        for pid in survivors:
            S.stop_pid(pid, must_contain=self.binary, timeout=1.0)
        return survivors
