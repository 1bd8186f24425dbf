"""Mail connections resolve host names through discovery's DNS servers (issue 17), and the
host policy still judges every address those servers return."""

from __future__ import annotations

import pytest

from plugin.mail.account import ServerSettings
from plugin.mail.connect import ConnectionPolicy, check_host
from plugin.mail.errors import MailError
from plugin.mail.probe import test_connection as probe_connection
from plugin.setup.policy import connection_policy
from tests.lab.discovery_lab import GUESS_DOMAIN
from tests.lab.servers import HOST, LAB_ALLOWED


@pytest.fixture
def lab_resolved(lab_dns, lab_certs) -> ConnectionPolicy:
    return ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}), ca_file=str(lab_certs.ca_cert),
                            timeout=2, nameservers=(HOST,), dns_port=lab_dns.port)


def test_discovered_lab_host_name_passes_test_connection(lab_resolved, lab_dns, dovecot,
                                                         smtp_lab, mail_user):
    imap_host, smtp_host = f"imap.{GUESS_DOMAIN}", f"smtp.{GUESS_DOMAIN}"
    lab_dns.zone.add_a(imap_host, HOST)
    lab_dns.zone.add_a(smtp_host, HOST)
    before = lab_dns.zone.count(imap_host, "A")
    result = probe_connection(
        ServerSettings(imap_host, dovecot.imaps, "ssl", mail_user.login, mail_user.password),
        "imap",
        ServerSettings(smtp_host, smtp_lab.tls_port, "ssl", mail_user.login, mail_user.password),
        True, lab_resolved)
    assert result.incoming_error is None and result.outgoing_error is None, result
    assert lab_dns.zone.count(imap_host, "A") == before + 1  # the lab server was asked


def test_the_system_resolver_does_not_know_lab_names(lab_certs):
    policy = ConnectionPolicy(allowed_hosts=frozenset({LAB_ALLOWED}),
                              ca_file=str(lab_certs.ca_cert), timeout=2)
    with pytest.raises(MailError) as caught:
        check_host(f"imap.{GUESS_DOMAIN}", 993, policy)
    assert caught.value.kind == "host_not_found"


@pytest.mark.parametrize("address", ["10.1.2.3", "169.254.169.254", "192.168.0.7", "0.0.0.0"])
def test_discover_dns_answer_with_a_refused_address_is_refused(lab_resolved, lab_dns,
                                                               connection_log, address):
    name = f"internal-{address.replace('.', '-')}.resolver.discover.test"
    lab_dns.zone.add_a(name, address)
    with pytest.raises(MailError) as caught:
        check_host(name, 993, lab_resolved)
    assert caught.value.kind == "host_not_allowed"
    assert connection_log.made == []


def test_discover_dns_one_refused_address_among_allowed_ones_refuses_the_host(
        lab_resolved, lab_dns):
    name = "mixed.resolver.discover.test"
    lab_dns.zone.add_a(name, HOST, "10.9.9.9")
    with pytest.raises(MailError) as caught:
        check_host(name, 993, lab_resolved)
    assert caught.value.kind == "host_not_allowed"


def test_discover_dns_cname_to_a_metadata_address_is_refused(lab_resolved, lab_dns):
    lab_dns.zone.add_cname("alias.resolver.discover.test", "meta.resolver.discover.test.")
    lab_dns.zone.add_aaaa("meta.resolver.discover.test", "fd00:ec2::254")
    with pytest.raises(MailError) as caught:
        check_host("alias.resolver.discover.test", 993, lab_resolved)
    assert caught.value.kind == "host_not_allowed"


def test_discover_dns_unknown_and_silent_names(lab_resolved, lab_dns):
    with pytest.raises(MailError) as unknown:
        check_host("nothing-here.resolver.discover.test", 993, lab_resolved)
    assert unknown.value.kind == "host_not_found"
    lab_dns.zone.never_answer.add("silent.resolver.discover.test")
    with pytest.raises(MailError) as silent:
        check_host("imap.silent.resolver.discover.test", 993, lab_resolved)
    assert silent.value.kind == "timeout"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_discover_dns_settings_reach_the_policy_of_forms_and_jobs(mini, lab_dns):
    app, _host, addon = mini
    app.config.update(IE_DISCOVERY_NAMESERVERS=HOST, IE_DISCOVERY_DNS_PORT=lab_dns.port)
    with app.app_context():
        policy = connection_policy(addon, addon.session())
        assert (policy.nameservers, policy.dns_port) == ((HOST,), lab_dns.port)
        app.config["IE_DISCOVERY_NAMESERVERS"] = ""
        assert connection_policy(addon, addon.session()).nameservers == ()
