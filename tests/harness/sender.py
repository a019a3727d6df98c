"""
sender.py: a client that keeps sending chat messages through the API, each
with its own id, and repeats an id (same body) until it is answered 200, as
a phone on a bad network would. Tests that kill handlers or daemons under
load check afterwards that every answered message arrived exactly once.
"""

import threading
import time
import uuid


class Sender(threading.Thread):
    """Sends to `to` as the session of `token` until stop is set (or
    `limit` messages). sent: (id, body, [status of each attempt]); a 200
    with the wrong answer adds a "wrong answer" entry after it."""

    def __init__(self, st, token, to, tag="msg", attempts=40, retry_pause=0.05,
                 pause=0.0, limit=100000):
        super().__init__(daemon=True)
        self.st, self.token, self.to, self.tag = st, token, to, tag
        self.attempts, self.retry_pause = attempts, retry_pause
        self.pause, self.limit = pause, limit
        self.stop = threading.Event()
        self.sent = []
        self.lock = threading.Lock()

    def run(self):
        for n in range(self.limit):
            if self.stop.is_set():
                break
            msg_id = "%s-%d-%s" % (self.tag, n, uuid.uuid4().hex[:8])
            body = "%s %d %s" % (self.tag, n, uuid.uuid4().hex)
            statuses = []
            with self.lock:
                self.sent.append((msg_id, body, statuses))
            self._deliver(msg_id, body, statuses)
            if self.pause:
                time.sleep(self.pause)

    def _deliver(self, msg_id, body, statuses):
        for _ in range(self.attempts):
            try:
                status, _, answer = self.st.call(
                    "message", {"to": self.to, "body": body, "id": msg_id}, token=self.token)
            except OSError as e:
                status, answer = "error %s" % e.__class__.__name__, None
            statuses.append(status)
            if status == 200:
                if answer != {"id": msg_id}:
                    statuses.append("wrong answer %r" % (answer,))
                return
            time.sleep(self.retry_pause)

    def answered(self):
        with self.lock:
            return len(self.sent)

    def results(self):
        """(answered [(id, body)], unanswered [(id, body)], retries)."""
        with self.lock:
            sent = list(self.sent)
        ok = [(i, b) for i, b, s in sent if s and s[-1] == 200]
        failed = [(i, b) for i, b, s in sent if not s or s[-1] != 200]
        return ok, failed, sum(len(s) - 1 for _, _, s in sent)
