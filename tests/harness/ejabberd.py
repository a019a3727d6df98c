"""
ejabberd.py: Debian's ejabberd (23.01) as a throwaway XMPP server for a
test, in a directory of its own under the caller's temporary directory, on
free loopback ports: c2s with STARTTLS required (the stack's test
certificate), and an HTTP listener for ejabberd's command API, through which
the accounts are made and OAuth tokens for SASL X-OAUTH2 are issued.

    e = Ejabberd(tmp, certdir, users={"alice": "alice-pw"})
    e.start()                           # returns once c2s accepts
    token = e.issue_token("alice@localhost")
    # X-OAUTH2 initial response: base64("\\0alice\\0" + token)
    e.stop()                            # by PID; e.start() again restarts it
                                        # on the same ports and database

No Erlang distribution: the VM runs as nonode@nohost, so there is no epmd,
no node name and no cookie. ejabberdctl is not used at all (it su's to the
ejabberd user, greps for beam processes by name and may kill epmd); beam.smp
is run directly with what ejabberdctl would give it, and stopped by PID.

Tokens need Debian's erlang-p1-oauth2, which ejabberd only Suggests. Without
it ejabberd still starts and still offers X-OAUTH2, but every token fails
(oauth2_priv_set is undefined) and issue_token() raises StackError; check
Ejabberd.oauth first. TP_EJABBERD_ERL_LIBS may name more Erlang library
directories (':'-separated, e.g. an unpacked .deb) for ejabberd's code path.

    cd tests && /usr/bin/python3 -m harness.ejabberd   starts and stops one.
"""

import glob
import json
import os
import shutil
import sys
import time

from . import stack

# Under "python3 -m harness.stack" the module that tracks live processes is
# __main__, and "from . import stack" loaded a second copy: use __main__.
_main = sys.modules.get("__main__")
S = _main if getattr(getattr(_main, "__spec__", None), "name", None) \
    == "harness.stack" else stack
StackError = S.StackError

ERL = "/usr/bin/erl"
START_TIMEOUT = max(S.START_TIMEOUT, 60.0)
API_TIMEOUT = 20.0


def _erl_libs():
    """ERL_LIBS as ejabberdctl sets it: Debian keeps ejabberd-<vsn>/ in the
    arch directory (/usr/lib/x86_64-linux-gnu), not /usr/lib/erlang/lib."""
    apps = sorted(glob.glob("/usr/lib/*/ejabberd-*/ebin/ejabberd.app"))
    if not apps or not os.access(ERL, os.X_OK):
        raise StackError("ejabberd is not installed (no %s or ejabberd.app)" % ERL)
    extra = [d for d in os.environ.get("TP_EJABBERD_ERL_LIBS", "").split(":") if d]
    return extra + [os.path.dirname(os.path.dirname(os.path.dirname(apps[-1])))]


