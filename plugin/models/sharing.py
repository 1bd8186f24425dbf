"""Sharing state: records whose owner ticked \"Share email\" (the Sharing issue fills this in)."""

from __future__ import annotations
