"""Key rotation over every encrypted column."""

from __future__ import annotations

from sqlalchemy import select

from plugin.models import Mailbox
from plugin.models.oauth import OAuthProviderSettings, OAuthToken

ENCRYPTED_COLUMNS = ("in_password", "out_password")
#: every model with encrypted columns, and those columns
ENCRYPTED = ((Mailbox, ENCRYPTED_COLUMNS), (OAuthToken, ("refresh_token", "access_token")),
             (OAuthProviderSettings, ("client_secret",)))


def rotate_all(addon) -> tuple[int, int]:
    """Re-encrypt every secret under the first key in one transaction.

    Everything is decrypted before anything is written, so a key that cannot
    read one secret leaves every row as it was.
    """
    box = addon.secrets
    with addon.session() as s, s.begin():
        planned = []
        for model, columns in ENCRYPTED:
            for row in s.scalars(select(model)).all():
                for col in columns:
                    token = getattr(row, col)
                    if token:
                        planned.append((row, col, box.rotate(token)))
        for row, col, new in planned:
            setattr(row, col, new)
    return len(planned), len(planned)
