"""The add-on of the current Flask app: a leaf module every layer may import.

Routes and the CLI reach the add-on object through :func:`get_addon`; nothing here
imports the add-on's own modules, so importing it can never close a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

if TYPE_CHECKING:
    from plugin.addon import IntegratedEmail

#: The key of ``app.extensions`` the add-on registers itself under.
EXTENSION_KEY = "integrated_email"


def get_addon() -> IntegratedEmail:
    """The add-on of the current app."""
    return current_app.extensions[EXTENSION_KEY]
