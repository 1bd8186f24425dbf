"""Hostile discovery: each case ends with no settings and a sentence, within the budget,
with no socket opened to a refused address (every TCP connect is recorded)."""
from __future__ import annotations

import time

import pytest

from plugin.setup.discovery import discover
from tests.lab.autoconfig_web import bomb, client_config, document, external_entity, huge
from tests.lab.autoconfig_web import redirect, silent
from tests.lab.discovery_lab import BUDGET, SLACK, publish
from tests.lab.servers import HOST

MANUAL = "Type your mail server's settings below, or ask your administrator for them."


def assert_manual(found, domain: str, connection_log, *, timed_out: bool = False) -> None:
    assert not found.found and found.incoming is None and found.outgoing is None, found
    assert found.source == ""
    start = "Looking up settings for" if timed_out else "No settings could be found for"
    assert found.sentence == f"{start} {domain}{' took too long' if timed_out else ''}. {MANUAL}"
    assert found.elapsed <= BUDGET + SLACK
    # Only the lab's allowed loopback address was ever connected to.
    assert connection_log.hosts() <= {HOST}, connection_log.made


def run(domain, discovery_policy, discovery_settings):
    return discover(f"eve@{domain}", policy=discovery_policy, settings=discovery_settings)


@pytest.mark.parametrize("route", [bomb, external_entity], ids=["xml-bomb", "external-entity"])
def test_discover_refuses_autoconfig_with_entities(
    route, discovery_policy, discovery_settings, lab_dns, autoconfig_web, connection_log
):
    domain = f"{route.__name__.replace('_', '-')}.discover.test"
    lab_dns.zone.add_a(f"autoconfig.{domain}", HOST)
    lab_dns.zone.add_a(f"imap.{domain}", HOST)
    autoconfig_web.autoconfig(domain, route())
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)
    assert autoconfig_web.requested(f"autoconfig.{domain}") == 1  # fetched, then refused
    assert found.elapsed < 1.0  # refused at once, not expanded


def _sent_settles(web) -> int:
    last = -1
    while web.huge_bytes_sent != last:
        last = web.huge_bytes_sent
        time.sleep(0.2)
    return last


@pytest.mark.parametrize("declare_length", [False, True], ids=["streamed", "declared"])
def test_discover_stops_reading_a_50_mb_autoconfig(
    declare_length, discovery_policy, discovery_settings, lab_dns, autoconfig_web, connection_log
):
    domain = f"huge-{'declared' if declare_length else 'streamed'}.discover.test"
    lab_dns.zone.add_a(f"autoconfig.{domain}", HOST)
    before = _sent_settles(autoconfig_web)
    autoconfig_web.autoconfig(domain, huge(50 * 1024 * 1024, declare_length=declare_length))
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)
    # The server could push only what the socket buffers held before the client hung up.
    assert _sent_settles(autoconfig_web) - before < 10 * 1024 * 1024


@pytest.mark.parametrize("name, target", [
    ("loopback", "https://127.0.0.1:{port}/mail/config-v1.1.xml"),
    ("metadata", "https://169.254.169.254/latest/meta-data/"),
    ("cross-domain", "https://autoconfig.elsewhere-lab.test:{port}/mail/config-v1.1.xml"),
])
def test_discover_refuses_redirects_off_the_domain(
    name, target, discovery_policy, discovery_settings, lab_dns, autoconfig_web, connection_log
):
    domain = f"redirect-{name}.discover.test"
    location = target.format(port=autoconfig_web.port)
    lab_dns.zone.add_a(f"autoconfig.{domain}", HOST)
    autoconfig_web.autoconfig(domain, redirect(location))
    # Each target would serve a good document, so only the redirect rule stops it.
    publish(lab_dns, autoconfig_web, "elsewhere-lab.test")
    autoconfig_web.serve("127.0.0.1", "/mail/config-v1.1.xml", document(client_config(
        imap=("imap.elsewhere-lab.test", 993, "SSL"))))
    since = len(autoconfig_web.requests)
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)
    assert autoconfig_web.requested(f"autoconfig.{domain}", since) == 1
    assert autoconfig_web.requested("127.0.0.1", since) == 0
    assert autoconfig_web.requested("autoconfig.elsewhere-lab.test", since) == 0


@pytest.mark.parametrize("address", ["169.254.169.254", "10.0.0.9", "192.168.1.20"])
def test_discover_same_domain_redirect_to_a_refused_address_opens_no_socket(
    address, discovery_policy, discovery_settings, lab_dns, autoconfig_web, connection_log
):
    domain = f"redirect-{address.replace('.', '-')}.discover.test"
    lab_dns.zone.add_a(f"autoconfig.{domain}", HOST)
    lab_dns.zone.add_a(f"inner.{domain}", address)
    autoconfig_web.autoconfig(domain, redirect(
        f"https://inner.{domain}:{autoconfig_web.port}/mail/config-v1.1.xml"))
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)
    assert lab_dns.zone.count(f"inner.{domain}", "A") == 1  # checked, refused, not contacted


