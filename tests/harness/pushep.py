"""
pushep.py: runs tests/js/push_endpoint.js, the local stand-in for the Web
Push, webhook and MPNS services, and talks to its control API. The endpoint
checks every push request as the real service would, logs it, and answers
with the real service's statuses or with answers a test scripted.

    ep = PushEndpoint(tmpdir, cert, key, cafile)
    ep.start()
    sub = ep.webpush_subscribe("alice")     # endpoint, p256dh, auth
    ... register sub["endpoint"] with talkproxy, make it push ...
    [req] = ep.wait_log("wp", "alice", 1)
    req["plaintext"], req["problems"], req["status"]
    ep.stop()

    cd tests && /usr/bin/python3 -m harness.pushep    runs the self-check.

The process is tracked by PID and stopped by PID; nothing looks it up by name.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

START_ATTEMPTS = 3
STOP_TIMEOUT = 5.0
CONTROL_TIMEOUT = 10.0
POLL = 0.05
KINDS = ("wp", "hook", "mpns")

_live = set()  # running PushEndpoints, for the atexit safety net


class PushEndpointError(Exception):
    """The endpoint did not start, or a control call failed."""


def script_path():
    src = os.environ.get("TP_SRCDIR")
    if src:
        return os.path.join(os.path.abspath(src), "tests", "js", "push_endpoint.js")
    return os.path.normpath(os.path.join(HERE, "..", "js", "push_endpoint.js"))


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path, limit=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-limit:].decode("utf-8", "replace")
    except OSError as e:
        return "(%s: %s)" % (path, e.strerror)


class PushEndpoint:
    def __init__(self, tmpdir, cert, key, cafile, port=None):
        self.tmpdir = tmpdir
        self.cert = cert
        self.key = key
        self.cafile = cafile
        self._pick_port = port is None
        self.port = _free_port() if port is None else port
        self.logfile = os.path.join(tmpdir, "push_endpoint.log")
        self.popen = None
        # Control calls check the chain against the test CA but not the
        # name: they always go to 127.0.0.1, and the caller's certificate may
        # name only "localhost" (as stack.py's does).
        self._ctx = ssl.create_default_context(cafile=cafile)
        self._ctx.check_hostname = False

    # --- the process

    def start(self, timeout=10):
        node = shutil.which("node")
        if not node:
            raise PushEndpointError("node is not installed")
        js = script_path()
        env = dict(os.environ)
        if not env.get("NODE_PATH"):
            env["NODE_PATH"] = os.environ.get("TP_NODE_MODULES") or os.path.join(
                os.path.dirname(js), "node_modules")
        # setpriv --pdeathsig: if this Python process dies without cleaning
        # up, the kernel still stops the endpoint.
        prefix = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
        for attempt in range(START_ATTEMPTS):
            argv = prefix + [node, js, "--port", str(self.port), "--cert", self.cert,
                             "--key", self.key, "--host", "127.0.0.1"]
            offset = os.path.getsize(self.logfile) if os.path.exists(self.logfile) else 0
            with open(self.logfile, "ab") as out:
                self.popen = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True)
            _live.add(self)
            state = self._wait_listening(offset, timeout)
            if state == "listening":
                return self
            self.stop()
            # A port picked here may have been taken in the meantime: retry
            # with another one.
            if state == "in use" and self._pick_port and attempt + 1 < START_ATTEMPTS:
                self.port = _free_port()
                continue
            raise PushEndpointError("push_endpoint.js did not start (%s) on port %d:\n%s" % (
                state, self.port, _tail(self.logfile)))
        raise AssertionError("not reached")

    def _wait_listening(self, offset, timeout):
        """Polls the log (bounded) for "listening <port>"."""
        want = ("listening %d" % self.port).encode()
        deadline = time.monotonic() + timeout
        while True:
            with open(self.logfile, "rb") as f:
                f.seek(offset)
                text = f.read()
            if want in text.splitlines():
                return "listening"
            if b"EADDRINUSE" in text:
                return "in use"
            if self.popen.poll() is not None:
                return "exit status %d" % self.popen.returncode
            if time.monotonic() >= deadline:
                return "timed out after %.1f s" % timeout
            time.sleep(POLL)

    @property
    def pid(self):
        return self.popen.pid if self.popen else None

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def stop(self):
        """SIGTERM by PID, bounded wait, then SIGKILL by PID. Returns the exit
        status (None if never started)."""
        p = self.popen
        if p is None:
            return None
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if p.poll() is not None:
                break
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        _live.discard(self)
        return p.poll()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- URLs

    def url(self, kind, name, host="127.0.0.1"):
        return "https://%s:%d/%s/%s" % (host, self.port, kind, name)

    # --- the control API

    def _call(self, method, path, body=None, host=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("https://127.0.0.1:%d%s" % (self.port, path),
                                     data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if host:
            # What the endpoint sees as the Host the client used (it builds
            # subscription endpoints from it).
            req.add_header("Host", "%s:%d" % (host, self.port))
        try:
            with urllib.request.urlopen(req, timeout=CONTROL_TIMEOUT, context=self._ctx) as r:
                return json.loads(r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            raise PushEndpointError("%s %s: %d %s" % (
                method, path, e.code, e.read().decode("utf-8", "replace"))) from None
        except (OSError, ValueError) as e:
            raise PushEndpointError("%s %s: %s" % (method, path, e)) from None

    def config(self, **keys):
        """Pins keys: webhook_public (base64url raw Ed25519 public key),
        vapid_public (base64url uncompressed P-256 point); None unpins."""
        return self._call("POST", "/_ctl/config", keys)

    def webpush_subscribe(self, name, host="127.0.0.1"):
        """A new subscription (fresh keys) at /wp/<name>: {endpoint, p256dh, auth}."""
        return self._call("POST", "/_ctl/webpush/" + name, {}, host=host)

    def webpush_unsubscribe(self, name):
        """Deletes it: pushes to /wp/<name> get 410 from now on."""
        self._call("DELETE", "/_ctl/webpush/" + name)

    def script(self, kind, name, responses):
        """Appends answers for the next pushes to /<kind>/<name>, one each:
        {"status", "headers", "body", "delay_ms"}, {"hang": True},
        {"reset": True} or {"garbage": True}."""
        return self._call("POST", "/_ctl/script/%s/%s" % (kind, name),
                          {"responses": list(responses)})

    def log(self, kind, name):
        return self._call("GET", "/_ctl/log/%s/%s" % (kind, name))["requests"]

    def logs(self):
        """Every log: {"<kind>/<name>": [requests]}."""
        return self._call("GET", "/_ctl/log")

    def wait_log(self, kind, name, count, timeout=10.0):
        """Polls (bounded) until /<kind>/<name> got at least count requests."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.log(kind, name)
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError("%s/%s: %d of %d requests after %.1f s: %s" % (
                    kind, name, len(got), count, timeout, json.dumps(got)[:4000]))
            time.sleep(POLL)

    def clear(self):
        """Forgets every log and pending scripted answer."""
        self._call("DELETE", "/_ctl/log")


