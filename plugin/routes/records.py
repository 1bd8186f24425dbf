"""Panels the host embeds on candidate and contact pages."""

from __future__ import annotations

from markupsafe import Markup


def panels_for(addon, ref) -> list[Markup]:  # noqa: ANN001
    """HTML panels for the record ``ref``.

    The email timeline and the "Share email" box join this list as the sharing
    and timeline work lands; until then a record page shows no add-on panel.
    """
    return []


RULES: list = []
