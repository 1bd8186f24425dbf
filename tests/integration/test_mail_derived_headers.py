"""Every page and fragment that shows text from mail (the composer quoting a hostile
message, the outbox, bulk pages, a record's timeline and message viewer) sends the
add-on's CSP and ``Cache-Control: private, no-store``, like the webmail pages."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import Message, RecordLink
from tests.integration.webmail_helpers import Setup, mail

EVIL_NAME = '"</textarea><script>alert(1)</script>" <cara@candidates.test>'


def _assert_guarded(resp, what: str) -> None:
    assert resp.status_code == 200, (what, resp.status_code)
    csp = resp.headers.get("Content-Security-Policy", "")
    assert csp.startswith("default-src 'none'"), (what, csp)
    script_src = csp.split("script-src")[1].split(";")[0].strip()
    assert re.fullmatch(r"'self'( 'nonce-[A-Za-z0-9_-]+')?", script_src), (what, csp)
    assert resp.headers.get("Cache-Control") == "private, no-store", what


def test_pages_quoting_mail_send_the_policy_and_no_store(mini, dovecot, mail_user):
    wm = Setup(mini, dovecot, mail_user)
    wm.deliver_and_sync(mail("<b>Quoted</b> subject", body="<script>alert(2)</script>",
                             sender=EVIL_NAME))
    rec = wm.host.add_record("candidate", "Cara", "C", "cara@candidates.test")
    with Session(wm.addon.engine) as s:
        mid = s.scalar(select(Message.id).where(Message.subject == "<b>Quoted</b> subject"))
        s.add(RecordLink(message_id=mid, record_kind="candidate", record_id=str(rec.num),
                         how="manual"))
        s.commit()
    base = "/integrated-email"
    for mode in ("reply", "reply_all", "forward"):
        resp = wm.client.get(f"{base}/compose/reply/{mid}?mode={mode}")
        _assert_guarded(resp, mode)
        assert "<script>alert" not in resp.get_data(as_text=True)
    _assert_guarded(wm.client.get(f"{base}/compose"), "compose")
    _assert_guarded(wm.client.get(f"{base}/outbox"), "outbox")
    timeline = wm.client.get(f"{base}/records/candidate/{rec.num}/timeline",
                             headers={"HX-Request": "true"})
    _assert_guarded(timeline, "timeline")
    assert "Quoted" in timeline.get_data(as_text=True)
    viewer = wm.client.get(f"{base}/records/candidate/{rec.num}/messages/{mid}")
    _assert_guarded(viewer, "record message")
    assert "<script>alert" not in viewer.get_data(as_text=True)
