"""``ie_blob``: raw message bytes as content-addressed rows (the database blob store)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Integer, LargeBinary, String, Table

from plugin.db import Base

BLOB = Table(
    "ie_blob", Base.metadata,
    Column("sha256", String(64), primary_key=True),  # hex digest of data
    Column("size", Integer, nullable=False),  # len(data), for reports without reading data
    Column("data", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),  # last written or reused
)
