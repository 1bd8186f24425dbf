"""A stored mailbox's server settings, with its passwords decrypted: the one place
that does it, for sync, sending, filing to Sent, webmail actions and consolidation."""

from __future__ import annotations

from plugin.mail.account import ServerSettings
from plugin.models import Mailbox


def incoming_settings(mb: Mailbox, secrets, access_token: str | None = None
                      ) -> ServerSettings | None:
    """IMAP/POP3 settings, or None for an outgoing-only mailbox.

    With ``access_token`` (from ``oauth_tokens.access_token``) the sign-in is XOAUTH2 /
    OAUTHBEARER as the mailbox's address, and no password is decrypted.
    """
    if not mb.protocol or not mb.in_host:
        return None
    if access_token is not None:
        return ServerSettings(mb.in_host, int(mb.in_port or 0), mb.in_security or "ssl",
                              mb.in_login or mb.email, "", access_token=access_token)
    password = secrets.decrypt(mb.in_password) if mb.in_password else ""
    return ServerSettings(mb.in_host, int(mb.in_port or 0), mb.in_security or "ssl",
                          mb.in_login or mb.email, password)


def outgoing_settings(mb: Mailbox, secrets, access_token: str | None = None) -> ServerSettings:
    """SMTP settings (the incoming login and password when they are shared); with
    ``access_token``, AUTH XOAUTH2 as the mailbox's address."""
    if access_token is not None:
        return ServerSettings(mb.out_host, int(mb.out_port), mb.out_security,
                              mb.in_login or mb.email, "", access_token=access_token)
    if mb.same_credentials:
        login, token = mb.in_login or "", mb.in_password
    else:
        login, token = mb.out_login or "", mb.out_password
    password = secrets.decrypt(token) if token else ""
    return ServerSettings(mb.out_host, int(mb.out_port), mb.out_security, login, password)
