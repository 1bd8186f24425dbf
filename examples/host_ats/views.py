"""The host's pages: sign-in, candidates, contacts, settings and plugin management."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from examples.host_ats.access import may_view_candidate, visible_candidates
from examples.host_ats.csrf import check_host_csrf
from examples.host_ats.db import db
from examples.host_ats.models import Candidate, Contact, HostSetting, Note, User
from plugin.host import RecordRef

bp = Blueprint("host", __name__)
bp.before_request(check_host_csrf)

DEFAULT_COMPANY_NAME = "Acme Recruit"


def integrated_email() -> Any | None:
    """The add-on, when this host mounted it."""
    return current_app.extensions.get("integrated_email")


def addon_active() -> bool:
    addon = integrated_email()
    return addon is not None and addon.is_active()


def admin_required(view: Callable) -> Callable:
    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403, "Only administrators can open this page.")
        return view(*args, **kwargs)

    return wrapped


@bp.app_context_processor
def layout_context() -> dict[str, Any]:
    return {
        "company_name": _setting("company_name", DEFAULT_COMPANY_NAME),
        "record_ref": RecordRef,
    }


# -- sign-in -------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Sign in with email and password."""
    if current_user.is_authenticated:
        return redirect(url_for("host.candidates"))
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        password = request.form.get("password", "")
        user = db().scalar(select(User).where(func.lower(User.email) == email))
        if user is not None and user.active and user.check_password(password):
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("That email and password do not match. Check both and try again.", "error")
    return render_template("host/login.html", email=email)


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    """Sign out."""
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("host.login"))


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never bounce a user to another host after sign-in.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("host.candidates")


# -- records ---------------------------------------------------------------------


@bp.route("/")
@login_required
def index() -> Any:
    return redirect(url_for("host.candidates"))


@bp.route("/candidates")
@login_required
def candidates() -> str:
    """List the candidates the user may see."""
    query = (
        select(Candidate)
        .where(visible_candidates(current_user.id, current_user.is_admin))
        .options(selectinload(Candidate.owner))
        .order_by(Candidate.last_name, Candidate.first_name, Candidate.id)
    )
    rows = db().scalars(query).all()
    return render_template("host/candidates.html", candidates=rows, addon_active=addon_active())


@bp.route("/candidates/<int:candidate_id>")
@login_required
def candidate_detail(candidate_id: int) -> str:
    """Show one candidate with notes and the add-on's panels."""
    candidate = _load_candidate(candidate_id)
    ref = RecordRef("candidate", str(candidate.id))
    return render_template(
        "host/candidate.html",
        candidate=candidate,
        ref=ref,
        notes=_notes(ref),
        embedded_panels=_record_panels(ref),
    )


@bp.route("/candidates/<int:candidate_id>/notes", methods=["POST"])
@login_required
def add_candidate_note(candidate_id: int) -> Any:
    """Add a note to a candidate."""
    candidate = _load_candidate(candidate_id)
    _add_note("candidate", candidate.id)
    return redirect(url_for("host.candidate_detail", candidate_id=candidate.id) + "#notes")


@bp.route("/contacts")
@login_required
def contacts() -> str:
    """List client contacts."""
    rows = db().scalars(select(Contact).order_by(Contact.company, Contact.last_name)).all()
    return render_template("host/contacts.html", contacts=rows)


@bp.route("/contacts/<int:contact_id>")
@login_required
def contact_detail(contact_id: int) -> str:
    """Show one client contact with notes and the add-on's panels."""
    contact = _load_contact(contact_id)
    ref = RecordRef("contact", str(contact.id))
    return render_template(
        "host/contact.html",
        contact=contact,
        ref=ref,
        notes=_notes(ref),
        embedded_panels=_record_panels(ref),
    )


@bp.route("/contacts/<int:contact_id>/notes", methods=["POST"])
@login_required
def add_contact_note(contact_id: int) -> Any:
    """Add a note to a client contact."""
    contact = _load_contact(contact_id)
    _add_note("contact", contact.id)
    return redirect(url_for("host.contact_detail", contact_id=contact.id) + "#notes")


def _load_candidate(candidate_id: int) -> Candidate:
    candidate = db().get(Candidate, candidate_id)
    # A confidential candidate answers exactly like a missing one.
    if candidate is None or not may_view_candidate(
        candidate, current_user.id, current_user.is_admin
    ):
        abort(404, "There is no candidate with that number, or it is not shared with you.")
    return candidate


def _load_contact(contact_id: int) -> Contact:
    contact = db().get(Contact, contact_id)
    if contact is None:
        abort(404, "There is no contact with that number.")
    return contact


def _notes(ref: RecordRef) -> list[Note]:
    query = (
        select(Note)
        .where(Note.record_kind == ref.kind, Note.record_id == int(ref.id))
        .options(selectinload(Note.author))
        .order_by(Note.created_at.desc(), Note.id.desc())
    )
    return list(db().scalars(query))


def _add_note(kind: str, record_id: int) -> None:
    text = request.form.get("text", "").strip()
    if not text:
        flash("Write something before adding the note.", "error")
        return
    db().add(Note(record_kind=kind, record_id=record_id, author_id=current_user.id, text=text))
    db().commit()
    flash("Note added.", "success")


def _record_panels(ref: RecordRef) -> list[Markup]:
    """HTML the add-on embeds on a record page (its email timeline, for one)."""
    addon = integrated_email()
    if addon is None or not hasattr(addon, "record_panels") or not addon.is_active():
        return []
    return list(addon.record_panels(ref))


# -- settings and plugin management ---------------------------------------------------


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def settings() -> Any:
    """Show and (for administrators) change the host's own settings."""
    if request.method == "POST":
        if not current_user.is_admin:
            abort(403, "Only administrators can change these settings.")
        name = request.form.get("company_name", "").strip()
        if not name:
            flash("Enter your company name; it shows in the top bar.", "error")
        else:
            db().merge(HostSetting(key="company_name", value=name[:120]))
            db().commit()
            flash("Settings saved.", "success")
            return redirect(url_for("host.settings"))
    return render_template("host/settings.html")


@bp.route("/admin/plugins")
@admin_required
def plugins() -> str:
    """List installed add-ons with their state."""
    addon = integrated_email()
    installed = []
    if addon is not None:
        installed.append({"manifest": addon.manifest, "active": addon.is_active()})
    return render_template("host/plugins.html", installed=installed)


@bp.route("/admin/plugins/<plugin_id>/<any(activate, deactivate):action>", methods=["POST"])
@admin_required
def change_plugin(plugin_id: str, action: str) -> Any:
    """Activate or deactivate an add-on."""
    addon = integrated_email()
    if addon is None or addon.manifest.get("id") != plugin_id:
        abort(404, "No add-on with that id is installed.")
    addon.set_active(action == "activate")
    if action == "activate":
        flash("Integrated email is active. Find it under Settings > Integrated email.", "success")
    else:
        flash(
            "Integrated email is inactive. Its pages and menu entry are hidden; its data is kept.",
            "info",
        )
    return redirect(url_for("host.plugins"))


def _setting(key: str, default: str) -> str:
    value = db().scalar(select(HostSetting.value).where(HostSetting.key == key))
    return value or default


# -- errors ----------------------------------------------------------------------------


@bp.app_errorhandler(400)
@bp.app_errorhandler(403)
@bp.app_errorhandler(404)
def error_page(error: Any) -> tuple[str, int]:
    if request.headers.get("HX-Request"):
        return str(error.description), error.code
    return render_template("host/error.html", error=error), error.code
