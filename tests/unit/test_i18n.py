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


def test_sentences_marked_outside_flask_are_translated_where_shown():
    from plugin.words import N_, said

    app = Flask("t")
    app.config.update(IE_LOCALE="de")
    # N_ leaves the English text (what mail/ and the domain packages store and log) ...
    refused = N_("The server refused the connection. Check the host and port.")
    assert refused == "The server refused the connection. Check the host and port."
    # ... with values filled in, remembering its msgid so German goes in before them
    saved = N_("Mailbox '%(mailbox)s' saved.", mailbox="<b>%(x)s</b>")
    assert saved == "Mailbox '<b>%(x)s</b>' saved."
    paused = N_("Your mailbox '%(name)s' is paused. %(reason)s", name="Work",
                reason=said(refused))
    with app.app_context():
        assert i18n.gettext(refused) == \
            "Der Server hat die Verbindung abgelehnt. Prüfen Sie Server und Port."
        # a hostile value is a value: never a placeholder, never looked up
        assert i18n.gettext(saved) == "Postfach „<b>%(x)s</b>“ gespeichert."
        assert i18n.gettext(paused) == ("Ihr Postfach „Work“ ist pausiert. Der Server hat "
                                        "die Verbindung abgelehnt. Prüfen Sie Server und Port.")
        # a stored sentence with values in it (no msgid) stays as it was; empty stays empty
        assert i18n.gettext(str(saved)) == "Mailbox '<b>%(x)s</b>' saved."
        assert i18n.gettext("") == "" and i18n.gettext(None) == ""



def test_a_translated_sentence_with_bold_values_escapes_the_values():
    from jinja2 import DictLoader, Environment

    env = Environment(autoescape=True, loader=DictLoader({
        "m": "{% macro strong(value) %}<strong>{{ value }}</strong>{% endmacro %}",
        "page": '{% from "m" import strong %}'
                '{{ ie_gettext("Stop bulk email to %(address)s?")|e|format(address=strong(a)) }}'
    }))
    env.globals["ie_gettext"] = i18n.gettext
    app = Flask("t")
    app.config.update(IE_LOCALE="de")
    with app.app_context():
        out = env.get_template("page").render(a='<script>x</script>"')
    assert out == ("Keine Serien-E-Mails mehr an <strong>&lt;script&gt;x&lt;/script&gt;"
                   "&#34;</strong> senden?")
