"""The webmail: folders, message list, search, message view, attachments, actions.

Every handler goes through ``webmail_view``: 404 in outbound-only mode (the webmail
does not exist then), and a strict Content-Security-Policy on every answer (scripts
from 'self' only, no inline script).  A message's HTML is shown in an
``<iframe sandbox srcdoc>`` with its own policy (``plugin.mail.sanitize``).  Lists
answer a full page or, for htmx ("Load more"), only the rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timezone

from flask import (Response, abort, current_app, g, redirect, render_template,
                   request, url_for)
from flask.typing import ResponseReturnValue

from plugin.current import get_addon
from plugin.i18n import gettext as _
from plugin.words import N_
from plugin.linking import manual as links
from plugin.models import Mailbox, Message
from plugin.reading import mailbox_view as wm
from plugin.reading import messages
from plugin.reading.mailbox_view import Page
from plugin.reading.render_body import render_body
from plugin.routes._http import attachment_response, found_or_404, mail_derived, wants_fragment

NO_MESSAGE = N_("No such message, or you may not see it.")
NO_OWN_MESSAGE = N_("No such message among your own mail.")


def webmail_view(view: Callable[..., ResponseReturnValue]) -> Callable[..., Response]:
    """404 while outbound-only; the strict CSP on whatever the view answers."""
    @functools.wraps(view)
    def wrapper(*args: object, **kwargs: object) -> Response:
        if not wm.webmail_enabled(get_addon().session()):
            abort(404, _("The webmail is off: the administrator chose outbound-only mode."))
        return mail_derived(view)(*args, **kwargs)
    return wrapper


# -------------------------------------------------------------------- helpers


def _mailbox_arg() -> int | None:
    try:
        return int(request.args["mailbox"])
    except (KeyError, ValueError):
        return None


def fmt_date(value: datetime | None) -> str:
    """A list's date: the time today, day and month this year, else with the year."""
    if value is None:
        return ""
    value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    now = datetime.now(timezone.utc)
    if value.date() == now.date():
        return value.strftime("%H:%M")
    if value.year == now.year:
        return value.strftime("%d %b").lstrip("0")
    return value.strftime("%d %b %Y").lstrip("0")


def compose_url(kind: str, message_id: int) -> str:
    """The composer's URL to reply, reply all or forward (``kind``) a stored message."""
    return url_for("integrated_email.compose_reply", message_id=message_id, mode=kind)


def _context(mailbox: Mailbox | None, **extra: object) -> dict[str, object]:
    s = get_addon().session()
    ctx = {"mailbox": mailbox, "mailboxes": wm.user_mailboxes(s, g.ie_user),
           "folders": wm.folders(s, g.ie_user, mailbox) if mailbox else [],
           "fmt_date": fmt_date, "addresses": messages.addresses, "query": "", "role": None}
    ctx.update(extra)
    return ctx


def _no_mailbox() -> str:
    return render_template("integrated_email/webmail_empty.html", **_context(None))


def _rows(page: Page, mailbox: Mailbox, role: str | None, query: str = "") -> dict[str, object]:
    s = get_addon().session()
    if page.next_cursor:
        args = {"mailbox": mailbox.id, "cursor": page.next_cursor}
        more = (url_for("integrated_email.webmail_search", q=query, **args) if query
                else url_for("integrated_email.webmail_folder", role=role, **args))
    else:
        more = None
    return {"messages": page.messages, "more_url": more,
            "badges": links.badges(s, get_addon().host, [m.id for m in page.messages],
                                   g.ie_user)}


# ---------------------------------------------------------------------- views


def inbox() -> ResponseReturnValue:
    """The inbox of the user's active mailbox."""
    return folder("inbox")


def folder(role: str) -> ResponseReturnValue:
    """One folder, newest first; htmx asks for the next rows only."""
    addon = get_addon()
    s = addon.session()
    mailbox = wm.pick_mailbox(s, g.ie_user, _mailbox_arg())
    if mailbox is None:
        if _mailbox_arg() is not None:
            abort(404, _("No such mailbox among yours."))
        return _no_mailbox()
    if len(role) > 16:
        abort(404, _("No such folder."))
    page = wm.list_page(s, addon.host, g.ie_user, mailbox.id, role,
                        request.args.get("cursor"))
    rows = _rows(page, mailbox, role)
    if wants_fragment() and request.args.get("cursor"):
        return render_template("integrated_email/_partials/webmail_rows.html",
                               fmt_date=fmt_date, addresses=messages.addresses, role=role, **rows)
    label = wm.FOLDER_LABELS.get(role, role.title())
    return render_template("integrated_email/webmail.html",
                           **_context(mailbox, role=role, heading=_(label), **rows))


def search() -> ResponseReturnValue:
    """Messages matching the words in sender, recipients, subject or text."""
    addon = get_addon()
    s = addon.session()
    mailbox = wm.pick_mailbox(s, g.ie_user, _mailbox_arg())
    if mailbox is None:
        return _no_mailbox()
    query = (request.args.get("q") or "").strip()[:200]
    page = wm.search_page(s, addon.host, g.ie_user, mailbox.id, query,
                          request.args.get("cursor"))
    rows = _rows(page, mailbox, None, query)
    if wants_fragment() and request.args.get("cursor"):
        return render_template("integrated_email/_partials/webmail_rows.html",
                               fmt_date=fmt_date, addresses=messages.addresses, role=None, **rows)
    heading = _("Search: %(query)s", query=query) if query else _("Search")
    return render_template("integrated_email/webmail.html",
                           **_context(mailbox, query=query, heading=heading, **rows))


