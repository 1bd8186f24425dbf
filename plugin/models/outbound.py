"""Outgoing mail: the outbox and bulk-send jobs (the Sending issue fills this in)."""

from __future__ import annotations
