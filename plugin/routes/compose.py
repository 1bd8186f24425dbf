"""Compose, reply, forward, the outbox, and bulk email.

Handlers load and check input, then call the sending use cases (outbox, bulk) to do
the work. Each answers a full page, or its fragment for htmx.
"""

from __future__ import annotations

import json

from flask import (
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from plugin.current import get_addon
from plugin.host import MAX_ID_LENGTH, HostRecord, RecordRef
from plugin.i18n import gettext as _
from plugin.mail import build as compose_service
from plugin.models import Mailbox, Message
from plugin.models.outbound import BulkJob, OutboundMessage
from plugin.reading import messages
from plugin.routes import deliverability
from plugin.routes import templates as templates_routes
from plugin.routes._http import found_or_404, wants_fragment
from plugin.sending import bulk as bulk_service
from plugin.sending import bounces as bounce_service
from plugin.sending.bulk import schedule as bulk_schedule
from plugin.sending.bulk import window as send_window
from plugin.sending import compose as compose_case
from plugin.sending import merge, outbox, send_later
from plugin.setup import mailbox as setup_service
from plugin.setup import settings as settings_service

T = "integrated_email/"


# ------------------------------------------------------------------ helpers


def _mailbox_or_none() -> Mailbox | None:
    return setup_service.active_mailbox(get_addon().session(), g.ie_user.id)


def _no_mailbox() -> ResponseReturnValue:
    return render_template(T + "compose_no_mailbox.html"), 409


def _records(texts: list[str]) -> list[RecordRef]:
    """Record references from the form that the user may see."""
    return compose_case.visible_records(get_addon().host, g.ie_user, texts)


def _record_names(refs: list[RecordRef]) -> list[HostRecord]:
    found = get_addon().host.get_records(refs) if refs else {}
    return [found[r] for r in refs if r in found]


def _visible_message(message_id: int) -> Message:
    """A stored message the user may reply to or forward: the sharing rule decides."""
    addon = get_addon()
    return found_or_404(messages.get_message(addon.session(), addon.host, g.ie_user, message_id),
                        _("No such message, or it is not shared with you."))


def _max_attachment_bytes() -> int:
    return int(float(current_app.config["IE_MAX_ATTACHMENT_MB"]) * 1024 * 1024)


def _limit_sentence() -> str:
    return _("Attachments may add up to %(mb)s MB in all. Remove some, or share large files "
             "as a link.", mb=current_app.config["IE_MAX_ATTACHMENT_MB"])


def _read_attachments(errors: dict[str, str],
                      forwarded: compose_case.ForwardedFiles | None = None
                      ) -> list[compose_service.Attachment]:
    """The uploaded files, then the forwarded ones, within the one size limit."""
    limit = _max_attachment_bytes()
    out: list[compose_service.Attachment] = []
    total = forwarded.total if forwarded else 0
    if forwarded and forwarded.problem:
        errors["attachments"] = forwarded.problem
        return []
    if total > limit:
        errors["attachments"] = _limit_sentence()
        return []
    for f in request.files.getlist("attachments"):
        if not f or not f.filename:
            continue
        data = f.stream.read(limit + 1 - total)
        total += len(data)
        if total > limit:
            errors["attachments"] = _limit_sentence()
            return []
        name = compose_service.safe_attachment_name(f.filename)
        out.append(compose_service.Attachment(name, f.mimetype or "application/octet-stream",
                                              data))
    return (forwarded.attachments if forwarded else []) + out


def _form_values(form: MultiDict) -> dict:
    return {"to": form.get("to", ""), "cc": form.get("cc", ""), "bcc": form.get("bcc", ""),
            "subject": form.get("subject", ""), "body": form.get("body", ""),
            "formatted": form.get("formatted") in ("on", "yes", "1"),
            "source": form.get("source", ""), "mode": form.get("mode", ""),
            "records": form.getlist("record"), "forward": form.getlist("forward"),
            **_send_later_values(form)}


def _send_later_values(form: MultiDict) -> dict:
    """The "Send later" fields as typed (empty: send now)."""
    return {"send_at": form.get("send_at", ""), "time_zone": form.get("time_zone", "UTC")}


def _render_form(values: dict, errors: dict[str, str], mb: Mailbox, status: int = 200,
                 original: Message | None = None) -> ResponseReturnValue:
    refs = _records(values.get("records", []))
    forwardable = original.attachments if original is not None and \
        values.get("mode") == "forward" else []
    ctx = {"values": values, "errors": errors, "mailbox": mb, "records": _record_names(refs),
           "max_mb": current_app.config["IE_MAX_ATTACHMENT_MB"], "forwardable": forwardable,
           "back": _back_link(values), "zones": send_later.zone_names(),
           **templates_routes.picker_context(), **_picker_target(values)}
    tpl = T + ("_partials/compose_form.html" if wants_fragment() else "compose.html")
    return render_template(tpl, **ctx), status


def _webmail_shown() -> bool:
    return not settings_service.load(get_addon().session()).outbound_only


def _back_link(values: dict) -> tuple[str, str]:
    """Where the page's crumb leads: the message replied to, else the outbox."""
    if values.get("source") and values.get("mode") and _webmail_shown():
        try:
            return _("Back to the message"), url_for("integrated_email.webmail_message",
                                                  message_id=int(values["source"]))
        except ValueError:
            pass
    return _("Sent from the ATS"), url_for("integrated_email.outbox")


def _picker_target(values: dict) -> dict:
    """Where "Use template" goes: the same compose or reply page, with what it needs."""
    if values.get("mode") in ("reply", "reply_all", "forward") and values.get("source"):
        return {"picker_action": url_for("integrated_email.compose_reply",
                                         message_id=values["source"]),
                "picker_hidden": [("mode", values["mode"])]}
    return {"picker_action": url_for("integrated_email.compose"),
            "picker_hidden": [("to", values.get("to", ""))] + [
                ("record", r) for r in values.get("records", [])]}


# ------------------------------------------------------------------ compose


def compose() -> ResponseReturnValue:
    """Write and send one message (GET: the form; POST: send it)."""
    mb = _mailbox_or_none()
    if mb is None:
        return _no_mailbox()
    if request.method == "GET":
        values = {"to": request.args.get("to", ""), "cc": "", "bcc": "",
                  "subject": request.args.get("subject", ""), "body": "", "formatted": False,
                  "source": "", "mode": "", "records": request.args.getlist("record"),
                  "forward": []}
        records = _record_names(_records(values["records"]))
        return _render_form(templates_routes.prefill_compose(values, mb, records), {}, mb)
    return _send(mb)


def compose_reply(message_id: int) -> ResponseReturnValue:
    """Reply, reply all or forward a stored message."""
    mb = _mailbox_or_none()
    if mb is None:
        return _no_mailbox()
    mode = request.args.get("mode", "reply")
    if mode not in ("reply", "reply_all", "forward"):
        abort(404, _("Choose reply, reply_all or forward."))
    msg = _visible_message(message_id)
    values = compose_case.reply_values(msg, mode, mb)
    values = templates_routes.prefill_compose(values, mb, [], reply=True)
    return _render_form(values, {}, mb, original=msg)


def _send(mb: Mailbox) -> ResponseReturnValue:
    """Read the form, files and the message replied to; send through the use case."""
    addon = get_addon()
    values = _form_values(request.form)
    input_errors: dict[str, str] = {}
    original = forwarded = None
    if values["source"] and values["mode"] in ("reply", "reply_all", "forward"):
        try:
            source_id = int(values["source"])
        except ValueError:
            abort(400, _("The message replied to is not a message number."))
        # The sharing rule decides, as for the form: a forward carries only the files
        # of a message the user may see.
        original = _visible_message(source_id)
        if values["mode"] == "forward":
            forwarded = compose_case.forwarded_files(current_app.config, original,
                                                     values["forward"])
    attachments = _read_attachments(input_errors, forwarded)
    later = send_later.read(values["send_at"], values["time_zone"])
    if later.error:
        input_errors["send_at"] = later.error
    # A forward starts a conversation of its own: no threading headers.
    replied_to = original if values["mode"] in ("reply", "reply_all") else None
    outcome = compose_case.send_from_form(addon, addon.session(), g.ie_user, mb, values,
                                          attachments, replied_to, input_errors,
                                          send_at=later.when)
    if outcome.errors:
        return _render_form(values, outcome.errors, mb, 422, original=original)
    row = outcome.row
    back = _record_names(outcome.records)
    if wants_fragment():
        return render_template(T + "_partials/compose_result.html", row=row, records=back,
                               webmail=_webmail_shown())
    flash(result_sentence(row))
    if len(back) == 1:
        return redirect(back[0].url)
    return redirect(url_for("integrated_email.outbox"))


def result_sentence(row: OutboundMessage) -> str:
    """The flash sentence for a message as its sending ended."""
    if send_later.is_scheduled(row):
        return _("Your message is scheduled for %(when)s UTC. You can cancel it in Sent from "
                 "the ATS until then.", when=row.next_attempt_at.strftime("%d %b %Y %H:%M"))
    if row.state in ("sent", "filed"):
        return _("Your message was sent.")
    if row.state == "queued":
        return ("Your message could not be sent yet and will be tried again shortly: "
                + (row.error or ""))
    return "Your message was not sent. " + (row.error or "")


# ------------------------------------------------------------------ outbox


def outbox_list() -> ResponseReturnValue:
    """The user's recent outgoing messages and their state."""
    s = get_addon().session()
    rows = s.scalars(select(OutboundMessage).where(
        OutboundMessage.user_id == g.ie_user.id, OutboundMessage.bulk_job_id.is_(None))
        .order_by(OutboundMessage.id.desc()).limit(100)).all()
    jobs = s.scalars(select(BulkJob).where(BulkJob.user_id == g.ie_user.id)
                     .order_by(BulkJob.id.desc()).limit(20)).all()
    return render_template(T + "outbox.html", rows=rows, jobs=jobs)


def outbox_resend(outbound_id: int) -> ResponseReturnValue:
    """Send a failed or unknown message again (the user decided)."""
    addon = get_addon()
    s = addon.session()
    row = s.get(OutboundMessage, outbound_id)
    if row is None or row.user_id != g.ie_user.id:
        abort(404, _("No such message in your outbox."))
    if outbox.resend(s, row):
        row = outbox.deliver(addon, row.id)
        flash(result_sentence(row))
    return redirect(url_for("integrated_email.outbox"))


def outbox_cancel(outbound_id: int) -> ResponseReturnValue:
    """Cancel a scheduled message that has not started."""
    s = get_addon().session()
    row = s.get(OutboundMessage, outbound_id)
    if row is None or row.user_id != g.ie_user.id:
        abort(404, _("No such message in your outbox."))
    if send_later.cancel_row(s, row):
        flash(_("The scheduled message was cancelled; it will not be sent."))
    else:
        flash(_("That message has already started sending and can no longer be cancelled."))
    return redirect(url_for("integrated_email.outbox"))


def outbox_edit(outbound_id: int) -> ResponseReturnValue:
    """Edit a scheduled message: it is taken back (cancelled) and opens in the composer
    with everything it had; sending or scheduling it again makes a new message."""
    mb = _mailbox_or_none()
    if mb is None:
        return _no_mailbox()
    s = get_addon().session()
    row = s.get(OutboundMessage, outbound_id)
    if row is None or row.user_id != g.ie_user.id:
        abort(404, _("No such message in your outbox."))
    if row.attachments not in (None, "", "[]"):
        flash(_("A scheduled message with attachments cannot be edited: cancel it and write "
              "it again."))
        return redirect(url_for("integrated_email.outbox"))
    if not send_later.cancel_row(s, row):
        flash(_("That message has already started sending and can no longer be edited."))
        return redirect(url_for("integrated_email.outbox"))
    s.refresh(row)
    values = send_later.compose_values(row)
    return _render_form(values, {}, mb)


# ------------------------------------------------------------------ bulk


def bulk_refs(source: MultiDict) -> list[RecordRef]:
    """The records a bulk POST names (docs/HOSTING.md, "Bulk email"): ``records`` as
    ``kind:id``; or ``kind`` with ``ids``; or 1.0's ``candidate_ids``. Kinds the host
    does not declare for bulk are dropped."""
    host = get_addon().host
    kinds = {k.name for k in host.bulk_kinds()}
    refs: list[RecordRef] = []
    for text in source.getlist("records"):
        try:
            refs.append(host.parse_ref(text))
        except ValueError:
            continue
    kind = source.get("kind", "")
    refs += [RecordRef(kind, i) for i in source.getlist("ids") if kind]
    refs += [RecordRef("candidate", i) for i in source.getlist("candidate_ids")]
    return [r for r in dict.fromkeys(RecordRef(r.kind, str(r.id).strip()) for r in refs)
            if r.kind in kinds and r.id and len(r.id) <= MAX_ID_LENGTH]


def _bulk_words(refs: list[RecordRef]) -> dict:
    """The host's words for what was picked: its kind's label and plural, or "recipient"."""
    kinds = {r.kind for r in refs}
    if len(kinds) == 1:
        kind = get_addon().host.kind(kinds.pop())
        return {"one": kind.label, "many": kind.plural}
    return {"one": "recipient", "many": "recipients"}


def _bulk_context(refs: list[RecordRef], mb: Mailbox) -> dict:
    addon = get_addon()
    s = addon.session()
    selection = bulk_service.select_records(addon, g.ie_user, refs)
    gs = settings_service.load(s)
    limit = bulk_service.limit_problem(s, gs, g.ie_user.id, len(selection.records)) \
        if selection.records else None
    return {"selection": selection, "refs": [str(r.ref) for r in selection.records],
            "words": _bulk_words(refs), "limit_problem": limit, "fields": merge.FIELDS,
            "mailbox": mb, "gs": gs, "zones": send_later.zone_names(),
            **templates_routes.picker_context(),
            "picker_hidden": [("records", str(r.ref)) for r in selection.records],
            "day_names": send_window.DAY_NAMES}


def bulk_new() -> ResponseReturnValue:
    """The bulk composer for the records picked in the host's list (any bulk kind)."""
    mb = _mailbox_or_none()
    if mb is None:
        return _no_mailbox()
    source = request.form if request.method == "POST" else request.args
    refs = bulk_refs(source)
    ctx = _bulk_context(refs, mb)
    ctx.update(values=templates_routes.prefill_bulk(
        {"subject": "", "body": "Hello {{ first_name }},\n\n\n\n{{ recruiter_signature }}",
         "signature": g.ie_user.name, "formatted": False, "send_at": "", "time_zone": "UTC",
         "window": False, "window_days": ["0", "1", "2", "3", "4"], "window_start": "08:00",
         "window_end": "18:00"},
        mb, source.get("template", "")), problems=[], preview=None)
    if not refs:  # said on the page itself: no host layout needs to show flashes
        kinds = " or ".join(k.label for k in get_addon().host.bulk_kinds()) or "record"
        ctx["problems"] = [merge.MergeProblem(
            "recipients", _("Select at least one %(kinds)s in the list, then choose Email "
                            "selected.", kinds=kinds))]
        return render_template(T + "bulk_new.html", **ctx), 400
    return render_template(T + "bulk_new.html", **ctx)


def _bulk_values(form: MultiDict) -> dict:
    return {"subject": form.get("subject", ""), "body": form.get("body", ""),
            "signature": form.get("signature", ""),
            "formatted": form.get("formatted") in ("on", "yes", "1"),
            "window": form.get("window") == "on", "window_days": form.getlist("window_days"),
            "window_start": form.get("window_start", "08:00"),
            "window_end": form.get("window_end", "18:00"), **_send_later_values(form)}


def bulk_preview() -> ResponseReturnValue:
    """The message as one chosen recipient will get it, and any template problems."""
    mb = _mailbox_or_none()
    if mb is None:
        return _no_mailbox()
    values = _bulk_values(request.form)
    ctx = _bulk_context(bulk_refs(request.form), mb)
    records = ctx["selection"].records
    chosen = request.form.get("preview_for") or ""
    record = next((r for r in records if chosen in (str(r.ref), r.ref.id)),
                  records[0] if records else None)
    result = bulk_service.preview(values["subject"], values["body"], record, g.ie_user,
                                  values["signature"]) if record else None
    return render_template(T + "_partials/bulk_preview.html", preview=result, record=record,
                           **ctx)


def bulk_send() -> ResponseReturnValue:
    """Check the templates and limits, make the job, and start it."""
    addon = get_addon()
    mb = _mailbox_or_none()
    if mb is None:
        return _no_mailbox()
    values = _bulk_values(request.form)
    ctx = _bulk_context(bulk_refs(request.form), mb)
    problems = bulk_service.check_templates(values["subject"], values["body"])
    try:
        compose_service.check_header(values["subject"], "subject")
    except compose_service.HeaderError as exc:
        problems.append(merge.MergeProblem("subject", exc.sentence))
    try:  # the sender's profile name goes into every message's From
        compose_service.check_header(g.ie_user.name or "", "sender name")
    except compose_service.HeaderError as exc:
        problems.append(merge.MergeProblem("sender", exc.sentence))
    if not ctx["selection"].records:
        problems.append(merge.MergeProblem(
            "recipients", _("None of the selected %(records)s has a valid email address.",
                            records=ctx["words"]["many"])))
    if ctx["limit_problem"]:
        problems.append(merge.MergeProblem("recipients", ctx["limit_problem"]))
    later = send_later.read(values["send_at"], values["time_zone"])
    if later.error:
        problems.append(merge.MergeProblem("send_at", later.error))
    hours, hours_error = send_window.read(values["window"], values["window_days"],
                                          values["window_start"], values["window_end"],
                                          values["time_zone"])
    if hours_error:
        problems.append(merge.MergeProblem("window", hours_error))
    if problems:
        ctx.update(values=values, problems=problems, preview=None)
        tpl = "_partials/bulk_form.html" if wants_fragment() else "bulk_new.html"
        return render_template(T + tpl, **ctx), 422
    s = addon.session()
    job = bulk_service.create_job(addon, s, g.ie_user, mb, values["subject"], values["body"],
                                  ctx["selection"], signature=values["signature"],
                                  formatted=values["formatted"],
                                  unsubscribe_base=deliverability.unsubscribe_base(),
                                  send_at=later.when, window=hours)
    if later.when is not None and not job.finished:
        job.notice = (f"Scheduled for {values['send_at'].replace('T', ' ')} "
                      f"({values['time_zone'] or 'UTC'}); you can cancel it until then.")
        s.commit()
    elif not job.finished:
        bulk_service.start_in_thread(addon, job.id)
    target = url_for("integrated_email.bulk_job", job_id=job.id)
    if wants_fragment():
        resp = make_response("", 204)
        resp.headers["HX-Redirect"] = target
        return resp
    return redirect(target)


def _own_job(job_id: int) -> BulkJob:
    s = get_addon().session()
    job = s.get(BulkJob, job_id)
    if job is None or job.user_id != g.ie_user.id:
        abort(404, _("No such bulk email of yours."))
    s.refresh(job)
    return job


def _job_context(job: BulkJob) -> dict:
    s = get_addon().session()
    rows = s.scalars(select(OutboundMessage).where(OutboundMessage.bulk_job_id == job.id)
                     .order_by(OutboundMessage.id)).all()
    progress = bulk_service.progress(s, job.id)
    return {"job": job, "progress": progress, "rows": rows,
            "skipped": json.loads(job.skipped or "[]"),
            "finish": bulk_schedule.expected_finish(s, current_app.config, job,
                                                    progress.remaining),
            "bounces": bounce_service.for_outbound(s, [r.id for r in rows])}


def bulk_job(job_id: int) -> ResponseReturnValue:
    """A bulk job's page: progress bar, per-recipient results, Cancel."""
    return render_template(T + "bulk_job.html", **_job_context(_own_job(job_id)))


def bulk_progress(job_id: int) -> ResponseReturnValue:
    """The self-refreshing progress fragment."""
    return render_template(T + "_partials/bulk_progress.html",
                           **_job_context(_own_job(job_id)))


def bulk_cancel(job_id: int) -> ResponseReturnValue:
    """Stop a bulk job before its next message."""
    job = _own_job(job_id)
    if not job.finished:
        bulk_service.request_cancel(get_addon().session(), job)
    if wants_fragment():
        return bulk_progress(job_id)
    return redirect(url_for("integrated_email.bulk_job", job_id=job_id))