class Ejabberd:
    """One ejabberd server, its beam.smp tracked by PID (a stack.Proc)."""

    def __init__(self, tmp, certdir, domain="localhost", users=None):
        self.dir = os.path.join(os.path.abspath(tmp), "ejabberd")
        self.certdir = os.path.abspath(certdir)
        self.domain = domain
        self.users = dict(users or {})
        self.port = None       # c2s, STARTTLS required
        self.api_port = None   # ejabberd_http serving /api (mod_http_api)
        self.log_path = self.path("logs", "ejabberd.log")
        self.proc = None
        self.libs = _erl_libs()
        self.oauth = any(glob.glob(os.path.join(d, "*", "ebin", "oauth2.beam"))
                         for d in self.libs + ["/usr/lib/erlang/lib"])

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    # --- configuration

    def _config(self):
        # backlog: ejabberd's default of 5 drops connects when tests open
        # many at once.
        listen = {"ip": "127.0.0.1", "backlog": 128}
        return {
            "hosts": [self.domain],
            "loglevel": "info",
            "certfiles": [os.path.join(self.certdir, "localhost.crt"),
                          os.path.join(self.certdir, "localhost.key")],
            "ca_file": os.path.join(self.certdir, "ca.pem"),
            "listen": [
                dict(listen, port=self.port, module="ejabberd_c2s",
                     starttls_required=True, max_stanza_size=262144),
                dict(listen, port=self.api_port, module="ejabberd_http",
                     request_handlers={"/api": "mod_http_api"}),
            ],
            # No s2s listener above, and no outgoing s2s either.
            "s2s_access": "none",
            "auth_method": ["internal"],
            # Who may hold OAuth tokens. The default, none, makes
            # oauth_issue_token fail for everyone.
            "oauth_access": "all",
            # Any command, from loopback only: register, oauth_issue_token,
            # add_rosteritem, kick_session, ... (see api()).
            "api_permissions": {"harness api": {
                "from": ["mod_http_api"],
                "who": {"ip": "127.0.0.1/8"},
                "what": ["*"]}},
            # Roughly what the Prosody of stack.py loads; mod_admin_extra
            # brings the roster and session commands.
            "modules": {
                "mod_admin_extra": {}, "mod_disco": {}, "mod_last": {},
                "mod_ping": {}, "mod_private": {}, "mod_roster": {},
                "mod_offline": {},
                "mod_stream_mgmt": {}, "mod_time": {}, "mod_version": {},
                "mod_vcard": {"search": False},
            },
        }

    def _write_files(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in ("db", "logs", "home"):
            os.makedirs(self.path(d))
        # JSON is YAML too, and needs no quoting rules of its own.
        with open(self.path("ejabberd.yml"), "w") as f:
            json.dump(self._config(), f, indent=1)
        # Host names from here only: no DNS, no inet_gethost port program.
        with open(self.path("inetrc"), "w") as f:
            f.write('{lookup, [file]}.\n{host, {127,0,0,1}, ["localhost"]}.\n')

    def _env(self):
        # Inherited ERL_FLAGS / ERL_AFLAGS could add -sname and so
        # distribution: drop every ERL_* variable.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERL_")}
        env.update({
            # erl needs no HOME, but anything it or ejabberd would put there
            # (~/.ejabberd-modules, a cookie) stays out of root's.
            "HOME": self.path("home"),
            "EJABBERD_CONFIG_PATH": self.path("ejabberd.yml"),
            "EJABBERD_LOG_PATH": self.log_path,
            "ERL_LIBS": ":".join(self.libs),
            "ERL_INETRC": self.path("inetrc"),
            "ERL_CRASH_DUMP": self.path("logs", "erl_crash.dump"),
            "ERL_CRASH_DUMP_BYTES": "0",
        })
        return env

    # --- start and stop

    def start(self):
        """Starts ejabberd; returns once c2s and the API accept connections.
        The first start makes a fresh database and self.users (on new ports
        if one was taken meanwhile); a later one, after stop(), keeps the
        ports and the database (accounts, unexpired tokens)."""
        if self.port is not None:
            return self._launch()
        for attempt in range(S.START_ATTEMPTS):
            self.port = S.free_port()
            self.api_port = S.free_port()
            while self.api_port == self.port:
                self.api_port = S.free_port()
            self._write_files()
            try:
                self._launch()
                break
            except StackError:
                taken = "eaddrinuse" in S.tail(self.path("console.log"), 200)
                if not taken or attempt + 1 == S.START_ATTEMPTS:
                    self.port = self.api_port = None
                    raise
        for user, password in self.users.items():
            self.register(user, password)

    def _launch(self):
        # What ejabberdctl's "foreground" runs, less -sname: Mnesia on a
        # non-distributed node is simply local.
        mnesia_dir = '"%s"' % self.path("db").replace("\\", "\\\\").replace('"', '\\"')
        argv = [ERL, "-noinput", "-noshell", "-mnesia", "dir", mnesia_dir,
                "-s", "ejabberd"]
        # ejabberd logs to stdout (console.log) and to log_path alike;
        # error.log holds just the errors.
        self.proc = S.Proc("ejabberd", argv, self.path("console.log"),
                           cwd=self.path("db"), env=self._env())
        self.proc.logs.append(self.path("logs", "error.log"))
        try:
            S.wait_until(self._ready, START_TIMEOUT, "ejabberd to listen")
        except S.WaitTimeout:
            err = self.proc.failure("did not listen in %.0f s" % START_TIMEOUT)
            self.stop()
            raise err
        except StackError:
            self.stop()
            raise

    def _ready(self):
        if not self.proc.alive():
            raise self.proc.failure("exited during start-up")
        return S.port_accepts(self.port) and S.port_accepts(self.api_port)

    def _tree(self):
        """(pid, argv0) below beam.smp: erl_child_setup and the port
        programs it started (memsup, eimp, ...)."""
        found, level = [], [self.proc.pid]
        for _ in range(4):
            level = [c for p in level for c in S.children(p)]
            found += level
        out = []
        for pid in found:
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    argv0 = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if argv0:
                out.append((pid, argv0))
        return out

    def stop(self):
        """SIGTERM to beam.smp (ejabberd stops cleanly in about a second),
        bounded wait, SIGKILL; then whatever of its tree is left, by PID
        and only while the PID still runs the same program."""
        if not self.proc:
            return
        tree = self._tree()
        self.proc.stop()
        for pid, argv0 in tree:
            S.stop_pid(pid, argv0, timeout=2.0)
        self.proc = None

    # --- the command API (mod_http_api)

    def api(self, command, **args):
        """Runs one ejabberd command with named arguments; returns its JSON
        result, or raises StackError. Commands: ejabberd's docs, 23.01."""
        status, _, body = S.http_call(
            self.api_port, "POST", "/api/" + command,
            body=json.dumps(args).encode(),
            headers={"Content-Type": "application/json"}, timeout=API_TIMEOUT)
        if status != 200:
            raise StackError("ejabberd %s: HTTP %d %r" % (command, status, body))
        return body

    def register(self, user, password):
        self.api("register", user=user, host=self.domain, password=password)

    def issue_token(self, jid, ttl=3600, scopes=("sasl_auth",)):
        """A token for jid (bare, or a bare localpart) that SASL X-OAUTH2
        accepts: ejabberd wants the scope sasl_auth in it. ejabberd does not
        check that the account exists."""
        if not self.oauth:
            raise StackError("ejabberd's OAuth needs Debian's erlang-p1-oauth2,"
                             " which is not installed")
        if "@" not in jid:
            jid = "%s@%s" % (jid, self.domain)
        # 23.01 takes the scopes as one string, separated by ';'.
        res = self.api("oauth_issue_token", jid=jid, ttl=int(ttl),
                       scopes=";".join(scopes))
        if not isinstance(res, dict) or not res.get("token"):
            raise StackError("ejabberd oauth_issue_token: %r" % (res,))
        return res["token"]


if __name__ == "__main__":
    import tempfile
    tmp = tempfile.mkdtemp(prefix="tp-ejabberd-")
    e = None
    try:
        os.makedirs(os.path.join(tmp, "certs"))
        st = S.Stack.__new__(S.Stack)   # just for _make_certs(): needs tmp
        st.tmp = tmp
        st._make_certs()
        e = Ejabberd(tmp, os.path.join(tmp, "certs"), users={"alice": "alice-pw"})
        t0 = time.monotonic()
        e.start()
        print("ejabberd up in %.1f s: c2s 127.0.0.1:%d, api %d, log %s" % (
            time.monotonic() - t0, e.port, e.api_port, e.log_path))
        if e.oauth:
            print("token for alice: %s" % e.issue_token("alice"))
        else:
            print("no erlang-p1-oauth2: no tokens")
    finally:
        if e:
            e.stop()
        shutil.rmtree(tmp, ignore_errors=True)
