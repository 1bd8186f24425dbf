"""Template filters the add-on's pages and panels share (registered on the host's app,
because record panels render inside the host's own pages)."""

from __future__ import annotations

import re

from plugin.fetching.status import action_error_sentence
from plugin.setup.oauth_providers import PROVIDERS

_MERGE_FIELD = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_MARKS = re.compile(r"(\*\*|__|\*|_|`|~~)(?=\S)(.+?)(?<=\S)\1")
_MD_LINE_START = re.compile(r"^\s{0,3}(#{1,6}\s+|>\s?|[-*+]\s+)", re.MULTILINE)


def filesize(size: int | None) -> str:
    """A byte count as people read it: 512 bytes, 4.2 KB, 1.3 MB."""
    n = int(size or 0)
    if n < 1024:
        return f"{n} byte{'s' if n != 1 else ''}"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def merge_placeholders(text: str | None) -> str:
    """A template's merge fields as readable placeholders: {{ first_name }} -> [first name]."""
    return _MERGE_FIELD.sub(lambda m: "[" + m.group(1).replace("_", " ") + "]", text or "")


def plain_markdown(text: str | None) -> str:
    """The words of a Markdown preview without its marks (**bold** -> bold)."""
    text = _MD_LINK.sub(r"\1", text or "")
    text = _MD_LINE_START.sub("", text)
    previous = None
    while previous != text:  # nested marks: ***both*** or **_this_**
        previous, text = text, _MD_MARKS.sub(r"\2", text)
    return text


def provider_name(key: str | None) -> str:
    """"google" -> "Google": the name a sign-in provider is shown by."""
    return PROVIDERS[key].name if key in PROVIDERS else ""


def action_error(mailbox: object) -> str:
    """A mailbox's stored action error, ready for ``ie_gettext`` (its parts translated)."""
    return action_error_sentence(getattr(mailbox, "action_error_kind", None),
                                 getattr(mailbox, "action_error", None))


FILTERS = {"ie_filesize": filesize, "ie_provider_name": provider_name,
           "ie_merge_placeholders": merge_placeholders, "ie_plain_markdown": plain_markdown,
           "ie_action_error": action_error}
