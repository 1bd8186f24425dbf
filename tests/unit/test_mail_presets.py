"""Provider presets and default ports."""

from __future__ import annotations

import pytest

from plugin.mail.presets import PRESETS, Endpoint, default_port, min_poll_minutes, preset_for


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("alice@gmail.com", "Gmail"),
        ("Alice@GoogleMail.COM", "Gmail"),
        ("bob@outlook.com", "Microsoft 365 / Outlook.com"),
        ("bob@hotmail.com", "Microsoft 365 / Outlook.com"),
        ("bob@live.com", "Microsoft 365 / Outlook.com"),
        ("carol@zoho.com", "Zoho Mail"),
        ("dan@yahoo.com", "Yahoo Mail"),
        ("erin@icloud.com", "iCloud Mail"),
        ("erin@me.com", "iCloud Mail"),
        ("fay@fastmail.com", "Fastmail"),
    ],
)
def test_preset_is_found_by_email_domain(email, name):
    preset = preset_for(email)
    assert preset is not None and preset.name == name


@pytest.mark.parametrize("email", ["someone@example.com", "no-at-sign", "", "x@gmail.com.evil"])
def test_unknown_or_malformed_address_has_no_preset(email):
    assert preset_for(email) is None


def test_gmail_preset_matches_googles_published_settings():
    gmail = preset_for("a@gmail.com")
    assert gmail.imap == Endpoint("imap.gmail.com", 993, "ssl")
    assert gmail.pop3 == Endpoint("pop.gmail.com", 995, "ssl")
    assert Endpoint("smtp.gmail.com", 465, "ssl") in gmail.smtp
    assert Endpoint("smtp.gmail.com", 587, "starttls") in gmail.smtp
    assert gmail.min_poll_minutes == 10
    notes = " ".join(gmail.notes)
    assert "app password" in notes and "recent:" in notes and "Leave messages" in notes


def test_microsoft_preset_uses_office365_with_starttls_submission():
    ms = preset_for("a@outlook.com")
    assert ms.imap == Endpoint("outlook.office365.com", 993, "ssl")
    assert ms.pop3 == Endpoint("outlook.office365.com", 995, "ssl")
    assert ms.smtp[0] == Endpoint("smtp.office365.com", 587, "starttls")


def test_icloud_has_no_pop_and_submits_with_starttls():
    icloud = preset_for("a@icloud.com")
    assert icloud.pop3 is None
    assert icloud.imap == Endpoint("imap.mail.me.com", 993, "ssl")
    assert icloud.smtp[0] == Endpoint("smtp.mail.me.com", 587, "starttls")


def test_every_preset_is_complete_and_secure():
    domains: set[str] = set()
    for preset in PRESETS:
        assert preset.imap is not None and preset.smtp
        for endpoint in (preset.imap, preset.pop3, *preset.smtp):
            if endpoint is not None:
                assert endpoint.security in ("ssl", "starttls")
        assert not domains & set(preset.domains), "a domain belongs to one preset"
        domains |= set(preset.domains)
        assert preset.notes


@pytest.mark.parametrize(
    ("protocol", "security", "port"),
    [
        ("imap", "ssl", 993),
        ("imap", "starttls", 143),
        ("imap", "none", 143),
        ("pop3", "ssl", 995),
        ("pop3", "starttls", 110),
        ("pop3", "none", 110),
        ("smtp", "ssl", 465),
        ("smtp", "starttls", 587),
        ("smtp", "none", 25),
    ],
)
def test_default_ports(protocol, security, port):
    assert default_port(protocol, security) == port


def test_default_port_rejects_unknown_combinations():
    with pytest.raises(ValueError):
        default_port("nntp", "ssl")


def test_gmail_hosts_poll_at_most_every_ten_minutes():
    assert min_poll_minutes("imap.gmail.com") == 10
    assert min_poll_minutes("POP.GMAIL.COM.") == 10
    assert 0 < min_poll_minutes("mail.example.com") < 10