def message(message_id: int) -> ResponseReturnValue:
    """Read a message (marks it read, here and on the server)."""
    addon = get_addon()
    s = addon.session()
    msg = found_or_404(messages.get_message(s, addon.host, g.ie_user, message_id), _(NO_MESSAGE))
    mailbox = s.get(Mailbox, msg.mailbox_id)
    is_owner = mailbox.user_id == str(g.ie_user.id)
    if is_owner and not msg.seen:
        messages.set_seen(addon, msg, True)
        s.commit()
    if not is_owner:  # shared mail: the sidebar shows the viewer's own folders
        mailbox = wm.pick_mailbox(s, g.ie_user, None)
    remote = request.args.get("images") == "1"
    g.ie_remote_images = remote
    body = render_body(current_app.config, msg, remote)
    if s.is_modified(msg):  # the HTML was sanitized for the first time: keep it
        s.commit()
    record_q = (request.args.get("record_q") or "").strip()[:100]
    return render_template(
        "integrated_email/webmail_message.html",
        **_context(mailbox, role=msg.folder_role, msg=msg, frame=body.frame, blocked=body.blocked,
                   remote=remote, plain=body.plain,
                   is_owner=is_owner,
                   links=links.badges(s, addon.host, [msg.id], g.ie_user).get(msg.id, []),
                   record_q=record_q,
                   record_results=links.find_records(addon.host, g.ie_user, record_q),
                   attachments=[a for a in msg.attachments],
                   compose_url=compose_url))


def _own_message(message_id: int) -> Message:
    addon = get_addon()
    return found_or_404(messages.get_message(addon.session(), addon.host, g.ie_user,
                                             message_id, owner_only=True), _(NO_OWN_MESSAGE))


def mark(message_id: int) -> ResponseReturnValue:
    """Mark read (seen=1) or unread (seen=0)."""
    addon = get_addon()
    s = addon.session()
    msg = _own_message(message_id)
    seen = request.form.get("seen") == "1"
    messages.set_seen(addon, msg, seen)
    s.commit()
    if seen:
        return redirect(url_for("integrated_email.webmail_message", message_id=msg.id))
    return redirect(url_for("integrated_email.webmail_folder", role=msg.folder_role,
                            mailbox=msg.mailbox_id))


def delete(message_id: int) -> ResponseReturnValue:
    """Delete: to the server's Trash (IMAP), or from webmail only (POP3)."""
    addon = get_addon()
    s = addon.session()
    msg = _own_message(message_id)
    role, mailbox_id = msg.folder_role, msg.mailbox_id
    messages.delete_message(addon, msg)
    s.commit()
    return redirect(url_for("integrated_email.webmail_folder", role=role, mailbox=mailbox_id))


def attachment(attachment_id: int) -> ResponseReturnValue:
    """Download an attachment: never shown inline, never sniffed."""
    addon = get_addon()
    att = found_or_404(messages.get_attachment(addon.session(), addon.host, g.ie_user,
                                               attachment_id),
                       _("No such attachment, or you may not see it."))
    return attachment_response(att)


def record_search(message_id: int) -> ResponseReturnValue:
    """Candidates and contacts to link by hand (the htmx results list)."""
    addon = get_addon()
    msg = _own_message(message_id)
    q = (request.args.get("record_q") or "").strip()[:100]
    if not wants_fragment():
        return redirect(url_for("integrated_email.webmail_message", message_id=msg.id,
                                record_q=q))
    return render_template("integrated_email/_partials/webmail_record_results.html",
                           msg=msg, record_q=q,
                           record_results=links.find_records(addon.host, g.ie_user, q))


def record_add(message_id: int) -> ResponseReturnValue:
    """Link the message to a record (of any kind the host declares) by hand."""
    addon = get_addon()
    s = addon.session()
    msg = _own_message(message_id)
    try:
        ref = addon.host.parse_ref(request.form.get("ref", ""))
    except ValueError:
        abort(400, _("Pick a %(kinds)s from the list.", kinds=addon.host.kinds_phrase()))
    if not links.add_link(s, addon.host, g.ie_user, msg, ref):
        abort(404, _("No such %(record)s, or you may not see it.",
                     record=addon.host.kind(ref.kind).label))
    s.commit()
    return redirect(url_for("integrated_email.webmail_message", message_id=msg.id))


def record_remove(message_id: int, link_id: int) -> ResponseReturnValue:
    """Remove a link between the message and a record."""
    addon = get_addon()
    s = addon.session()
    msg = _own_message(message_id)
    if not links.remove_link(s, msg, link_id, addon.host):
        abort(404, _("No such link on this message."))
    s.commit()
    return redirect(url_for("integrated_email.webmail_message", message_id=msg.id))