def _stop_all():
    for ep in list(_live):
        ep.stop()


atexit.register(_stop_all)


# ---------------------------------------------------------------------------
# Self-check: cd tests && /usr/bin/python3 -m harness.pushep

# Encrypts like an application server with http_ece, and signs a VAPID JWT
# with the PEM key given (node's crypto). argv: p256dh auth keyfile aud sub
# exp_offset; the plaintext on stdin. Prints JSON {body_hex, authorization, k}.
_NODE_SENDER = r"""
const crypto = require('crypto');
const fs = require('fs');
const ece = require('http_ece');
const [p256dh, auth, keyfile, aud, sub, expOffset] = process.argv.slice(1);
const plain = fs.readFileSync(0);
const sender = crypto.createECDH('prime256v1');
sender.generateKeys();
const body = ece.encrypt(plain, { version: 'aes128gcm', privateKey: sender,
	dh: p256dh, authSecret: auth });
const key = crypto.createPrivateKey(fs.readFileSync(keyfile));
const jwk = crypto.createPublicKey(key).export({ format: 'jwk' });
const k = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x, 'base64url'),
	Buffer.from(jwk.y, 'base64url')]).toString('base64url');
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const input = b64({ typ: 'JWT', alg: 'ES256' }) + '.' +
	b64({ aud, exp: Math.floor(Date.now() / 1000) + Number(expOffset), sub });
const sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
console.log(JSON.stringify({ body_hex: body.toString('hex'),
	authorization: `vapid t=${input}.${sig.toString('base64url')}, k=${k}`, k }));
"""


