"""Browser webmail set-up: the reference host's Rita with a synced lab mailbox."""
from __future__ import annotations

import secrets

from sqlalchemy.orm import Session

from plugin.models import Mailbox
from plugin.fetching.sync import sync_mailbox
from tests.integration.sync_helpers import set_window


def rita_mailbox(live_host, dovecot, raws: list[bytes]) -> tuple[object, int]:
    """Activate the add-on, save settings, give Rita a lab IMAP mailbox holding ``raws``."""
    addon = live_host.addon
    addon.set_active(True)
    set_window(addon)
    user = dovecot.add_user(f"wm{secrets.token_hex(4)}", f"pw-{secrets.token_urlsafe(9)}")
    for raw in raws:
        dovecot.deliver(user, raw)
    with live_host.app.app_context():
        rita = addon.host.users_by_email(["rita@acme.test"])["rita@acme.test"]
    with Session(addon.engine) as s:
        mb = Mailbox(user_id=rita.id, account_name="Lab", email=user.email, is_active=True,
                     protocol="imap", in_host="localhost", in_port=dovecot.imaps,
                     in_security="ssl", in_login=user.login,
                     in_password=addon.secrets.encrypt(user.password),
                     out_host="localhost", out_port=465, out_security="ssl")
        s.add(mb)
        s.commit()
        mbid = mb.id
    result = sync_mailbox(addon, mbid)
    assert result.error_kind is None and result.quarantined == 0, result
    return user, mbid
