"""The lab CA kept alive, so it can mint certificates for any test host name.

Why: ``ca.make_certs`` throws the CA key away, which is right for Dovecot and SMTP (one
``localhost`` certificate) but discovery needs certificates for names such as
``autoconfig.<domain>`` of many test domains. The authority writes the same files as
``make_certs`` (so every existing test keeps its meaning) and can issue more leaves, also
on demand through SNI for the HTTPS lab server.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .ca import WRONG_HOST, LabCerts, _key, _leaf, _name, _write_key

_PEM = serialization.Encoding.PEM


class LabAuthority:
    """A throw-away CA whose key stays in memory for the session."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = _key()
        self._name = _name("Integrated Email Lab CA")
        now = dt.datetime.now(dt.UTC)
        ca = (
            x509.CertificateBuilder()
            .subject_name(self._name).issuer_name(self._name)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.ca_cert = self.dir / "ca.pem"
        self.ca_cert.write_bytes(ca.public_bytes(_PEM))
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        self._contexts: dict[str, ssl.SSLContext] = {}

    def issue(self, names: list[str], ips: tuple[str, ...] = (),
              stem: str = "") -> tuple[Path, Path]:
        """Write a leaf certificate for ``names`` (wildcards allowed) and ``ips``; returns paths."""
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        key, cert = _leaf(self._key, self._name, sans, (names or list(ips))[0][:64])
        stem = stem or f"leaf{next(self._serial)}"
        cert_path, key_path = self.dir / f"{stem}.pem", self.dir / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(_PEM))
        _write_key(key_path, key)
        return cert_path, key_path

    def lab_certs(self, extra_names: tuple[str, ...] = ()) -> LabCerts:
        """The files ``ca.make_certs`` writes, the server leaf also covering ``extra_names``."""
        cert, key = self.issue(["localhost", *extra_names], ("127.0.0.1",), stem="server")
        wrong, wrong_key = self.issue([WRONG_HOST], stem="wrong")
        return LabCerts(self.ca_cert, cert, key, wrong, wrong_key)

    def server_context(self, name: str) -> ssl.SSLContext:
        """A server context with a certificate for ``name`` (minted once, then reused)."""
        with self._lock:
            ctx = self._contexts.get(name)
            if ctx is None:
                cert, key = self.issue([name])
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                ctx.load_cert_chain(cert, key)
                self._contexts[name] = ctx
            return ctx

    def sni_server_context(self, default_name: str = "localhost") -> ssl.SSLContext:
        """A server context that presents a certificate for whatever name the client asks."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # The default also covers 127.0.0.1, so that a redirect to the loopback address is
        # stopped by discovery's redirect rule, not by a certificate mismatch.
        cert, key = self.issue([default_name], ("127.0.0.1",))
        ctx.load_cert_chain(cert, key)

        def pick(sock: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
            # An IP literal is never sent as SNI; such clients get the default certificate.
            if server_name:
                sock.context = self.server_context(server_name.lower())

        ctx.sni_callback = pick
        return ctx
