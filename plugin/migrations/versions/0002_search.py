"""full-text search of stored mail (hand-written: autogenerate cannot express it)

SQLite: an FTS5 table with external content (``content='ie_message'``: the text is
not stored twice) and triggers after insert/update/delete on ``ie_message``, so every
writer keeps it in step without calling us.  Tokenizer ``unicode61 remove_diacritics
2``; searched with prefix queries.  ``body_html`` is indexed raw (a trigger cannot strip
tags), which costs a little noise (tag names) and no missed words.

PostgreSQL: a GIN index on the ``to_tsvector('simple', ...)`` expression of
``plugin.models.search.SEARCH_DOCUMENT_SQL``; PostgreSQL maintains it itself.  The
'simple' configuration (no stemming) because mail mixes languages, names and
addresses; each text is capped at 100,000 characters so tsvector's 1 MB limit can
never fail an insert.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLS = ("subject", "from_name", "from_addr", "to_addrs", "cc_addrs", "body_text", "body_html")
# Written out (not imported from the models) so this migration never changes later.
_PG_DOCUMENT = (
    "to_tsvector('simple'::regconfig, "
    "coalesce(subject, '') || ' ' || coalesce(from_name, '') || ' ' || "
    "coalesce(from_addr, '') || ' ' || coalesce(to_addrs, '') || ' ' || "
    "coalesce(cc_addrs, '') || ' ' || left(coalesce(body_text, ''), 100000) || ' ' || "
    "left(regexp_replace(coalesce(body_html, ''), '<[^>]*>', ' ', 'g'), 100000))")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        cols = ", ".join(_COLS)
        new = ", ".join("new." + c for c in _COLS)
        old = ", ".join("old." + c for c in _COLS)
        op.execute(f"CREATE VIRTUAL TABLE ie_message_fts USING fts5({cols}, "
                   "content='ie_message', content_rowid='id', "
                   "tokenize='unicode61 remove_diacritics 2')")
        op.execute(f"CREATE TRIGGER ie_message_fts_ai AFTER INSERT ON ie_message BEGIN "
                   f"INSERT INTO ie_message_fts(rowid, {cols}) VALUES (new.id, {new}); END")
        op.execute(f"CREATE TRIGGER ie_message_fts_ad AFTER DELETE ON ie_message BEGIN "
                   f"INSERT INTO ie_message_fts(ie_message_fts, rowid, {cols}) "
                   f"VALUES ('delete', old.id, {old}); END")
        op.execute(f"CREATE TRIGGER ie_message_fts_au AFTER UPDATE OF {cols} ON ie_message "
                   f"BEGIN INSERT INTO ie_message_fts(ie_message_fts, rowid, {cols}) "
                   f"VALUES ('delete', old.id, {old}); "
                   f"INSERT INTO ie_message_fts(rowid, {cols}) VALUES (new.id, {new}); END")
        op.execute("INSERT INTO ie_message_fts(ie_message_fts) VALUES ('rebuild')")
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX ix_ie_message_search ON ie_message USING gin ({_PG_DOCUMENT})")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("ie_message_fts_ai", "ie_message_fts_ad", "ie_message_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS ie_message_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_ie_message_search")