def _self_check():
    import base64
    import http.client
    import tempfile

    import nacl.signing

    from harness import tap

    tap.watchdog(120)

    def b64url(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    def run(argv, stdin=None, cwd=None):
        r = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30, cwd=cwd, env=env)
        if r.returncode != 0:
            raise RuntimeError("%s failed: %s" % (argv[:3], r.stderr.decode(errors="replace")))
        return r.stdout

    tmp = tempfile.mkdtemp(prefix="pushep.")
    env = dict(os.environ)
    env.setdefault("NODE_PATH", os.path.join(os.path.dirname(script_path()), "node_modules"))

    # A throwaway CA and a server certificate for localhost and 127.0.0.1.
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(["openssl", "req", "-x509"] + ec + [
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=pushep test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign"], cwd=tmp)
    run(["openssl", "req"] + ec + ["-keyout", "server.key", "-out", "server.csr",
                                   "-subj", "/CN=localhost"], cwd=tmp)
    with open(os.path.join(tmp, "server.ext"), "w") as f:
        f.write("subjectAltName = DNS:localhost, IP:127.0.0.1\n"
                "basicConstraints = CA:FALSE\nextendedKeyUsage = serverAuth\n")
    run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.crt"],
        cwd=tmp)
    # VAPID keys: one the application server uses, one that is not it.
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "vapid.pem"],
        cwd=tmp)
    run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "other.pem"],
        cwd=tmp)
    cafile = os.path.join(tmp, "ca.pem")
    # Pushes from the tests verify the server fully, name included.
    client_ctx = ssl.create_default_context(cafile=cafile)

    ep = PushEndpoint(tmp, os.path.join(tmp, "server.crt"), os.path.join(tmp, "server.key"),
                      cafile)
    tap.on_failure(lambda: tap.diag("--- push_endpoint.log ---\n" + _tail(ep.logfile)))

    def post(kind, name, body=b"", headers=None, host="127.0.0.1", method="POST", timeout=5):
        """One request on a fresh connection: (status, headers, body)."""
        conn = http.client.HTTPSConnection(host, ep.port, timeout=timeout, context=client_ctx)
        try:
            conn.request(method, "/%s/%s" % (kind, name), body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def sender(sub, plain, keyfile="vapid.pem", aud=None, subject="mailto:ops@example.net",
               exp_offset=43200):
        aud = aud or "https://127.0.0.1:%d" % ep.port
        out = run(["node", "-e", _NODE_SENDER, sub["p256dh"], sub["auth"],
                   os.path.join(tmp, keyfile), aud, subject, str(exp_offset)],
                  stdin=plain.encode() if isinstance(plain, str) else plain)
        return json.loads(out)

    def wp_headers(s, **extra):
        h = {"TTL": "60", "Content-Encoding": "aes128gcm", "Urgency": "high",
             "Authorization": s["authorization"], "Content-Type": "application/octet-stream"}
        h.update(extra)
        return {k: v for k, v in h.items() if v is not None}

    def last(kind, name):
        return ep.log(kind, name)[-1]

    try:
        ep.start()
        tap.ok(ep.alive(), "push_endpoint.js starts and listens on port %d" % ep.port)
        pid = ep.pid

        # --- Web Push
        sub = ep.webpush_subscribe("alice")
        tap.is_(sub["endpoint"], ep.url("wp", "alice"),
                "a subscription's endpoint is the push URL on the Host used")
        tap.ok(len(base64.urlsafe_b64decode(sub["p256dh"] + "==")) == 65 and
               len(base64.urlsafe_b64decode(sub["auth"] + "==")) == 16,
               "p256dh is 65 bytes and auth 16")
        text = "Grüße — a push ☕"
        s = sender(sub, text)
        status, hdrs, _ = post("wp", "alice", bytes.fromhex(s["body_hex"]), wp_headers(s))
        tap.is_(status, 201, "a correct Web Push is accepted with 201")
        tap.ok(hdrs.get("location", "").startswith("/msg/"), "201 carries a Location")
        rec = last("wp", "alice")
        tap.is_((rec["plaintext"], rec["problems"]), (text, []),
                "the log holds the plaintext, decrypted by http_ece, and no problems")
        tap.is_(rec["vapid"]["sub"], "mailto:ops@example.net", "the log holds the VAPID claims")
        tap.ok(rec["headers"].get("ttl") == "60" and rec["status"] == 201
               and isinstance(rec["t_ms"], int), "the log holds headers, status and time")

        forged = dict(s)
        t, k = s["authorization"].split(", k=")
        forged["authorization"] = t[:-4] + ("AAAA" if t[-4:] != "AAAA" else "BBBB") + ", k=" + k
        status, _, _ = post("wp", "alice", bytes.fromhex(s["body_hex"]), wp_headers(forged))
        tap.ok(status == 403 and any("signature" in p for p in last("wp", "alice")["problems"]),
               "a VAPID token with a wrong signature gets 403")
        status, _, _ = post("wp", "alice", bytes.fromhex(s["body_hex"]),
                            wp_headers(s, Authorization=None))
        tap.is_(status, 401, "no Authorization gets 401")
        ep.config(vapid_public=sender(sub, "x", keyfile="other.pem")["k"])
        status, _, _ = post("wp", "alice", bytes.fromhex(s["body_hex"]), wp_headers(s))
        tap.ok(status == 403 and
               "k= is not the pinned VAPID key" in last("wp", "alice")["problems"],
               "a valid token from a key other than the pinned one gets 403")
        ep.config(vapid_public=s["k"])
        status, _, _ = post("wp", "alice", bytes.fromhex(s["body_hex"]), wp_headers(s))
        tap.is_(status, 201, "the pinned key is accepted")
        s2 = sender(sub, "aud", aud="https://localhost:%d" % ep.port)
        status, _, _ = post("wp", "alice", bytes.fromhex(s2["body_hex"]), wp_headers(s2))
        tap.ok(status == 401 and any("aud" in p for p in last("wp", "alice")["problems"]),
               "an aud other than the origin used gets 401")
        status, _, _ = post("wp", "alice", bytes.fromhex(s2["body_hex"]), wp_headers(s2),
                            host="localhost")
        tap.is_(status, 201, "the same token pushed to https://localhost:port is accepted")
        s3 = sender(sub, "late", exp_offset=86400 + 120)
        status, _, _ = post("wp", "alice", bytes.fromhex(s3["body_hex"]), wp_headers(s3))
        tap.is_(status, 401, "an exp more than 24 h ahead gets 401")
        for name, extra, want in [
                ("no TTL", {"TTL": None}, "no TTL header"),
                ("a negative TTL", {"TTL": "-1"}, "TTL"),
                ("an aesgcm Content-Encoding", {"Content-Encoding": "aesgcm"}, "Content-Encoding"),
                ("a bad Urgency", {"Urgency": "urgent"}, "Urgency"),
                ("a 33-character Topic", {"Topic": "a" * 33}, "Topic")]:
            status, _, _ = post("wp", "alice", bytes.fromhex(s["body_hex"]),
                                wp_headers(s, **extra))
            probs = last("wp", "alice")["problems"]
            tap.ok(status == 400 and any(p.startswith(want) for p in probs),
                   "%s gets 400" % name, repr((status, probs)))
        status, _, _ = post("wp", "alice", bytes.fromhex(s["body_hex"]),
                            wp_headers(s, Topic="chat-1"))
        tap.is_(status, 201, "a good Topic is accepted")
        other = ep.webpush_subscribe("other")
        s4 = sender(dict(other, auth=b64url(os.urandom(16))), "wrong auth")
        status, _, _ = post("wp", "other", bytes.fromhex(s4["body_hex"]), wp_headers(s4))
        rec = last("wp", "other")
        tap.ok(status == 400 and rec["plaintext"] is None and
               any("decryption failed" in p for p in rec["problems"]),
               "a body encrypted with another auth secret gets 400", repr(rec["problems"]))
        s5 = sender(sub, "x" * 4100)
        status, _, _ = post("wp", "alice", bytes.fromhex(s5["body_hex"]), wp_headers(s5))
        tap.is_(status, 413, "a body over 4096 bytes gets 413")
        status, _, _ = post("wp", "nobody", bytes.fromhex(s["body_hex"]), wp_headers(s))
        tap.is_(status, 404, "a push to an unknown subscription gets 404")
        ep.webpush_unsubscribe("other")
        status, _, _ = post("wp", "other", bytes.fromhex(s["body_hex"]), wp_headers(s))
        tap.is_(status, 410, "a push to a deleted subscription gets 410")
        status, hdrs, _ = post("wp", "alice", method="GET")
        tap.ok(status == 405 and hdrs.get("allow") == "POST", "GET on a push URL gets 405")

        # --- webhook
        signer = nacl.signing.SigningKey.generate()

        def hook(payload, ts=None, tamper=False, key=signer, ctype="application/json"):
            body = json.dumps(payload).encode()
            ts = str(int(time.time()) if ts is None else ts)
            sig = key.sign(ts.encode() + b"." + body).signature
            if tamper:
                body = body.replace(b"hi", b"ho")
            return post("hook", "app", body, {
                "Content-Type": ctype, "X-Talkproxy-Timestamp": ts,
                "X-Talkproxy-Signature": "ed25519=" + b64url(sig)})

        status, _, _ = hook({"msg": "hi"})
        tap.ok(status == 401 and "no webhook key pinned" in last("hook", "app")["problems"],
               "a webhook before a key is pinned gets 401 and says why")
        ep.config(webhook_public=b64url(bytes(signer.verify_key)))
        status, _, body = hook({"msg": "hi"})
        rec = last("hook", "app")
        tap.is_((status, body, rec["signature_ok"], rec["json"], rec["problems"]),
                (200, b"{}", True, {"msg": "hi"}, []),
                "a webhook signed with the pinned Ed25519 key verifies: 200 {}")
        status, _, _ = hook({"msg": "hi"}, tamper=True)
        tap.ok(status == 401 and not last("hook", "app")["signature_ok"],
               "a tampered webhook body gets 401")
        status, _, _ = hook({"msg": "hi"}, key=nacl.signing.SigningKey.generate())
        tap.is_(status, 401, "a webhook signed by another key gets 401")
        status, _, _ = hook({"msg": "hi"}, ts=int(time.time()) - 400)
        tap.is_(status, 401, "a webhook timestamp 400 s old gets 401")
        status, _, _ = hook({"msg": "hi"}, ctype="text/plain")
        tap.is_(status, 400, "a webhook that is not application/json gets 400")
        status, _, _ = hook(["not", "an", "object"])
        tap.is_(status, 400, "a webhook body that is not a JSON object gets 400")

        # --- MPNS
        received = {"x-notificationstatus": "Received", "x-subscriptionstatus": "Active",
                    "x-deviceconnectionstatus": "Connected"}

        def mpns(body, target=None, cls="3", ctype="text/xml"):
            h = {"X-NotificationClass": cls, "Content-Type": ctype}
            if target:
                h["X-WindowsPhone-Target"] = target
            status, hdrs, _ = post("mpns", "phone", body.encode(), h)
            return status, {k: hdrs.get(k) for k in received}, last("mpns", "phone")

        status, hdrs, rec = mpns("msg:c2VhbGVk", ctype="application/octet-stream")
        tap.is_((status, hdrs, rec["target"], rec["class"], rec["body"], rec["problems"]),
                (200, received, "raw", 3, "msg:c2VhbGVk", []),
                "a raw MPNS notification gets 200 Received/Active/Connected")
        toast = ('<?xml version="1.0" encoding="utf-8"?><wp:Notification xmlns:wp="WPNotification">'
                 '<wp:Toast><wp:Text1>Bob &amp; co</wp:Text1><wp:Text2>hi &lt;3</wp:Text2>'
                 '<wp:Param>/ChatPage.xaml?from=bob@localhost</wp:Param></wp:Toast>'
                 '</wp:Notification>')
        status, _, rec = mpns(toast, "toast", "2")
        tap.is_((status, rec["text1"], rec["text2"], rec["param"], rec["problems"]),
                (200, "Bob & co", "hi <3", "/ChatPage.xaml?from=bob@localhost", []),
                "a toast is accepted and its texts and param extracted")
        tile = ('<wp:Notification xmlns:wp="WPNotification"><wp:Tile '
                'Id="/ChatPage.xaml?from=bob@localhost"><wp:Count>7</wp:Count></wp:Tile>'
                '</wp:Notification>')
        status, _, rec = mpns(tile, "token", "1")
        tap.is_((status, rec["count"], rec["tile_id"], rec["problems"]),
                (200, 7, "/ChatPage.xaml?from=bob@localhost", []),
                "a secondary tile is accepted with its count and Id")
        status, _, rec = mpns(toast, "toast", "3")
        tap.ok(status == 400 and any("class 3" in p for p in rec["problems"]),
               "a toast sent with a raw class gets 400")
        status, _, _ = mpns("msg:x", "badge", "3")
        tap.is_(status, 400, "an unknown X-WindowsPhone-Target gets 400")
        status, _, _ = mpns(toast, "token", "1")
        tap.is_(status, 400, "a toast body sent as a tile gets 400")
        status, _, rec = mpns(toast.replace("</wp:Text2>", ""), "toast", "2")
        tap.ok(status == 400 and any("well-formed" in p for p in rec["problems"]),
               "malformed toast XML gets 400")
        status, _, _ = mpns("msg:" + "x" * 3100)
        tap.is_(status, 400, "a body over 3072 bytes gets 400")

        # --- scripted answers
        ep.script("mpns", "phone", [{"status": 200, "headers": {
            "X-NotificationStatus": "Suppressed", "X-SubscriptionStatus": "Active",
            "X-DeviceConnectionStatus": "Connected"}}])
        status, hdrs, rec = mpns("msg:x")
        tap.ok(status == 200 and hdrs["x-notificationstatus"] == "Suppressed" and rec["scripted"],
               "a scripted Suppressed answer is sent")
        ep.script("wp", "alice", [{"status": 429, "headers": {"Retry-After": "7"}}])
        status, hdrs, _ = post("wp", "alice", bytes.fromhex(s["body_hex"]), wp_headers(s))
        rec = last("wp", "alice")
        tap.is_((status, hdrs.get("retry-after"), rec["status"], rec["plaintext"]),
                (429, "7", 429, text),
                "a scripted 429 with Retry-After is sent; the request is still decrypted")
        status, _, _ = post("wp", "alice", bytes.fromhex(s["body_hex"]), wp_headers(s))
        tap.is_(status, 201, "after the script runs out the default answer is back")
        ep.script("mpns", "phone", [{"status": 503, "delay_ms": 300}])
        t0 = time.monotonic()
        status, _, rec = mpns(toast, "toast", "3")
        tap.ok(status == 503 and time.monotonic() - t0 >= 0.3 and rec["problems"],
               "a delayed scripted 503 comes late; the bad request is still judged")

        ep.script("hook", "app", [{"hang": True}])
        hung = http.client.HTTPSConnection("127.0.0.1", ep.port, timeout=1, context=client_ctx)
        hung.request("POST", "/hook/app", body=b"{}", headers={"Content-Type": "application/json"})
        status, _, _ = mpns("msg:during the hang")
        tap.is_(status, 200, "another request is answered while one hangs")
        t0 = time.monotonic()
        try:
            hung.getresponse()
            result = "answered"
        except (socket.timeout, TimeoutError):
            result = "timeout"
        finally:
            hung.close()
        tap.ok(result == "timeout" and time.monotonic() - t0 < 3,
               "a scripted hang is never answered: the client times out after 1 s")
        tap.is_(last("hook", "app")["status"], None, "a hung request is logged with status null")

        ep.script("wp", "alice", [{"reset": True}, {"garbage": True}])
        for what in ("reset", "garbage"):
            try:
                post("wp", "alice", bytes.fromhex(s["body_hex"]), wp_headers(s))
                result = "answered"
            except (http.client.BadStatusLine, http.client.RemoteDisconnected,
                    ConnectionError, ssl.SSLError) as e:
                result = type(e).__name__
            rec = last("wp", "alice")
            tap.ok(result != "answered" and rec["status"] is None and rec["answer"] == what,
                   "a scripted %s gives the client no HTTP answer (%s)" % (what, result))

        # --- logs
        everything = ep.logs()
        tap.ok({"wp/alice", "hook/app", "mpns/phone"} <= set(everything),
               "GET /_ctl/log has every URL's log")
        got = ep.wait_log("mpns", "phone", 3, timeout=2)
        tap.ok(len(got) >= 3, "wait_log returns once enough requests are in")
        try:
            ep.wait_log("mpns", "never", 1, timeout=0.3)
            tap.ok(False, "wait_log times out when nothing comes")
        except TimeoutError:
            tap.ok(True, "wait_log times out when nothing comes")
        ep.script("mpns", "phone", [{"status": 503}])
        ep.clear()
        status, _, _ = mpns("msg:after clear")
        tap.ok(ep.logs() == {"mpns/phone": ep.log("mpns", "phone")} and status == 200
               and len(ep.log("mpns", "phone")) == 1,
               "clear() empties the logs and pending scripts")
        status, _, _ = post("nope", "x")
        tap.is_(status, 404, "an unknown path gets 404")
        tap.ok(ep.alive(), "the endpoint survived all of it")
    finally:
        ep.stop()
    tap.ok(ep.popen.poll() is not None and _gone(pid), "stop() leaves no process")
    try:
        socket.create_connection(("127.0.0.1", ep.port), timeout=1).close()
        tap.ok(False, "the port is closed after stop()")
    except OSError:
        tap.ok(True, "the port is closed after stop()")
    shutil.rmtree(tmp, ignore_errors=True)
    tap.done()


def _gone(pid):
    """True once pid has exited (gone, or a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


if __name__ == "__main__":
    _self_check()
