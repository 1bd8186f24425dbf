"""The SMTP client's fast envelope quoting gives exactly smtplib's ``quoteaddr``."""
from __future__ import annotations

import smtplib

import pytest

from plugin.mail.smtp import quote_address


@pytest.mark.parametrize("addr", [
    "user@example.org", "first.last+tag@sub.example.co.uk", "o'neil@example.org",
    "a_b-c=d@ex-ample.test", "weird..dots@example.org", ".lead@example.org",
    "trail.@example.org", "Name <user@example.org>", "user@[127.0.0.1]", "",
    "\"quoted local\"@example.org", "no-at-sign", "user@localhost", "üser@example.org",
    "user@exämple.org", "<user@example.org>", "user@example.org,other@example.org",
])
def test_quote_address_is_smtplib_quoteaddr(addr):
    assert quote_address(addr) == smtplib.quoteaddr(addr)
