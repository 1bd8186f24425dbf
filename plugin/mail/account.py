"""Server settings shared by the IMAP, POP3 and SMTP clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Security = Literal["ssl", "starttls", "none"]
SECURITIES: tuple[str, ...] = ("ssl", "starttls", "none")


@dataclass(frozen=True)
class ServerSettings:
    """Where and how to sign in to one mail server."""

    host: str
    port: int
    #: "ssl" = implicit TLS, "starttls" = upgrade required, "none" = plaintext (admin's choice)
    security: Security
    login: str
    #: kept out of repr so that settings can be logged or shown in tracebacks safely
    password: str = field(repr=False)
    #: an OAuth2 access token: when set, sign in with XOAUTH2/OAUTHBEARER instead of the
    #: password (``login`` is then the account's address); never in repr or logs
    access_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.security not in SECURITIES:
            raise ValueError(f"security must be one of {', '.join(SECURITIES)}")

    @property
    def uses_oauth(self) -> bool:
        """True when this sign-in uses an OAuth2 access token rather than a password."""
        return self.access_token is not None
