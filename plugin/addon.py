"""The add-on object a host ATS creates: ``IntegratedEmail(app, host=...)``.

It follows the Flask extension pattern (``__init__(app=None)`` then
``init_app``), keeps everything it owns in its own namespace (``ie_`` tables,
``IE_*`` settings, the ``plugin.integrated_email`` logger, the
``integrated_email`` blueprint), and is stored in
``app.extensions["integrated_email"]``.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from flask import Flask, current_app, g, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select

from plugin import blobs
from plugin import config as ie_config
from plugin import i18n
from plugin import migrations
from plugin.cli import cli_group
from plugin.crypto import SecretBox, load_keys
from plugin.csrf import csrf_token
from plugin.current import EXTENSION_KEY
from plugin.db import engine_options, make_engine, make_session_factory, resolve_url
from plugin.host import HOST_API_VERSION, HostAdapter, RecordRef
from plugin.hosting import Host
from plugin.jobs import dispatcher, start_scheduler_if_embedded, stop_scheduler
from plugin.mail.interpreter import warn_if_unpatched
from plugin.models import AddonState
from plugin.reading.mailbox_view import webmail_enabled
from plugin.routes._http import csp_nonce
from plugin.routes.blueprint import make_blueprint
from plugin.routes.records import panels_for
from plugin.sending import email_links
from plugin.setup import alerts

def _wal(setting: Any, shared: bool) -> bool:
    """IE_SQLITE_WAL: None (default) means WAL on the add-on's own SQLite file only."""
    return (not shared) if setting is None else bool(setting)


MANIFEST_PATH = Path(__file__).resolve().parent.parent / "manifest.json"
log = logging.getLogger("plugin.integrated_email")


