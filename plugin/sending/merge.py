"""Merge fields for bulk email, rendered in Jinja's immutable sandbox.

A template may use only the names in :data:`FIELDS`, optionally through a few
harmless filters (``{{ first_name|title }}``, ``{{ first_name|default("there") }}``).
:func:`check_template` reports everything else (attribute access such as
``{{ ''.__class__ }}``, unknown names such as ``{{ config }}``, calls) before
anything is sent; :func:`render` runs in the sandbox with ``StrictUndefined`` over a
fixed dict as a second line of defence, and renders nothing when it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from plugin.host import HostRecord
from plugin.words import N_, said

#: the parts a problem names (msgids of their own, translated with the sentence)
PARTS = (N_("subject"), N_("body"))

#: the merge fields, with what the composer shows for each
FIELDS: dict[str, str] = {
    "first_name": "First name",
    "last_name": "Last name",
    "full_name": "Full name",
    "email": "Email address",
    "recruiter_name": "Your name",
    "recruiter_signature": "Your signature",
}
#: filters a merge field may pass through
SAFE_FILTERS = frozenset({"upper", "lower", "title", "capitalize", "trim", "default", "e"})
_ALLOWED_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const,
                  nodes.Filter, nodes.If, nodes.Not, nodes.And, nodes.Or)

_env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                     keep_trailing_newline=True)
# Nothing reachable but the fields: no range(), dict(), lipsum(), cycler()...
_env.globals.clear()
_env.filters = {name: f for name, f in _env.filters.items() if name in SAFE_FILTERS}
_env.tests = {}


@dataclass(frozen=True)
class MergeProblem:
    """One thing wrong with a template, as a sentence for the composer."""

    where: str
    sentence: str


def _fields_list() -> str:
    return ", ".join("{{ %s }}" % name for name in FIELDS)


def check_template(source: str, where: str) -> list[MergeProblem]:
    """Problems of ``source`` (the subject or body), empty when it is safe to render."""
    try:
        tree = _env.parse(source or "")
    except TemplateSyntaxError as exc:
        return [MergeProblem(where, N_(
            "The %(where)s has a merge field that is not closed or not valid (line "
            "%(line)s). Write fields like {{ first_name }}.", where=said(where),
            line=exc.lineno))]
    problems: list[MergeProblem] = []
    seen: set[str] = set()

    def add(text: str) -> None:
        if text not in seen:
            seen.add(text)
            problems.append(MergeProblem(where, text))

    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.Name):
            if node.name not in FIELDS:
                add(N_("The %(where)s uses '%(name)s', which is not a merge field. Use only "
                       "%(fields)s.", where=said(where), name=node.name,
                       fields=_fields_list()))
        elif isinstance(node, nodes.Filter):
            if node.name not in SAFE_FILTERS:
                add(N_("The %(where)s uses the filter '%(name)s', which merge fields do not "
                       "allow.", where=said(where), name=node.name))
        elif isinstance(node, (nodes.Getattr, nodes.Getitem)):
            add(N_("The %(where)s tries to reach inside a value (with '.' or '[ ]'). Merge "
                   "fields are plain names: %(fields)s.", where=said(where),
                   fields=_fields_list()))
        elif isinstance(node, nodes.Call):
            add(N_("The %(where)s calls a function, which merge fields do not allow.",
                   where=said(where)))
        elif not isinstance(node, _ALLOWED_NODES):
            add(N_("The %(where)s uses template code that merge fields do not allow "
                   "(%(node)s). Use only %(fields)s.", where=said(where),
                   node=type(node).__name__, fields=_fields_list()))
    return problems


def compile_template(source: str) -> Template | None:
    """A compiled template to render many times; None when it does not compile."""
    try:
        return _env.from_string(source or "")
    except TemplateSyntaxError:
        return None


def render(source: str | Template | None, values: dict[str, str]) -> str:
    """``source`` with the merge fields filled in.

    Raises :class:`MergeError` (and renders nothing) for anything the sandbox refuses."""
    data = {name: str(values.get(name) or "") for name in FIELDS}
    try:
        if source is None:
            raise MergeError("TemplateSyntaxError")
        template = source if isinstance(source, Template) else _env.from_string(source or "")
        return template.render(data)
    except (SecurityError, UndefinedError, TemplateSyntaxError, TypeError) as exc:
        raise MergeError(type(exc).__name__) from None


class MergeError(ValueError):
    """A template the sandbox refused to render."""


def values_for(record: HostRecord, sender_name: str, signature: str) -> dict[str, str]:
    """The merge values of one host record (a ``HostRecord``) and the sender."""
    first = record.first_name or (record.name.split(" ")[0] if record.name else "")
    last = record.last_name or (" ".join(record.name.split(" ")[1:]) if record.name else "")
    return {"first_name": first, "last_name": last,
            "full_name": record.name or f"{first} {last}".strip(), "email": record.email or "",
            "recruiter_name": sender_name, "recruiter_signature": signature}
