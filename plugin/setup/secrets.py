"""Key rotation over every encrypted column."""

from __future__ import annotations

from sqlalchemy import select

from plugin.context import AddonContext
from plugin.models import Mailbox

ENCRYPTED_COLUMNS = ("in_password", "out_password")


def rotate_all(addon: AddonContext) -> tuple[int, int]:
    """Re-encrypt every secret under the first key in one transaction.

    Everything is decrypted before anything is written, so a key that cannot
    read one secret leaves every row as it was.
    """
    box = addon.secrets
    with addon.session() as s, s.begin():
        boxes = s.scalars(select(Mailbox)).all()
        planned = []
        for mb in boxes:
            for col in ENCRYPTED_COLUMNS:
                token = getattr(mb, col)
                if token:
                    planned.append((mb, col, box.rotate(token)))
        for mb, col, new in planned:
            setattr(mb, col, new)
    return len(planned), len(planned)