class IntegratedEmail:
    """The Integrated Email add-on, bound to one Flask app and one host adapter."""

    def __init__(self, app: Flask | None = None, host: HostAdapter | None = None):
        self.app: Flask | None = None
        self.host: Host | None = Host(host) if host is not None else None
        #: the in-process scheduler while one runs (see start_scheduler)
        self.scheduler: Any = None
        if app is not None:
            self.init_app(app, host=host)

    # ------------------------------------------------------------------ wiring
    def init_app(self, app: Flask, host: HostAdapter | None = None) -> None:
        """Bind the add-on to app: settings, database, blueprint, CLI, jobs."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "Integrated Email is already registered on this app; call init_app once.")
        host = host or self.host
        if host is None:
            raise TypeError("init_app needs host=: an object implementing plugin.host.HostAdapter")
        self.app, self.host = app, Host(host)
        ie_config.apply_defaults(app)
        warn_if_unpatched(logging.getLogger("plugin.integrated_email"))
        instance = app.instance_path
        if app.config["IE_SECRET_KEY_FILE"] is None and app.config["IE_GENERATE_SECRET_KEY"]:
            app.config["IE_SECRET_KEY_FILE"] = str(Path(instance) / "integrated_email.key")
        if app.config["IE_BLOB_DIR"] is None:
            app.config["IE_BLOB_DIR"] = str(Path(instance) / "ie_blobs")

        self.database_url, self.shares_host_database = resolve_url(app, instance)
        self.engine = make_engine(self.database_url, engine_options(app, self.shares_host_database),
                                  wal=_wal(app.config["IE_SQLITE_WAL"], self.shares_host_database))
        blobs.register_engine(self.database_url, self.engine)  # the database store's engine
        app.config["IE_BLOB_DATABASE_URL"] = self.database_url
        if not app.config.get("IE_BLOB_STORE"):  # default by database kind
            app.config["IE_BLOB_STORE"] = (
                "database" if self.database_url.startswith("postgresql") else "directory")
        self.session = make_session_factory(self.engine)
        app.teardown_appcontext(lambda _exc: self.session.remove())

        app.register_blueprint(make_blueprint(self), url_prefix=app.config["IE_URL_PREFIX"])
        app.jinja_env.globals.setdefault("integrated_email", self)
        app.jinja_env.globals.setdefault("csrf_token", csrf_token)
        app.jinja_env.globals.setdefault("ie_csrf_token", csrf_token)
        app.jinja_env.globals.setdefault("ie_csp_nonce", csp_nonce)
        app.jinja_env.globals.setdefault("ie_gettext", i18n.gettext)
        app.jinja_env.globals.setdefault("ie_ngettext", i18n.ngettext)

        app.cli.add_command(cli_group)
        app.extensions[EXTENSION_KEY] = self

        if str(app.config["IE_SCHEDULER"]).lower() == "embedded":
            # On the first request, not here: app objects that never serve (the CLI, the
            # worker, scripts, test apps) run no scheduler of their own.
            app.before_request(self._start_scheduler_once)

    # -------------------------------------------------------------- scheduler
    def start_scheduler(self) -> Any:
        """Start this process's in-process scheduler (fetch and send jobs) once; returns it.

        IE_SCHEDULER=embedded calls this on the app's first request; with "off", a host
        may call it itself (a single-process deployment) or run ``flask integrated-email
        worker`` instead."""
        return start_scheduler_if_embedded(self, force=True)

    def stop_scheduler(self, wait: bool = True) -> None:
        """Stop the in-process scheduler (no-op when none runs); jobs running finish first
        when ``wait``."""
        stop_scheduler(self, wait=wait)

    def _start_scheduler_once(self) -> None:
        if self.scheduler is None:
            start_scheduler_if_embedded(self)

    # ---------------------------------------------------------------- secrets
    @cached_property
    def secrets(self) -> SecretBox:
        """The MultiFernet box for stored passwords and tokens (keys from IE_SECRET_KEYS)."""
        return SecretBox(load_keys(self.app.config))

    # ------------------------------------------------------------ migrations
    def migrate(self, revision: str = "head") -> None:
        """Bring the add-on's tables up to revision (its own Alembic version table)."""
        migrations.upgrade(self.engine, revision)

    def downgrade(self, revision: str = "base") -> None:
        """Take the add-on's tables down to revision (``base`` drops them all)."""
        migrations.downgrade(self.engine, revision)

    # ------------------------------------------------------------- lifecycle
    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The add-on descriptor (manifest.json) the host's plugin manager reads."""
        return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))

    @property
    def host_api_version(self) -> str:
        """The version of the host contract this add-on implements."""
        return HOST_API_VERSION

    def is_active(self) -> bool:
        """Whether the host's plugin manager has activated the add-on."""
        with self.engine.connect() as conn:
            active = conn.execute(
                select(AddonState.active).where(AddonState.id == 1)).scalar_one_or_none()
        return bool(active)

    def set_active(self, active: bool) -> None:
        """Activate or deactivate; deactivating keeps every table and row."""
        with self.session() as s, s.begin():
            state = s.get(AddonState, 1) or AddonState(id=1)
            state.active = bool(active)
            state.changed_at = datetime.now(timezone.utc)
            s.add(state)
        log.info("integrated email %s", "activated" if active else "deactivated")

    # ----------------------------------------------------- host integration
    def menu_entries(self) -> list[dict[str, str]]:
        """Entries for the host's Settings menu (none while inactive)."""
        if not self.is_active():
            return []
        _ = i18n.gettext
        entries = [{"label": _("Integrated email"), "url": url_for("integrated_email.home")}]
        if webmail_enabled(self.session()):
            entries.append({"label": _("Mail"), "url": url_for("integrated_email.webmail")})
        entries.append({"label": _("New email"), "url": url_for("integrated_email.compose")})
        entries.append({"label": _("Sent from the ATS"),
                        "url": url_for("integrated_email.outbox")})
        return entries

    def header_alert(self, banner: bool = False) -> Markup:
        """HTML for the host's header: the signed-in user's stopped mailbox, once per page.

        The add-on's own pages call it with ``banner=True``; it draws nothing there when
        the host's header already did, or on "My mailboxes" (its panels say it).
        """
        if not self.is_active() or g.get("ie_alert_shown"):
            return Markup("")
        user = self.host.current_user()
        if user is None or request.endpoint == "integrated_email.mailboxes":
            return Markup("")
        alert = alerts.owner_alert(self.session(), str(user.id))
        g.ie_alert_shown = True
        return Markup(render_template("integrated_email/_partials/mailbox_alert.html",
                                      alert=alert))

    def record_panels(self, ref: RecordRef) -> list[Markup]:
        """HTML panels the host embeds on a candidate/contact page."""
        if not self.is_active():
            return []
        return panels_for(self, ref)

    def email_link(self, address: str, record: RecordRef | None = None) -> str:
        """URL for an email address the host shows: our compose, or mailto:."""
        return email_links.email_link(self, address, record)

    def wake_fetching(self) -> None:
        """Run this process's fetch dispatcher now rather than at its next tick."""
        dispatcher.wake(self)

    def flashed_messages(self) -> list[tuple[str, str]]:
        """(category, message) flashed for this page, for the add-on's pages to show: none
        when the host layout has already taken them this request (it shows them) or
        IE_SHOW_FLASHES is False, so a host layout need not show flashes at all."""
        from flask import get_flashed_messages
        from flask.globals import request_ctx
        if not current_app.config.get("IE_SHOW_FLASHES", True) \
                or getattr(request_ctx, "flashes", None) is not None:
            return []
        return list(get_flashed_messages(with_categories=True))

    def htmx_script(self) -> Markup:
        """The add-on's htmx loader, once per page (a second panel on the page, or a host
        that loads htmx itself with IE_HOST_LOADS_HTMX, gets nothing). The loader
        (static/ie-htmx.js) loads htmx only when the page has none yet (window.htmx)."""
        if current_app.config.get("IE_HOST_LOADS_HTMX") or g.get("ie_htmx_loaded"):
            return Markup("")
        g.ie_htmx_loaded = True
        loader = url_for("integrated_email.static", filename="ie-htmx.js")
        return Markup('<script src="%s" data-htmx="%s"></script>') % (loader, self.htmx_url())

    def htmx_url(self) -> str:
        """Where pages load htmx from: IE_HTMX_URL, or the copy the add-on serves."""
        return current_app.config["IE_HTMX_URL"] or url_for(
            "integrated_email.static", filename="vendor/htmx.min.js")

