"""Full-text search of stored mail: SQLite FTS5 or PostgreSQL tsvector (migration 0002).

The user's words become a prefix query, ANDed: "ali offer" finds "Alice" and "offers".
Only word characters reach the engine's query language, so no input can be a syntax
error or an operator.  The caller ANDs the result with its visibility filter.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, literal_column, select, text
from sqlalchemy.orm import Session

from plugin.models import Message
from plugin.models.search import FTS_TABLE, SEARCH_DOCUMENT_SQL

_WORD = re.compile(r"\w+", re.UNICODE)
_PG_UNSAFE = re.compile(r"[\s'\\:&|!()<>*]+")
MAX_WORDS = 8


def search_words(query: str) -> list[str]:
    """The words of ``query`` worth searching for (at most MAX_WORDS)."""
    return [w for w in (query or "").split() if _WORD.search(w)][:MAX_WORDS]


def fts5_query(query: str) -> str | None:
    """'alice@example.test offer' -> '"alice example test"* AND "offer"*'."""
    phrases = []
    for word in search_words(query):
        tokens = _WORD.findall(word)
        if tokens:
            phrases.append('"%s"*' % " ".join(tokens))
    return " AND ".join(phrases) or None


def pg_tsquery(query: str) -> str | None:
    """'alice@example.test offer' -> "'alice@example.test':* & 'offer':*"."""
    terms = []
    for word in search_words(query):
        clean = _PG_UNSAFE.sub(" ", word).strip()
        for part in clean.split():
            terms.append("'%s':*" % part)
    return " & ".join(terms) or None


def matches(session: Session, query: str) -> ColumnElement[bool] | None:
    """A WHERE clause on ``Message`` for ``query``; None when it has no words."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        tsq = pg_tsquery(query)
        if tsq is None:
            return None
        return text("%s @@ to_tsquery('simple'::regconfig, :ie_tsq)"
                    % SEARCH_DOCUMENT_SQL).bindparams(ie_tsq=tsq)
    fq = fts5_query(query)
    if fq is None:
        return None
    hits = select(literal_column("rowid")).select_from(text(FTS_TABLE)).where(
        text("%s MATCH :ie_fts" % FTS_TABLE).bindparams(ie_fts=fq))
    return Message.id.in_(hits.scalar_subquery())
