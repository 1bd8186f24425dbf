"""Saved templates and the mailbox signature: their pages, and the pre-filling that
compose, reply and bulk ask for (kept here so those handlers change by a line)."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from plugin.current import get_addon
from plugin.host import HostRecord
from plugin.i18n import gettext as _
from plugin.models import Mailbox
from plugin.models.deliverability import MailTemplate
from plugin.sending import saved_templates
from plugin.setup import mailbox as setup_service

T = "integrated_email/"


def _form() -> dict:
    f = request.form
    return {"name": f.get("name", ""), "subject": f.get("subject", ""),
            "body": f.get("body", ""), "shared": f.get("shared") == "on"}


def template_list() -> ResponseReturnValue:
    """The templates the user may use; a form for a new one (POST saves it)."""
    s = get_addon().session()
    values, errors = {"name": "", "subject": "", "body": "", "shared": False}, {}
    if request.method == "POST":
        values = _form()
        saved = saved_templates.save(s, g.ie_user.id, None, **values)
        if saved.template is not None:
            flash(_("Template “%(name)s” saved.", name=saved.template.name))
            return redirect(url_for("integrated_email.templates"))
        errors = saved.errors
    return render_template(T + "templates.html", templates=saved_templates.usable(
        s, g.ie_user.id), values=values, errors=errors, editing=None), 422 if errors else 200


def _own(template_id: int) -> MailTemplate:
    tpl = get_addon().session().get(MailTemplate, template_id)
    if tpl is None or tpl.user_id != g.ie_user.id:
        abort(404, _("No such template of yours (shared templates are changed by their author)."))
    return tpl


def template_edit(template_id: int) -> ResponseReturnValue:
    """Change one of the user's own templates."""
    tpl = _own(template_id)
    s = get_addon().session()
    values = {"name": tpl.name, "subject": tpl.subject, "body": tpl.body, "shared": tpl.shared}
    errors: dict[str, str] = {}
    if request.method == "POST":
        values = _form()
        saved = saved_templates.save(s, g.ie_user.id, tpl, **values)
        if saved.template is not None:
            flash(_("Template “%(name)s” saved.", name=tpl.name))
            return redirect(url_for("integrated_email.templates"))
        errors = saved.errors
        s.rollback()
    return render_template(T + "templates.html", templates=saved_templates.usable(
        s, g.ie_user.id), values=values, errors=errors, editing=tpl), 422 if errors else 200


def template_delete(template_id: int) -> ResponseReturnValue:
    """Delete one of the user's own templates."""
    tpl = _own(template_id)
    s = get_addon().session()
    s.delete(tpl)
    s.commit()
    flash(_("Template deleted."))
    return redirect(url_for("integrated_email.templates"))


def signature() -> ResponseReturnValue:
    """The active mailbox's signature (GET shows it, POST saves it)."""
    s = get_addon().session()
    mb = setup_service.active_mailbox(s, g.ie_user.id)
    if mb is None:
        abort(404, _("Connect a mailbox first; the signature belongs to it."))
    text, error = saved_templates.signature_of(s, mb.id), None
    if request.method == "POST":
        text = request.form.get("signature", "")
        error = saved_templates.save_signature(s, mb.id, text)
        if error is None:
            flash(_("Signature saved."))
            return redirect(_back_to(request.form.get("next", "")))
    return render_template(T + "signature.html", text=text, error=error, mailbox=mb,
                           next=request.values.get("next", "")), 422 if error else 200


def _back_to(target: str) -> str:
    """``target`` when it is a page of the add-on on this site (the composer the user
    came from); the signature page otherwise, so the link cannot send anyone away."""
    home = url_for("integrated_email.home")
    if target.startswith(home) and "//" not in target and "\\" not in target and \
            not any(ord(c) < 33 for c in target):
        return target
    return url_for("integrated_email.signature")


# ------------------------------------------------------------------ pre-filling forms


def prefill_compose(values: dict, mb: Mailbox, records: list[HostRecord],
                    reply: bool = False) -> dict:
    """The compose form's values with the picked template (``?template=``) and the
    mailbox signature: under new mail, above the quote of a reply."""
    s = get_addon().session()
    sig = saved_templates.signature_of(s, mb.id)
    tpl = saved_templates.get_usable(s, g.ie_user.id, request.args.get("template", ""))
    top = ""
    if tpl is not None:
        subject, top = saved_templates.filled(tpl, records[0] if len(records) == 1 else None,
                                              g.ie_user.name, sig)
        if not reply:
            values["subject"] = subject
    if reply:
        values["body"] = saved_templates.reply_with_signature(values["body"], sig, top)
    else:
        values["body"] = saved_templates.with_signature(top or values["body"], sig)
    values["template"] = str(tpl.id) if tpl else ""
    return values


def picker_context() -> dict:
    """The templates the user may pick (for the compose and bulk forms)."""
    return {"usable_templates": saved_templates.usable(get_addon().session(), g.ie_user.id)}


def prefill_bulk(values: dict, mb: Mailbox, template_id: str) -> dict:
    """The bulk composer's values with the picked template and the mailbox signature."""
    s = get_addon().session()
    sig = saved_templates.signature_of(s, mb.id)
    if sig:
        values["signature"] = sig
    tpl = saved_templates.get_usable(s, g.ie_user.id, template_id)
    if tpl is not None:
        values["subject"], values["body"] = tpl.subject, tpl.body
        values["template"] = str(tpl.id)
    return values
