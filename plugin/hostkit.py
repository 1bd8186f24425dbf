"""Helpers for the host's side: URLs without a request, and Alembic filters.

Everything here is public and documented in docs/HOSTING.md.

* :func:`url_for_anywhere` builds a URL inside a request, inside a bare app
  context (background jobs: the add-on writes notes and builds record links with
  no request), or with ``SERVER_NAME`` set.
* :func:`include_name` / :func:`include_object` keep the host's Alembic or
  Flask-Migrate autogenerate away from the add-on's ``ie_*`` tables, which the
  add-on migrates itself (``flask integrated-email migrate``)::

      Migrate(app, db, **hostkit.alembic_options())
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, has_request_context, url_for

#: Every table, index and sequence the add-on creates starts with this; hosts keep
#: their own names out of it.
TABLE_PREFIX = "ie_"


def url_for_anywhere(endpoint: str, **values: Any) -> str:
    """``url_for`` that also works with no request (inside an app context).

    In a request: the usual relative URL.  With ``SERVER_NAME`` set: Flask's own
    absolute URL.  Otherwise: a path under ``APPLICATION_ROOT``, built in a throw-away
    test request context (nothing of it is kept; the host's ``before_request``
    functions do not run).
    """
    if has_request_context():
        return url_for(endpoint, **values)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app.config.get("SERVER_NAME"):
        return url_for(endpoint, **values)
    with app.test_request_context("/"):
        return url_for(endpoint, **values)


def is_addon_name(name: str | None) -> bool:
    """Whether a table (or index, sequence) name belongs to the add-on."""
    return bool(name) and str(name).startswith(TABLE_PREFIX)


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic ``include_name`` hook: the host's reflection skips the add-on's tables."""
    if type_ == "table":
        return not is_addon_name(name)
    if type_ in ("index", "unique_constraint", "foreign_key_constraint", "column"):
        return not is_addon_name(parent_names.get("table_name"))
    return True


def include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                   compare_to: Any) -> bool:
    """Alembic ``include_object`` hook: never propose a change to an ``ie_*`` table."""
    if type_ == "table":
        return not is_addon_name(name)
    table = getattr(obj, "table", None)
    if table is not None and is_addon_name(getattr(table, "name", None)):
        return False
    return True


def alembic_options(include_object_hook: Callable[..., bool] | None = None,
                    include_name_hook: Callable[..., bool] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``Migrate(app, db, **...)`` or ``context.configure(...)``;
    a host's own hooks, when given, are asked too (both must agree to include)."""
    def obj_hook(obj: Any, name: str | None, type_: str, reflected: bool,
                 compare_to: Any) -> bool:
        return include_object(obj, name, type_, reflected, compare_to) and (
            include_object_hook is None
            or include_object_hook(obj, name, type_, reflected, compare_to))

    def name_hook(name: str | None, type_: str, parent_names: dict) -> bool:
        return include_name(name, type_, parent_names) and (
            include_name_hook is None or include_name_hook(name, type_, parent_names))

    return {"include_object": obj_hook, "include_name": name_hook}
