"""Tiny socket helpers for the lab: free ports, a silent server, a closed port."""
from __future__ import annotations

import socket
import threading
from typing import Self

HOST = "127.0.0.1"
#: the allow-list entry the lab needs: loopback, on the free high ports its servers take
#: (the add-on otherwise connects to mail ports only)
LAB_ALLOWED = f"{HOST}:1024-65535"


def free_port() -> int:
    """Ask the kernel for an unused loopback port.

    Why: every lab server binds its own port so parallel runs never collide. There is a
    small race between closing and re-binding; acceptable for a test lab.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port with nothing listening: connecting gets ECONNREFUSED at once."""
    return free_port()


class SilentServer:
    """Accepts TCP connections and never sends a byte (for connect/read timeout tests).

    Why a thread that keeps the accepted sockets: if they were closed the client would
    see EOF instead of a hang, which tests a different code path.
    """

    def __init__(self, host: str = HOST) -> None:
        self.host = host
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.port = self._sock.getsockname()[1]
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SilentServer:
        self._sock.listen(64)
        self._sock.settimeout(0.2)  # lets the loop notice stop()
        self._thread = threading.Thread(target=self._loop, name="silent-server", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self._conns.append(conn)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        for c in self._conns:
            c.close()
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
