"""Fetch now (with progress in place) and the admin's mailbox health overview."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from plugin.current import get_addon
from plugin.i18n import gettext as _
from plugin.routes._http import found_or_404, htmx
from plugin.fetching import health
from plugin.fetching.status import request_fetch
from plugin.setup import mailbox as setup_service


def fetch_now(mailbox_id: int) -> ResponseReturnValue:
    """Queue an immediate sync; answer the self-polling progress fragment."""
    addon = get_addon()
    s = addon.session()
    mb = setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id)
    mb = found_or_404(mb if mb is not None and mb.protocol else None,
                      _("No such mailbox among yours that receives mail."))
    if mb.paused:
        s.refresh(mb)
        return render_template("integrated_email/_partials/fetch_progress.html", mailbox=mb,
                               running=False)
    request_fetch(addon.engine, mb.id)
    addon.wake_fetching()
    if not htmx:  # no JavaScript: back to the list
        flash(_("Fetching has started; the count below updates when you reload."))
        return redirect(url_for("integrated_email.mailboxes"))
    s.refresh(mb)
    return render_template("integrated_email/_partials/fetch_progress.html", mailbox=mb,
                           running=True)


def fetch_progress(mailbox_id: int) -> ResponseReturnValue:
    """The progress fragment: polls itself while the sync runs, then shows the result."""
    s = get_addon().session()
    mb = found_or_404(setup_service.owned_mailbox(s, g.ie_user.id, mailbox_id),
                      _("No such mailbox among yours."))
    running = bool(mb.fetch_requested or mb.lease_owner)
    return render_template("integrated_email/_partials/fetch_progress.html", mailbox=mb,
                           running=running)


def mailbox_health() -> ResponseReturnValue:
    """Admins: every user's mailboxes, their state and 14 days of imports."""
    if not g.ie_user.is_admin:
        abort(403, _("Only administrators see every mailbox's health."))
    addon = get_addon()
    rows = health.overview(addon, addon.session())
    return render_template("integrated_email/admin_health.html", rows=rows,
                           days=health.DAYS)
