"""The fetch dispatcher job: claims due mailboxes and syncs them."""

from __future__ import annotations

import logging

log = logging.getLogger("plugin.integrated_email.jobs")


def dispatch(addon) -> int:  # noqa: ANN001
    """One dispatcher tick; returns how many mailboxes were synced.

    Does nothing at all while the add-on is inactive.
    """
    if not addon.is_active():
        return 0
    return 0
