"""The add-on's words in the viewer's language.

The locale is the host's: Flask-Babel's ``get_locale()`` when the host registered
``Babel(app, locale_selector=...)`` (before or after the add-on), else ``IE_LOCALE``.
The add-on's catalogues are its own (domain ``integrated_email``, never mixed with
the host's): ``plugin/translations/<locale>/LC_MESSAGES/integrated_email.po``, read
and compiled in memory on first use, so no compiled ``.mo`` file is shipped or
built.  ``IE_TRANSLATIONS_DIRS`` lists a host's folders of the same layout whose
entries win (a host's own words for the add-on's texts, or another language).

Templates use ``ie_gettext("...")`` / ``ie_ngettext(one, many, n)`` (names that never
collide with a host's ``_``/``gettext``); routes ``from plugin.i18n import gettext as
_``; code that knows no Flask (mail, domain packages) marks its sentences with
``plugin.words.N_`` and they are translated where shown.  Texts are
``%(name)s``-formatted after translation.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import current_app, has_app_context, has_request_context

from plugin.words import Sentence

DOMAIN = "integrated_email"
CATALOGUES = Path(__file__).resolve().parent / "translations"


def _load(folder: str, locale: str) -> NullTranslations | None:
    path = Path(folder) / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not path.is_file():
        return None
    with path.open("rb") as fp:
        catalog = read_po(fp, locale=locale, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


@lru_cache(maxsize=64)
def _chain(folders: tuple[str, ...], names: tuple[str, ...]) -> NullTranslations:
    """The catalogues found, the first asked first (each read once per chain)."""
    found = [t for f in folders for n in names if (t := _load(f, n)) is not None]
    if not found:
        return NullTranslations()
    for earlier, later in zip(found, found[1:], strict=False):
        earlier.add_fallback(later)
    return found[0]


def current_locale() -> str:
    """The viewer's locale: the host's Flask-Babel choice, or IE_LOCALE ("en")."""
    if has_app_context():
        if has_request_context() and "babel" in current_app.extensions:
            from flask_babel import get_locale
            locale = get_locale()
            if locale is not None:
                return str(locale)
        return str(current_app.config.get("IE_LOCALE") or "en")
    return "en"


def translations(locale: str | None = None) -> NullTranslations:
    """The add-on's catalogue for ``locale`` (and its language), the host's folders first."""
    locale = locale or current_locale()
    folders = [str(CATALOGUES)]
    if has_app_context():
        folders = [str(f) for f in current_app.config.get("IE_TRANSLATIONS_DIRS") or ()] \
            + folders
    names = (locale,) + ((locale.split("_")[0],) if "_" in locale else ())
    return _chain(tuple(folders), names)


def gettext(text: str, **values: object) -> str:
    """``text`` in the viewer's language, ``%(name)s`` filled from ``values``.

    A :class:`plugin.words.Sentence` is translated from its msgid and refilled from its
    values (themselves translated when they are sentences); an empty text stays empty.
    """
    if not text:
        return text or ""
    if isinstance(text, Sentence) and not values:
        text, values = text.msgid, {k: gettext(v) if isinstance(v, Sentence) else v
                                    for k, v in text.values.items()}
    out = translations().gettext(text)
    return out % values if values else out


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    """The singular or plural text for ``n`` in the viewer's language (``%(num)d`` is n)."""
    out = translations().ngettext(singular, plural, n)
    return out % {"num": n, **values}
