"""
cutter.py: a TCP relay on loopback that a test can cut, to break a live
connection the way a network does (no FIN from either program): the daemon
connects to the relay, the relay to the real server. cut() drops every
relayed connection at once; new connections are relayed again.
"""

import socket
import threading


class Cutter:
    def __init__(self, upstream_port, host="127.0.0.1"):
        self.upstream = (host, upstream_port)
        self.listener = socket.create_server((host, 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.socks = []
        self.accepted = 0
        self.closed = False
        threading.Thread(target=self._accept, daemon=True, name="cutter").start()

    def _accept(self):
        while not self.closed:
            try:
                down, _ = self.listener.accept()
                up = socket.create_connection(self.upstream, timeout=5)
                up.settimeout(None)
            except OSError:
                if self.closed:
                    return
                continue
            with self.lock:
                self.socks += [down, up]
                self.accepted += 1
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        # Closing here, once no thread blocks in recv() on it, is what
        # lets SO_LINGER 0 (set by cut()) send the RST.
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        src.close()

    def cut(self):
        """Drops every relayed connection: RST to both sides, as a broken
        path would, without either side closing its stream."""
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
                # Wakes the pump blocked in recv(); it closes the socket.
                s.shutdown(socket.SHUT_RD)
            except OSError:
                pass
        return len(socks) // 2

    def close(self):
        self.closed = True
        self.listener.close()
        self.cut()
