"""Email links on host pages: our compose, or a plain mailto:."""

from __future__ import annotations

from urllib.parse import quote


def email_link(addon, address: str, record=None) -> str:  # noqa: ANN001
    """Where an address shown by the host should point.

    Until the compose window exists (Sending issue) every link is ``mailto:``.
    """
    return "mailto:" + quote(address or "", safe="@.+-_")
