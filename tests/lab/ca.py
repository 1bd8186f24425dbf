"""Throw-away certificate authority for the lab servers.

Why: tests must prove real verification (trusted lab CA passes, the system store fails,
a cert for another host fails), so we mint a CA plus two leaf certs per test session.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class LabCerts:
    ca_cert: Path
    cert: Path        # localhost + 127.0.0.1
    key: Path
    wrong_cert: Path  # valid chain, but only for WRONG_HOST
    wrong_key: Path


WRONG_HOST = "wrong.example"


def _key() -> ec.EllipticCurvePrivateKey:
    # EC P-256: generation is ~instant (RSA 2048 costs ~100 ms each) and OpenSSL/Dovecot accept it.
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _leaf(ca_key, ca_name, sans: list[x509.GeneralName], cn: str):
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                     content_commitment=False, data_encipherment=False,
                                     key_agreement=True, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        # SKI/AKI present so Python 3.13's VERIFY_X509_STRICT default also accepts the chain.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def make_certs(directory: str | Path) -> LabCerts:
    """Write ca.pem, server.pem/server.key, wrong.pem/wrong.key into `directory`."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = _name("Integrated Email Lab CA")
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                     content_commitment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key, cert = _leaf(ca_key, ca_name, [x509.DNSName("localhost"),
                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                      "localhost")
    wkey, wcert = _leaf(ca_key, ca_name, [x509.DNSName(WRONG_HOST)], WRONG_HOST)

    pem = serialization.Encoding.PEM
    out = LabCerts(d / "ca.pem", d / "server.pem", d / "server.key", d / "wrong.pem",
                   d / "wrong.key")
    out.ca_cert.write_bytes(ca.public_bytes(pem))
    out.cert.write_bytes(cert.public_bytes(pem))
    out.wrong_cert.write_bytes(wcert.public_bytes(pem))
    _write_key(out.key, key)
    _write_key(out.wrong_key, wkey)
    return out
