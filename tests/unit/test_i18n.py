"""The add-on's catalogues: every text the code marks is in the German catalogue with
the same placeholders; a host's own catalogue wins; no locale means English."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from flask import Flask

from plugin import i18n

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"ie_gettext": None, "ie_ngettext": (1, 2), "_": None, "N_": None}


def _marked() -> set[str]:
    """Texts marked in the code, found the way `make translations` finds them."""
    found = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
            str(ROOT / "plugin"),
            method_map=[("**.py", "python"), ("templates/**.html", "jinja2")],
            keywords=KEYWORDS,
            # as `make translations` (--ignore-dirs): templates/_partials counts too
            directory_filter=lambda d: not Path(d).name.startswith((".", "__pycache__"))):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_marked_text_is_translated_to_german_with_its_placeholders():
    marked = _marked()
    assert {"Share email", "No such %(record)s, or you may not see it.",
            "%(num)d recipient"} <= marked
    with (i18n.CATALOGUES / "de" / "LC_MESSAGES" / "integrated_email.po").open("rb") as fp:
        # fuzzy entries are not used (babel compiles them out): they count as missing
        german = {m.id if isinstance(m.id, str) else m.id[0]: m.string
                  for m in read_po(fp) if m.id and not m.fuzzy}
    missing = sorted(t for t in marked if not german.get(t)
                     or (isinstance(german[t], tuple) and not all(german[t])))
    assert missing == []
    for text in marked:
        translated = german[text] if isinstance(german[text], str) else german[text][-1]
        assert set(re.findall(r"%\(\w+\)[sd]", text)) == set(re.findall(
            r"%\(\w+\)[sd]", translated)), text


def test_the_locale_a_hosts_catalogue_and_the_fallback(tmp_path):
    own = tmp_path / "words" / "en" / "LC_MESSAGES"
    own.mkdir(parents=True)
    (own / "integrated_email.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "Share email"\nmsgstr "Share my mail"\n', encoding="utf-8")
    app = Flask("t")
    app.config.update(IE_LOCALE="en", IE_TRANSLATIONS_DIRS=[str(tmp_path / "words")])
    with app.app_context():
        assert i18n.gettext("Share email") == "Share my mail"  # the host's words win
        assert i18n.gettext("Find") == "Find"
        app.config["IE_LOCALE"] = "de_AT"  # no de_AT catalogue: German
        assert i18n.gettext("Find") == "Suchen"
        assert i18n.gettext("No such %(record)s, or you may not see it.",
                            record="Kandidat") == \
            "Kein solcher Eintrag (Kandidat), oder Sie dürfen ihn nicht sehen."
        app.config["IE_LOCALE"] = "xx"
        assert i18n.gettext("A text nobody translated") == "A text nobody translated"
