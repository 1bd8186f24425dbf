"""Thunderbird clientConfig documents are parsed safely and read the way Thunderbird does."""
from __future__ import annotations

import pytest

from plugin.mail.autoconfig import AutoconfigError, expand, parse_client_config
from tests.lab.autoconfig_web import _BOMB, _EXTERNAL, client_config


def _doc(servers: str) -> bytes:
    return (f'<clientConfig version="1.1"><emailProvider id="x">{servers}'
            "</emailProvider></clientConfig>").encode()


def _server(tag: str, kind: str, host: str, port, socket_type: str,
            username: str = "%EMAILADDRESS%", auth: str = "password-cleartext") -> str:
    return (f'<{tag} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
            f"<socketType>{socket_type}</socketType><authentication>{auth}</authentication>"
            f"<username>{username}</username></{tag}>")


def test_autoconfig_reads_incoming_and_outgoing_servers():
    config = parse_client_config(client_config(imap=("imap.acme.test", 993, "SSL"),
                                               smtp=("smtp.acme.test", 587, "STARTTLS"),
                                               username="%EMAILLOCALPART%"))
    imap, smtp = config.incoming[0], config.outgoing[0]
    assert (imap.protocol, imap.hostname, imap.port, imap.security) == (
        "imap", "imap.acme.test", 993, "ssl")
    assert (smtp.protocol, smtp.port, smtp.security) == ("smtp", 587, "starttls")
    assert imap.username == "%EMAILLOCALPART%" and imap.authentication == ("password-cleartext",)
    assert config.display_name == "Lab mail"


def test_autoconfig_prefers_imap_to_pop3_and_tls_to_plain():
    config = parse_client_config(_doc(
        _server("incomingServer", "pop3", "pop.a.test", 995, "SSL")
        + _server("incomingServer", "imap", "imap.a.test", 143, "plain")
        + _server("incomingServer", "imap", "imap.a.test", 143, "STARTTLS")
        + _server("outgoingServer", "smtp", "smtp.a.test", 25, "plain")
        + _server("outgoingServer", "smtp", "smtp.a.test", 465, "SSL")))
    assert [(e.protocol, e.security) for e in config.incoming] == [
        ("imap", "starttls"), ("imap", "none"), ("pop3", "ssl")]
    assert [e.security for e in config.outgoing] == ["ssl", "none"]


def test_autoconfig_keeps_the_providers_order_among_tls_servers():
    config = parse_client_config(_doc(
        _server("incomingServer", "imap", "a.test", 143, "STARTTLS")
        + _server("incomingServer", "imap", "a.test", 993, "SSL")))
    assert [e.port for e in config.incoming] == [143, 993]


@pytest.mark.parametrize("template, expected", [
    ("%EMAILADDRESS%", "Jane.Doe@acme.test"), ("%EMAILLOCALPART%", "Jane.Doe"),
    ("%EMAILLOCALPART%@%EMAILDOMAIN%", "Jane.Doe@acme.test"), ("fixed-login", "fixed-login"),
])
def test_autoconfig_username_templates(template, expected):
    entry = parse_client_config(client_config(imap=("i.test", 993, "SSL"),
                                              username=template)).incoming[0]
    assert expand(entry.username, "Jane.Doe@acme.test") == expected


def test_autoconfig_hostname_may_name_the_email_domain():
    entry = parse_client_config(client_config(imap=("imap.%EMAILDOMAIN%", 993, "SSL"))).incoming[0]
    assert expand(entry.hostname, "a@acme.test") == "imap.acme.test"


@pytest.mark.parametrize("data", [_BOMB, _EXTERNAL], ids=["billion-laughs", "external-entity"])
def test_autoconfig_refuses_dtds_and_entities(data):
    with pytest.raises(AutoconfigError, match="unsafe XML"):
        parse_client_config(data)


def test_autoconfig_refuses_an_oversized_document_before_parsing():
    big = client_config(imap=("i.test", 993, "SSL")) + b" " * 200_000
    with pytest.raises(AutoconfigError, match="too large"):
        parse_client_config(big)
    assert parse_client_config(big, max_bytes=300_000).incoming


@pytest.mark.parametrize("data", [b"", b"<html>hello</html>", b"<clientConfig/>", b"<clientConfig>",
                                  b"\xff\xfe<", _doc("")])
def test_autoconfig_refuses_documents_without_a_usable_server(data):
    with pytest.raises(AutoconfigError):
        parse_client_config(data)


@pytest.mark.parametrize("host, port, socket_type, username", [
    ("imap.a.test\r\nX", 993, "SSL", "%EMAILADDRESS%"),
    ("imap a.test", 993, "SSL", "%EMAILADDRESS%"),
    ("imap.a.test/evil", 993, "SSL", "%EMAILADDRESS%"),
    ("imap.%EMAILLOCALPART%.test", 993, "SSL", "%EMAILADDRESS%"),
    ("imap.a.test", 0, "SSL", "%EMAILADDRESS%"),
    ("imap.a.test", 70000, "SSL", "%EMAILADDRESS%"),
    ("imap.a.test", "x", "SSL", "%EMAILADDRESS%"),
    ("imap.a.test", 993, "QUANTUM", "%EMAILADDRESS%"),
    ("imap.a.test", 993, "SSL", "%EMAILPASSWORD%"),
    ("imap.a.test", 993, "SSL", "jane&#13;&#10;RCPT TO:x"),
])
def test_autoconfig_skips_malformed_or_hostile_servers(host, port, socket_type, username):
    with pytest.raises(AutoconfigError, match="no usable incoming server"):
        parse_client_config(_doc(_server("incomingServer", "imap", host, port, socket_type,
                                         username)))
