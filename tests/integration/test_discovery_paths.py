"""Discovery finds settings by each path of issue 17, against the lab DNS, web and mail servers."""

from __future__ import annotations

import threading

import pytest

from plugin.setup.discovery import DiscoverySettings, discover
from plugin.setup.discovery_cache import DiscoveryCache
from tests.lab.autoconfig_web import client_config, document, silent
from tests.lab.discovery_lab import BUDGET, GUESS_DOMAIN, SLACK, publish
from tests.lab.servers import HOST


def test_discover_preset_domain_answers_without_network(
    discovery_policy, discovery_settings, connection_log, lab_dns
):
    before = sum(lab_dns.zone.queries.values())
    found = discover("Jane@GMail.com", policy=discovery_policy, settings=discovery_settings)
    assert found.source == "preset"
    assert found.incoming.host == "imap.gmail.com" and found.incoming.port == 993
    assert found.outgoing.host == "smtp.gmail.com"
    assert found.incoming.username == "Jane@GMail.com"
    assert found.sentence == "Settings for Gmail, which the add-on knows."
    assert connection_log.made == [] and sum(lab_dns.zone.queries.values()) == before


def test_discover_autoconfig_host_fills_servers_and_username(
    discovery_policy, discovery_settings, lab_dns, autoconfig_web, connection_log
):
    domain = "acme-corp.discover.test"
    publish(lab_dns, autoconfig_web, domain, username="%EMAILLOCALPART%")
    found = discover(f"jane@{domain}", policy=discovery_policy, settings=discovery_settings)
    assert found.source == "autoconfig", found
    assert found.sentence == f"Settings from {domain}'s published configuration."
    assert (
        found.incoming.protocol,
        found.incoming.host,
        found.incoming.port,
        found.incoming.security,
    ) == ("imap", f"imap.{domain}", 993, "ssl")
    assert (found.outgoing.host, found.outgoing.port, found.outgoing.security) == (
        f"smtp.{domain}",
        465,
        "ssl",
    )
    assert found.incoming.username == "jane"
    host, path = next((h, p) for h, p in autoconfig_web.requests if h == f"autoconfig.{domain}")
    assert path == f"/mail/config-v1.1.xml?emailaddress=jane@{domain}"
    assert connection_log.hosts() == {HOST}


def test_discover_well_known_document_on_the_domain_itself(
    discovery_policy, discovery_settings, lab_dns, autoconfig_web
):
    domain = "wellknown.discover.test"
    lab_dns.zone.add_a(domain, HOST)
    lab_dns.zone.add_a(f"mail.{domain}", HOST)
    autoconfig_web.well_known(
        domain,
        document(
            client_config(
                pop3=(f"mail.{domain}", 995, "SSL"),
                imap=(f"mail.{domain}", 143, "STARTTLS"),
                smtp=(f"mail.{domain}", 587, "STARTTLS"),
            )
        ),
    )
    found = discover(f"joe@{domain}", policy=discovery_policy, settings=discovery_settings)
    assert found.source == "well-known", found
    # IMAP is preferred to POP3 even when the document lists POP3 first.
    assert (found.incoming.protocol, found.incoming.port, found.incoming.security) == (
        "imap",
        143,
        "starttls",
    )
    assert found.outgoing.security == "starttls"
    assert found.sentence == f"Settings from {domain}'s published configuration."


def test_discover_srv_records(discovery_policy, discovery_settings, lab_dns):
    domain = "srv.discover.test"
    zone = lab_dns.zone
    zone.add_srv(f"_imaps._tcp.{domain}", f"mail.{domain}.", 993)
    zone.add_srv(f"_imap._tcp.{domain}", f"mail.{domain}.", 143)
    zone.add_srv(f"_pop3s._tcp.{domain}", ".", 0)  # RFC 6186: not offered
    zone.add_srv(f"_submission._tcp.{domain}", f"out.{domain}.", 587)
    zone.add_a(f"mail.{domain}", HOST)
    zone.add_a(f"out.{domain}", HOST)
    found = discover(f"kim@{domain}", policy=discovery_policy, settings=discovery_settings)
    assert found.source == "srv", found
    assert (found.incoming.host, found.incoming.port, found.incoming.security) == (
        f"mail.{domain}",
        993,
        "ssl",
    )
    assert (found.outgoing.host, found.outgoing.port, found.outgoing.security) == (
        f"out.{domain}",
        587,
        "starttls",
    )
    assert found.sentence == f"Settings from {domain}'s DNS service records."


@pytest.mark.parametrize(
    "mx, provider, oauth, imap_host",
    [
        ("aspmx.l.google.com.", "Google Workspace", "google", "imap.gmail.com"),
        (
            "gw-discover-test.mail.protection.outlook.com.",
            "Microsoft 365",
            "microsoft",
            "outlook.office365.com",
        ),
        ("in1-smtp.messagingengine.com.", "Fastmail", None, "imap.fastmail.com"),
    ],
)
def test_discover_mx_of_a_hosted_provider(
    discovery_policy, discovery_settings, lab_dns, connection_log, mx, provider, oauth, imap_host
):
    domain = f"{provider.split()[0].lower()}-hosted.discover.test"
    lab_dns.zone.add_mx(domain, mx)
    found = discover(f"ann@{domain}", policy=discovery_policy, settings=discovery_settings)
    assert found.source == "mx-provider", found
    assert (found.provider, found.oauth, found.incoming.host) == (provider, oauth, imap_host)
    assert found.incoming.username == f"ann@{domain}"
    assert found.sentence == f"{domain}'s mail is hosted by {provider}: settings for {provider}."
    assert connection_log.made == []  # the provider is known from the MX name alone


