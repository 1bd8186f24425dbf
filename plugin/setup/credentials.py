"""A stored mailbox's server settings, with its passwords decrypted: the one place
that does it, for sync, sending, filing to Sent, webmail actions and consolidation."""

from __future__ import annotations

from plugin.context import AddonContext
from plugin.crypto import SecretBox
from plugin.mail.account import ServerSettings
from plugin.models import Mailbox
from plugin.setup.oauth_signin import mailbox_access_token


def incoming_settings(mb: Mailbox, secrets: SecretBox, access_token: str | None = None
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


def outgoing_settings(mb: Mailbox, secrets: SecretBox,
                      access_token: str | None = None) -> ServerSettings:
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


def incoming_for(addon: AddonContext, mb: Mailbox) -> ServerSettings | None:
    """The incoming settings every connection of ``mb`` uses: its password, or for a
    mailbox signed in with Google or Microsoft a current access token (refreshed when
    it is about to expire; MailError when the owner must sign in again)."""
    if not mb.protocol or not mb.in_host:
        return None
    return incoming_settings(mb, addon.secrets, mailbox_access_token(addon, mb))


def outgoing_for(addon: AddonContext, mb: Mailbox) -> ServerSettings:
    """The outgoing settings of ``mb``, with its access token when it signs in with one."""
    return outgoing_settings(mb, addon.secrets, mailbox_access_token(addon, mb))
