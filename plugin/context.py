"""What a use case may use of the add-on: a narrow, typed view of it.

Domain packages never import the add-on object (``plugin.addon``); functions that
need several of its parts take an ``addon: AddonContext`` and use only these. The
add-on satisfies the protocol; tests may pass anything that does.
"""

from __future__ import annotations

from typing import Protocol

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import scoped_session

from plugin.crypto import SecretBox
from plugin.host import HostAdapter


class AddonContext(Protocol):
    """The parts of the add-on a use case may rely on."""

    #: the Flask app (its ``config`` holds every IE_* setting)
    app: Flask
    #: the host ATS's adapter
    host: HostAdapter
    #: the add-on's own engine and the request-scoped session factory
    engine: Engine
    session: scoped_session

    @property
    def secrets(self) -> SecretBox:
        """Encrypts and decrypts stored passwords and tokens."""
        ...

    def is_active(self) -> bool:
        """Whether the host's plugin manager has activated the add-on."""
        ...
