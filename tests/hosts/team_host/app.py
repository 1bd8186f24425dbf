"""The team host's app: its pages, sign-in, the plugin switch, and the add-on wired in."""

from __future__ import annotations

import secrets
import uuid

from flask import (Blueprint, Flask, abort, current_app, redirect, render_template, request,
                   session, url_for)
from flask_babel import Babel
from flask_login import LoginManager, current_user, login_required, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select

from plugin import IntegratedEmail
from plugin.host import RecordRef
from tests.hosts.team_host.adapter import TeamAdapter
from tests.hosts.team_host.models import (
    MODELS, Address, Applicant, Note, Role, Team, User, addresses, db,
    record_key, visible)

bp = Blueprint("team", __name__, template_folder="templates")


def create_team_app(config: dict) -> Flask:
    """The host app; the add-on shares its database (Flask-SQLAlchemy's engine URL)."""
    app = Flask("team_host", instance_path=config.pop("INSTANCE_PATH"))
    app.config.update(SECRET_KEY=secrets.token_hex(16), WTF_CSRF_TIME_LIMIT=None,
                      IE_URL_PREFIX="/team/mail", **config)
    db.init_app(app)
    CSRFProtect(app)
    Babel(app, locale_selector=lambda: session.get("lang", "en"))  # the add-on follows it
    LoginManager(app).user_loader(lambda uid: db.session.get(User, uid))
    app.login_manager.login_view = "team.login"
    app.register_blueprint(bp, url_prefix="/t")
    with app.app_context():
        db.create_all()
    IntegratedEmail(app, host=TeamAdapter())
    return app


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        user = db.session.scalar(select(User).where(User.email == request.form["email"]))
        if user is not None and user.password == request.form["password"]:
            login_user(user)
            return redirect(url_for("team.applicants"))
    return render_template("team/login.html")


@bp.post("/logout")
def logout():
    logout_user()
    return redirect(url_for("team.login"))


@bp.get("/")
@login_required
def applicants():
    rows = db.session.scalars(select(Applicant).where(visible(Applicant, current_user))
                              .order_by(Applicant.display_name)).all()
    return render_template("team/applicants.html", rows=rows,
                           mails=addresses("applicant", [str(r.id) for r in rows]))


def _record(kind: str, rid: str):
    model = MODELS[kind]
    key = record_key(kind, rid)
    row = key is not None and db.session.scalar(
        select(model).where(model.id == key, visible(model, current_user)))
    if not row:
        abort(404)
    ref = RecordRef(kind, str(row.id))
    notes = db.session.scalars(select(Note).where(Note.kind == kind, Note.record_id == ref.id)
                               .order_by(Note.id)).all()
    return render_template("team/record.html", row=row, ref=ref, kind=kind, notes=notes,
                           mails=addresses(kind, [ref.id]).get(ref.id, []))


@bp.get("/applicants/<rid>")
@login_required
def applicant(rid: str):
    return _record("applicant", rid)


@bp.get("/contacts/<rid>")
@login_required
def contact(rid: str):
    return _record("contact", rid)


@bp.get("/agencies/<rid>")
@login_required
def agency(rid: str):
    return _record("agency", rid)


@bp.post("/language")
def language():
    session["lang"] = request.form.get("lang") if request.form.get("lang") in ("en", "de") \
        else "en"
    return redirect(request.referrer or url_for("team.applicants"))


@bp.get("/compare")
@login_required
def compare():
    """Two or more applicants side by side, each with the add-on's panel."""
    refs = []
    for text in request.args.getlist("records")[:4]:
        kind, _, rid = text.partition(":")
        model = MODELS.get(kind)
        key = record_key(kind, rid) if model is not None else None
        if key is not None and db.session.scalar(
                select(model.id).where(model.id == key, visible(model, current_user))):
            refs.append(RecordRef(kind, rid))
    return render_template("team/compare.html", refs=refs)


@bp.route("/addons", methods=["GET", "POST"])
@login_required
def addons():
    if not current_user.role.runs_addons:
        abort(403)
    ie = current_app.extensions["integrated_email"]
    if request.method == "POST":
        ie.set_active(request.form.get("active") == "yes")
        return redirect(url_for("team.addons"))
    return render_template("team/addons.html", active=ie.is_active())


# -- seed -----------------------------------------------------------------------------

def seed(teams: tuple[str, ...] = ("North", "South")) -> dict:
    """Roles, two teams, an owner, two recruiters (one per team), and no records."""
    owner = Role(name="owner", runs_addons=True, reads_admin_mail=True, sees_all_teams=True)
    recruiter = Role(name="recruiter")
    north, south = (Team(name=n) for n in teams)
    people = {}
    for key, name, role, team in (("owner", "Olga Owner", owner, None),
                                  ("nina", "Nina North", recruiter, north),
                                  ("sam", "Sam South", recruiter, south)):
        u = User(id=f"usr_{key}_{uuid.uuid4().hex}{'x' * 40}", name=name,
                 email=f"{key}@team.test", password=f"{key}-pw", role=role,
                 teams=[team] if team else [])
        db.session.add(u)
        people[key] = u
    db.session.add_all([owner, recruiter, north, south])
    db.session.commit()
    return {"people": people, "north": north, "south": south}


def add_record(kind: str, name: str, emails: list[str], team: Team | None = None,
               given: str = "", rid: str | None = None):
    """A record of ``kind`` with its addresses (the first is the primary)."""
    model = MODELS[kind]
    row = model(display_name=name, given_name=given, team_id=team.id if team else None)
    if rid is not None:
        row.id = rid
    db.session.add(row)
    db.session.flush()
    db.session.add_all([Address(kind=kind, record_id=str(row.id), email=e, position=i)
                        for i, e in enumerate(emails)])
    db.session.commit()
    return RecordRef(kind, str(row.id))