def test_discover_follows_at_most_one_redirect_and_only_to_https(
    discovery_policy, discovery_settings, lab_dns, autoconfig_web, connection_log
):
    domain, port = "twohops.discover.test", autoconfig_web.port
    for name in ("autoconfig", "hop", "final"):
        lab_dns.zone.add_a(f"{name}.{domain}", HOST)
    autoconfig_web.autoconfig(domain, redirect(f"https://hop.{domain}:{port}/x"))
    autoconfig_web.serve(f"hop.{domain}", "/x", redirect(f"https://final.{domain}:{port}/y"))
    autoconfig_web.serve(f"final.{domain}", "/y", document(client_config(
        imap=(f"final.{domain}", 993, "SSL"))))
    lab_dns.zone.add_a(domain, HOST)
    autoconfig_web.well_known(domain, redirect(f"http://{domain}/plain"))
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)
    assert autoconfig_web.requested(f"hop.{domain}") == 1
    assert autoconfig_web.requested(f"final.{domain}") == 0


@pytest.mark.parametrize("address", ["10.0.0.7", "192.168.1.20", "172.16.5.5", "169.254.169.254",
                                     "100.64.1.1", "fd00::1"])
def test_discover_refuses_srv_targets_in_private_ranges(
    address, discovery_policy, discovery_settings, lab_dns, connection_log
):
    domain = f"srvpriv-{address.replace('.', '-').replace(':', '-')}.discover.test"
    zone = lab_dns.zone
    zone.add_srv(f"_imaps._tcp.{domain}", f"mail.{domain}.", 993)
    zone.add_srv(f"_submissions._tcp.{domain}", f"mail.{domain}.", 465)
    (zone.add_aaaa if ":" in address else zone.add_a)(f"mail.{domain}", address)
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)


def test_discover_refuses_an_srv_target_with_one_private_address_among_public_ones(
    discovery_policy, discovery_settings, lab_dns, connection_log
):
    domain = "srvmixed.discover.test"
    lab_dns.zone.add_srv(f"_imaps._tcp.{domain}", f"mail.{domain}.", 993)
    lab_dns.zone.add_a(f"mail.{domain}", "8.8.8.8", "10.1.2.3")
    assert_manual(run(domain, discovery_policy, discovery_settings), domain, connection_log)


def test_discover_refuses_an_mx_whose_autoconfig_is_in_a_private_range(
    discovery_policy, discovery_settings, lab_dns, autoconfig_web, connection_log
):
    domain, mx_domain = "mxpriv.discover.test", "private-mx-lab.test"
    lab_dns.zone.add_mx(domain, f"mx.{mx_domain}.")
    lab_dns.zone.add_a(f"mx.{mx_domain}", "10.9.9.8")
    lab_dns.zone.add_a(f"autoconfig.{mx_domain}", "10.9.9.9")
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)
    assert lab_dns.zone.count(f"autoconfig.{mx_domain}", "A") == 1


def test_discover_does_not_offer_servers_a_document_names_in_private_ranges(
    discovery_policy, discovery_settings, lab_dns, autoconfig_web, connection_log
):
    domain = "docpriv.discover.test"
    publish(lab_dns, autoconfig_web, domain, imap_host=f"intranet.{domain}")
    lab_dns.zone.add_a(f"intranet.{domain}", "192.168.0.10")
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)
    assert autoconfig_web.requested(f"autoconfig.{domain}") == 1


def test_discover_guessed_names_in_private_ranges_get_no_handshake(
    discovery_policy, discovery_settings, lab_dns, connection_log
):
    domain = "guesspriv.discover.test"
    for name in ("imap", "mail", "smtp", "pop"):
        lab_dns.zone.add_a(f"{name}.{domain}", "10.20.30.40")
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)
    assert connection_log.made == []


def test_discover_gives_up_on_a_web_server_that_never_answers_at_the_budget(
    discovery_policy, discovery_settings, lab_dns, autoconfig_web, connection_log
):
    domain = "silentweb.discover.test"
    lab_dns.zone.add_a(f"autoconfig.{domain}", HOST)
    autoconfig_web.autoconfig(domain, silent())
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log, timed_out=True)
    assert found.elapsed >= BUDGET - 0.05


def test_discover_gives_up_on_dns_that_never_answers_at_the_budget(
    discovery_policy, discovery_settings, lab_dns, connection_log
):
    domain = "silentdns.discover.test"
    lab_dns.zone.never_answer.add(domain)
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log, timed_out=True)
    assert found.elapsed >= BUDGET - 0.05
    assert lab_dns.zone.count(domain, "MX") >= 1


def test_discover_every_step_failing_answers_quickly_with_a_sentence(
    discovery_policy, discovery_settings, lab_dns, connection_log
):
    domain = "nothing.discover.test"
    found = run(domain, discovery_policy, discovery_settings)
    assert_manual(found, domain, connection_log)
    assert found.elapsed < 0.5 and connection_log.made == []
    assert {s.name: s.outcome for s in found.steps} == {
        "autoconfig": "nothing", "well-known": "nothing", "srv": "nothing", "mx": "nothing",
        "guess": "nothing"}


@pytest.mark.parametrize("address", ["", "jane", "jane@", "@acme.test", "jane@localhost",
                                     "jane@1.2.3.4", "jane@[127.0.0.1]", "ja ne@acme.test",
                                     "jane\r\n@acme.test", "jane@acme..test", "jane@-acme.test"])
def test_discover_refuses_addresses_that_are_not_addresses_without_network(
    address, discovery_policy, discovery_settings, lab_dns, connection_log
):
    before = sum(lab_dns.zone.queries.values())
    found = discover(address, policy=discovery_policy, settings=discovery_settings)
    assert not found.found and found.domain == ""
    assert found.sentence.startswith("Type your full email address")
    assert connection_log.made == [] and sum(lab_dns.zone.queries.values()) == before