def test_discover_mx_host_autoconfig(discovery_policy, discovery_settings, lab_dns, autoconfig_web):
    domain, mx_domain = "mxauto.discover.test", "mailhost-lab.test"
    lab_dns.zone.add_mx(domain, f"mx1.{mx_domain}.")
    publish(lab_dns, autoconfig_web, mx_domain)
    found = discover(f"lee@{domain}", policy=discovery_policy, settings=discovery_settings)
    assert found.source == "mx-autoconfig", found
    assert found.incoming.host == f"imap.{mx_domain}"
    assert found.incoming.username == f"lee@{domain}"
    assert found.sentence == f"Settings published by {mx_domain}, which receives {domain}'s mail."


def _guess_settings(base: DiscoverySettings, dovecot, smtp_lab) -> DiscoverySettings:
    ports = (
        ("imap", "ssl", dovecot.imaps),
        ("imap", "starttls", dovecot.imap),
        ("pop3", "ssl", dovecot.pop3s),
        ("smtp", "ssl", smtp_lab.tls_port),
        ("smtp", "starttls", smtp_lab.starttls_port),
    )
    return DiscoverySettings(**{**base.__dict__, "guess_ports": ports})


def test_discover_guess_confirmed_by_tls_handshake_with_lab_dovecot_and_smtp(
    discovery_policy, discovery_settings, lab_dns, dovecot, smtp_lab, connection_log
):
    for name in ("imap", "smtp", "mail"):
        lab_dns.zone.add_a(f"{name}.{GUESS_DOMAIN}", HOST)
    settings = _guess_settings(discovery_settings, dovecot, smtp_lab)
    found = discover(f"max@{GUESS_DOMAIN}", policy=discovery_policy, settings=settings)
    assert found.source == "guess", found
    assert (found.incoming.host, found.incoming.port, found.incoming.security) == (
        f"imap.{GUESS_DOMAIN}",
        dovecot.imaps,
        "ssl",
    )
    assert (found.outgoing.host, found.outgoing.port, found.outgoing.security) == (
        f"smtp.{GUESS_DOMAIN}",
        smtp_lab.tls_port,
        "ssl",
    )
    assert found.sentence.startswith(
        f"Settings guessed from common server names (imap.{GUESS_DOMAIN} answered securely)"
    )
    assert (HOST, dovecot.imaps) in connection_log.made


def test_discover_guess_with_a_certificate_for_another_name_is_not_offered(
    discovery_policy, discovery_settings, lab_dns, dovecot, smtp_lab
):
    domain = "wrongcert.discover.test"  # the lab certificate does not cover imap.<this>
    for name in ("imap", "smtp", "mail"):
        lab_dns.zone.add_a(f"{name}.{domain}", HOST)
    found = discover(
        f"max@{domain}",
        policy=discovery_policy,
        settings=_guess_settings(discovery_settings, dovecot, smtp_lab),
    )
    assert not found.found and found.incoming is None
    assert found.sentence.startswith(f"No settings could be found for {domain}.")


def test_discover_takes_the_first_path_in_order_not_the_fastest(
    discovery_policy, discovery_settings, lab_dns, autoconfig_web
):
    domain = "order.discover.test"
    lab_dns.zone.add_srv(f"_imaps._tcp.{domain}", f"srv-imap.{domain}.", 993)
    lab_dns.zone.add_a(f"srv-imap.{domain}", HOST)
    lab_dns.zone.add_mx(domain, "aspmx.l.google.com.")
    publish(lab_dns, autoconfig_web, domain)
    found = discover(f"a@{domain}", policy=discovery_policy, settings=discovery_settings)
    assert found.source == "autoconfig" and found.incoming.host == f"imap.{domain}"


def test_discover_waits_for_a_silent_higher_step_only_until_the_budget(
    discovery_policy, discovery_settings, lab_dns, autoconfig_web
):
    domain = "slowauto.discover.test"
    lab_dns.zone.add_a(f"autoconfig.{domain}", HOST)
    autoconfig_web.autoconfig(domain, silent())
    lab_dns.zone.add_mx(domain, "aspmx.l.google.com.")
    found = discover(f"a@{domain}", policy=discovery_policy, settings=discovery_settings)
    assert found.source == "mx-provider"
    assert BUDGET - 0.05 <= found.elapsed <= BUDGET + SLACK
    outcome = {s.name: s.outcome for s in found.steps}
    assert outcome["autoconfig"] in ("unfinished", "nothing") and outcome["mx"] == "found"


def test_discover_cache_makes_many_recruiters_cause_one_lookup(
    discovery_policy, discovery_settings, lab_dns, autoconfig_web
):
    domain = "cached.discover.test"
    publish(lab_dns, autoconfig_web, domain, username="%EMAILLOCALPART%")
    cache = DiscoveryCache(ttl=60)
    results = {}

    def recruiter(i: int) -> None:
        results[i] = discover(
            f"r{i}@{domain}", policy=discovery_policy, settings=discovery_settings, cache=cache
        )

    threads = [threading.Thread(target=recruiter, args=(i,)) for i in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 200 and all(r.source == "autoconfig" for r in results.values())
    assert {r.incoming.username for r in results.values()} == {f"r{i}" for i in range(200)}
    assert autoconfig_web.requested(f"autoconfig.{domain}") == 1
    assert lab_dns.zone.count(domain, "MX") == 1
    assert cache.computed == 1 and sum(r.cached for r in results.values()) == 199
