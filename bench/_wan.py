"""A TCP relay that puts a round-trip time between its clients and a server.

Why: in production the mail servers are far away (a provider's IMAP server is a
network round trip or more per command), while the lab Dovecot answers on
loopback in microseconds, so on this machine a sync is pure CPU. This relay makes
the lab server behave like a remote one for the scale-out benchmark: a new
connection waits one round trip (the TCP handshake), and every chunk of bytes, in
either direction, arrives half a round trip after it was sent, in order. TLS runs
end to end through it (it only moves bytes). It runs in a process of its own.

    python bench/_wan.py UPSTREAM_PORT RTT_MS
prints "PORT <port>", relays until its standard input closes.
"""
from __future__ import annotations

import asyncio
import collections
import sys

HOST = "127.0.0.1"


class _Pipe(asyncio.Protocol):
    """One direction's receiving end: what arrives is written to ``peer`` later."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.queue: collections.deque = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.closing = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.queue.append((loop.time() + self.delay, data))
        if self.timer is None:
            self.timer = loop.call_at(self.queue[0][0], self._flush)

    def _flush(self) -> None:
        self.timer = None
        peer = self.peer.transport if self.peer is not None else None
        if peer is None:
            return  # not linked yet: the link flushes when it is
        loop = asyncio.get_running_loop()
        now = loop.time()
        out = []
        while self.queue and self.queue[0][0] <= now:
            out.append(self.queue.popleft()[1])
        if out:
            peer.write(b"".join(out))
        if self.queue:
            self.timer = loop.call_at(self.queue[0][0], self._flush)
        elif self.closing:
            peer.close()

    def connection_lost(self, exc) -> None:
        # The close travels like the bytes: after what was sent before it.
        self.closing = True
        if not self.queue and self.timer is None and self.peer is not None \
                and self.peer.transport is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(self.delay, self.peer.transport.close)


async def serve(upstream_port: int, rtt: float) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    half = rtt / 2

    def accept() -> _Pipe:
        client = _Pipe(half)

        async def link() -> None:
            await asyncio.sleep(rtt)  # the TCP handshake's round trip
            try:
                _t, server = await loop.create_connection(lambda: _Pipe(half), HOST,
                                                          upstream_port)
            except OSError:
                if client.transport is not None:
                    client.transport.close()
                return
            server.peer, client.peer = client, server
            if client.timer is None and (client.queue or client.closing):
                client._flush()

        loop.create_task(link())
        return client

    return await loop.create_server(accept, HOST, 0, backlog=1024)


async def main() -> None:
    upstream, rtt_ms = int(sys.argv[1]), float(sys.argv[2])
    server = await serve(upstream, rtt_ms / 1000)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
