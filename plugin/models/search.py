"""Webmail indexes and search (the Webmail issue fills this in)."""

from __future__ import annotations
