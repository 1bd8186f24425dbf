"""A DNS server on loopback for the discovery tests (dnslib's server, our own zone).

Why our own resolver: tests add records per test domain while the server runs, need an
added latency (benchmarks) and names that never get an answer (timeouts), and count the
queries so that a cache can be proved to save lookups.
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Self

from dnslib import AAAA, CNAME, MX, QTYPE, RR, SRV, A, DNSRecord, RCODE
from dnslib.server import BaseResolver, DNSError, DNSServer

from .servers import HOST, free_port


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class _Quiet:
    """dnslib logs every packet by default; the lab stays silent."""

    def __getattr__(self, _name):
        return lambda *args, **kwargs: None


class LabZone(BaseResolver):
    """Records by (name, type); answers like a recursive resolver (CNAME chains included)."""

    def __init__(self) -> None:
        self._records: dict[str, list[tuple[str, object]]] = {}
        self._lock = threading.Lock()
        #: names (and every name below them) whose queries are never answered
        self.never_answer: set[str] = set()
        #: seconds added before each answer
        self.latency = 0.0
        #: (name, type) of every query received
        self.queries: Counter[tuple[str, str]] = Counter()
        # As resolvers do (RFC 6761): mail hosts named "localhost" (allow-listed by the
        # browser host and the demo) still resolve when connections use this server.
        self.add_a("localhost", HOST)

    # ------------------------------------------------------------------ records
    def _add(self, name: str, rtype: str, rdata) -> None:
        with self._lock:
            self._records.setdefault(_key(name), []).append((rtype, rdata))

    def add_a(self, name: str, *ips: str) -> None:
        for ip in ips:
            self._add(name, "A", A(ip))

    def add_aaaa(self, name: str, *ips: str) -> None:
        for ip in ips:
            self._add(name, "AAAA", AAAA(ip))

    def add_mx(self, name: str, host: str, preference: int = 10) -> None:
        self._add(name, "MX", MX(host, preference))

    def add_srv(self, name: str, target: str, port: int, priority: int = 0,
                weight: int = 0) -> None:
        self._add(name, "SRV", SRV(priority, weight, port, target))

    def add_cname(self, name: str, target: str) -> None:
        self._add(name, "CNAME", CNAME(target))

    def count(self, name: str, rtype: str | None = None) -> int:
        """How many queries arrived for ``name`` (of ``rtype``, or of any type)."""
        name = _key(name)
        return sum(n for (q, t), n in self.queries.items()
                   if q == name and (rtype is None or t == rtype))

    # ------------------------------------------------------------------ answers
    def _silent(self, name: str) -> bool:
        return any(name == n or name.endswith("." + n) for n in self.never_answer)

    def resolve(self, request: DNSRecord, handler) -> DNSRecord:
        qname = str(request.q.qname)
        name, qtype = _key(qname), QTYPE[request.q.qtype]
        with self._lock:
            self.queries[(name, qtype)] += 1
            silent = self._silent(name)
        if silent:
            # DNSError is caught by dnslib's handler, which then sends nothing at all.
            raise DNSError("never answers")
        if self.latency:
            time.sleep(self.latency)
        reply = request.reply()
        known = False
        for _hop in range(8):  # follow CNAME chains like a recursive resolver, bounded
            with self._lock:
                records = list(self._records.get(name, ()))
            known = known or bool(records)
            cnames = [r for t, r in records if t == "CNAME"]
            if cnames and qtype != "CNAME":
                reply.add_answer(RR(qname, QTYPE.CNAME, rdata=cnames[0], ttl=60))
                qname = str(cnames[0].label)
                name = _key(qname)
                continue
            for rtype, rdata in records:
                if rtype == qtype:
                    reply.add_answer(RR(qname, getattr(QTYPE, rtype), rdata=rdata, ttl=60))
            break
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class LabDns:
    """dnslib's UDP server on a free loopback port, answering from a :class:`LabZone`."""

    host = HOST

    def __init__(self) -> None:
        self.zone = LabZone()
        self.port = 0
        self._server: DNSServer | None = None

    def start(self) -> Self:
        self.port = free_port()
        self._server = DNSServer(self.zone, port=self.port, address=HOST, logger=_Quiet())
        self._server.start_thread()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server.server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
