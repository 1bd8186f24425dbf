"""Texts marked for translation where Flask is not at hand (mail, domain packages).

``N_("...")`` returns the English text unchanged and marks it for ``make translations``;
it is translated where it is shown (``ie_gettext`` in templates, ``plugin.i18n.gettext``
in routes).  With values, ``N_("... %(name)s ...", name=v)`` returns the filled English
text that also remembers its msgid and values, so the viewer's language can be put in
before the values (a plain English string, e.g. one stored in the database, is looked up
as it is and stays English if it has values in it).
"""

from __future__ import annotations


class Sentence(str):
    """English text filled from ``values``, keeping its ``msgid`` for translation."""

    msgid: str
    values: dict[str, object]


def N_(text: str, **values: object) -> str:
    """``text`` (filled from ``values``) as English, marked for translation."""
    if not values:
        return text
    out = Sentence(text % values)
    out.msgid, out.values = text, values
    return out


def said(text: str) -> str:
    """``text`` as its own msgid: a value of another sentence that is translated too."""
    out = Sentence(text)
    out.msgid, out.values = text, {}
    return out
