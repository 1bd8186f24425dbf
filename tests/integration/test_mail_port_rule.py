"""Test connection is no port scanner: with loopback allow-listed (no port named), an open
and a closed non-mail port on it give the same sentence, and the open one is never
connected to. A port the allow-list names is reached as before."""

from __future__ import annotations

import pytest

from plugin.mail.connect import ConnectionPolicy
from plugin.mail.errors import SENTENCES
from plugin.mail.probe import test_connection as probe_connection
from tests.integration.test_mail_probe import LineServer, assert_clean, settings
from tests.lab.servers import HOST, closed_port


def _accepts_everything(line: bytes) -> bytes:
    return b"+OK SECRET-BANNER\r\n"


@pytest.fixture
def open_port():
    """A loopback service on a high port that is not a mail port (like a cache or a DB)."""
    with LineServer(b"SSH-2.0-SECRET-BANNER\r\n", _accepts_everything) as server:
        server.accepted = []
        original = server._serve

        def counting(conn):
            server.accepted.append(1)
            original(conn)

        server._serve = counting
        yield server


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_open_and_closed_non_mail_ports_give_the_same_sentence(open_port, protocol):
    policy = ConnectionPolicy(allowed_hosts=frozenset({HOST}), timeout=1.5)
    closed = closed_port()
    answers = []
    for port in (open_port.port, closed):
        result = probe_connection(settings(port, "ssl"), protocol, settings(port, "starttls"),
                                  True, policy)
        answers.append((result.incoming_error.sentence, result.outgoing_error.sentence))
        assert_clean(result.incoming_error, "host_not_allowed")
        assert_clean(result.outgoing_error, "host_not_allowed")
    assert answers[0] == answers[1] == (SENTENCES["host_not_allowed"],) * 2
    assert open_port.accepted == []


def test_a_port_the_allow_list_names_is_connected_to(open_port):
    policy = ConnectionPolicy(allowed_hosts=frozenset({f"{HOST}:{open_port.port}"}),
                              timeout=1.5)
    result = probe_connection(settings(open_port.port, "starttls"), "pop3", None, True, policy)
    # It is reached (and then fails as the odd server it is): the rule let it through.
    assert result.incoming_error is not None
    assert result.incoming_error.kind != "host_not_allowed"
    assert open_port.accepted
