"""The add-on's front door: where "Settings > Integrated email" lands."""

from __future__ import annotations

from flask import g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from plugin.current import get_addon
from plugin.setup import settings as settings_service


def home() -> Response | str:
    """Send admins to global settings until saved; others to their mailboxes or the gate."""
    addon = get_addon()
    s = addon.session()
    if g.ie_user.is_admin and not settings_service.is_complete(s):
        return redirect(url_for("integrated_email.admin_settings"))
    if not settings_service.is_complete(s):
        return render_template("integrated_email/gate.html")
    return redirect(url_for("integrated_email.mailboxes"))
