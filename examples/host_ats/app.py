"""The application factory of the reference host."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask_login import LoginManager

from examples.host_ats.csrf import host_csrf_token
from examples.host_ats.db import HostDatabase
from examples.host_ats.models import User

DEFAULT_INSTANCE_PATH = Path(__file__).resolve().parent / "instance"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the host app; ``config`` overrides any default below.

    Keys: ``SQLALCHEMY_DATABASE_URI`` (default: a SQLite file in the instance
    folder), ``SECRET_KEY`` (default: generated once and kept in
    ``instance/secret_key``), ``INTEGRATED_EMAIL`` (default True: mount the
    add-on), ``INTEGRATED_EMAIL_MIGRATE`` (default True: bring the add-on's
    tables up to date on start, as the host does with its own),
    ``INSTANCE_PATH`` (default ``examples/host_ats/instance``).
    """
    config = dict(config or {})
    instance_path = Path(config.pop("INSTANCE_PATH", None) or DEFAULT_INSTANCE_PATH)
    instance_path.mkdir(parents=True, exist_ok=True)

    app = Flask(__name__, instance_path=str(instance_path))
    app.config.update(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance_path / 'host_ats.sqlite'}",
        INTEGRATED_EMAIL=True,
        INTEGRATED_EMAIL_MIGRATE=True,
        IE_SQLITE_WAL=True,  # the host owns this file and wants readers beside writers
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _load_or_create_secret_key(instance_path / "secret_key")

    database = HostDatabase.connect(app.config["SQLALCHEMY_DATABASE_URI"])
    database.create_all()
    database.init_app(app)

    _init_login(app, database)
    app.jinja_env.globals["host_csrf_token"] = host_csrf_token

    from examples.host_ats.views import bp

    app.register_blueprint(bp)
    _register_cli(app, database)

    if app.config["INTEGRATED_EMAIL"]:
        from examples.host_ats.adapter import ReferenceHostAdapter
        from plugin import IntegratedEmail

        integrated_email = IntegratedEmail()
        integrated_email.init_app(app, host=ReferenceHostAdapter(database.sessions))
        if app.config["INTEGRATED_EMAIL_MIGRATE"]:
            integrated_email.migrate()
        app.jinja_env.globals.setdefault("integrated_email", integrated_email)

    return app


def _init_login(app: Flask, database: HostDatabase) -> None:
    login = LoginManager(app)
    login.login_view = "host.login"
    login.login_message = "Please sign in to continue."
    login.login_message_category = "info"

    @login.user_loader
    def load_user(user_id: str) -> User | None:
        if not user_id.isdigit():
            return None
        user = database.session.get(User, int(user_id))
        return user if user is not None and user.active else None


def _register_cli(app: Flask, database: HostDatabase) -> None:
    @app.cli.command("seed")
    def seed_command() -> None:
        """Fill the host with demo users, candidates and contacts."""
        from examples.host_ats.seed import DEMO_USERS, seed_demo

        with database.sessions() as session:
            created = seed_demo(session)
        if not created:
            click.echo("Demo data is already there; nothing changed.")
            return
        click.echo("Demo data created. Sign in with:")
        for email, password, role, _name in DEMO_USERS:
            click.echo(f"  {email} / {password}  ({role})")


def _load_or_create_secret_key(path: Path) -> str:
    """Keep one random key per instance so sessions survive restarts."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
