"""Bounce reports delivered to the sender's lab Dovecot mailbox (RFC 3464 DSNs the lab
SMTP server writes as the recipient's server, plus qmail and Exim formats): recognised
at import, matched to the bulk rows they are about, shown per recipient and on the
record, hard bounces suppressed, never noted as candidate mail; forged reports change
nothing."""
from __future__ import annotations

from email.utils import make_msgid

import pytest
from sqlalchemy import select

from plugin.host import RecordRef
from plugin.jobs.dispatcher import dispatch
from plugin.models import Mailbox, Message, RecordLink
from plugin.models.deliverability import Bounce, Suppression
from tests.integration.send_helpers import form, job, make_sender, outbound_rows, wait_until
from tests.lab import bounces as reports


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    return make_sender(mini, dovecot, smtp_lab)


def _fetch(rita) -> None:
    with rita.addon.session() as s:
        s.get(Mailbox, rita.mailbox_id).next_fetch_at = None
        s.commit()
    with rita.app.app_context():
        dispatch(rita.addon, wait=True)


def _send(rita, recs, subject="Hi {{ first_name }}") -> int:
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=[str(r.num) for r in recs], subject=subject, body="Hello {{ full_name }}"))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    wait_until(lambda: job(rita.addon, job_id).finished)
    return job_id


def test_bounce_reports_are_recognised_linked_and_suppress_hard_bounces(rita, smtp_lab, dovecot):
    host = rita.host
    names = ["bounce0", "bouncelater1", "ok2", "qmail3", "exim4"]
    recs = {n: host.add_record("candidate", n.title(), "Lee", f"{n}@candidates.test")
            for n in names}
    job_id = _send(rita, list(recs.values()))
    got = {r.rcpt_tos[0]: r.data for r in smtp_lab.wait_for(5)}
    me = rita.user.email
    # Non-standard formats, the way qmail and Exim send them; Exim's from the
    # recipient's own address, as some servers do (a candidate's "mail", if not caught).
    dovecot.deliver(rita.user, reports.qmail(got["qmail3@candidates.test"], me,
                                             "qmail3@candidates.test"))
    exim = reports.exim(got["exim4@candidates.test"], me, "exim4@candidates.test").replace(
        b"From: Mail Delivery System <Mailer-Daemon@exim.candidates.test>",
        b"From: exim4@candidates.test")
    dovecot.deliver(rita.user, exim)
    # Forged: a report for a message we never sent, and one quoting our real message
    # to ok2 but naming an address it never went to.
    never = got["ok2@candidates.test"].replace(b"Message-ID: <", b"Message-ID: <x" +
                                               make_msgid().strip("<>").encode() + b"-")
    dovecot.deliver(rita.user, reports.dsn(never, me, "ok2@candidates.test", "failed",
                                           "5.1.1", "550 5.1.1 no such user"))
    dovecot.deliver(rita.user, reports.dsn(got["ok2@candidates.test"], me,
                                           "victim@candidates.test", "failed", "5.1.1",
                                           "550 5.1.1 no such user"))
    _fetch(rita)
    _fetch(rita)  # a second fetch adds nothing
    with rita.addon.session() as s:
        found = {b.address: b for b in s.scalars(select(Bounce))}
        suppressed = {x.address: x for x in s.scalars(select(Suppression))}
        stored_reports = s.scalars(select(Message.id).where(
            Message.mailbox_id == rita.mailbox_id, Message.direction == "in")).all()
        report_links = s.scalars(select(RecordLink).where(
            RecordLink.message_id.in_(stored_reports))).all()
    assert sorted(found) == ["bounce0@candidates.test", "bouncelater1@candidates.test",
                             "exim4@candidates.test", "qmail3@candidates.test"]
    assert found["bounce0@candidates.test"].status == "5.1.1" and \
        found["bounce0@candidates.test"].reason == "mailbox does not exist"
    assert found["qmail3@candidates.test"].reason == "mailbox does not exist"
    assert not found["bouncelater1@candidates.test"].hard  # 4.2.2: soft, not suppressed
    assert sorted(suppressed) == ["bounce0@candidates.test", "exim4@candidates.test",
                                  "qmail3@candidates.test"]
    assert {x.reason for x in suppressed.values()} == {"bounced"}
    # Six reports arrived (two forged); none is linked to a record or noted as mail.
    assert len(stored_reports) == 6 and report_links == []
    exim_ref = RecordRef("candidate", str(recs["exim4"].num))
    assert [n for n in host.notes_on(exim_ref) if "received" in n.lower()] == []
    # Shown per recipient on the job and on the record.
    page = rita.client.get(f"/integrated-email/bulk/{job_id}").get_data(as_text=True)
    assert page.count("Bounced: mailbox does not exist") == 2
    assert "Bounced: the mailbox is full (still trying)" in page
    ref = RecordRef("candidate", str(recs["bounce0"].num))
    timeline = rita.client.get(f"/integrated-email/records/candidate/{ref.id}/timeline")
    text = timeline.get_data(as_text=True)
    assert "Bounced: mailbox does not exist" in text and "bulk email skips this address" in text
    ok_ref = RecordRef("candidate", str(recs["ok2"].num))
    assert "Bounced" not in rita.client.get(
        f"/integrated-email/records/candidate/{ok_ref.id}/timeline").get_data(as_text=True)
    # The next bulk leaves the hard-bounced addresses out, with the reason.
    preview = rita.client.post("/integrated-email/bulk/new", data=form(
        candidate_ids=[str(r.num) for r in recs.values()])).get_data(as_text=True)
    assert "Email 2 candidates" in preview
    assert preview.count("bulk email skips this address") == 3
    rows = outbound_rows(rita.addon, bulk_job_id=job_id)
    assert {r.state for r in rows} == {"filed"}  # a bounce does not rewrite what was sent


def test_a_bounce_for_a_message_never_sent_changes_nothing(rita, smtp_lab, dovecot):
    cand = rita.host.add_record("candidate", "Ann", "Lee", "ann@candidates.test")
    fake = (b"From: Rita <" + rita.user.email.encode() + b">\r\nTo: ann@candidates.test\r\n"
            b"Subject: Hi\r\nMessage-ID: " + make_msgid(domain="example.test").encode() +
            b"\r\n\r\nHello\r\n")
    dovecot.deliver(rita.user, reports.dsn(fake, rita.user.email, "ann@candidates.test",
                                           "failed", "5.1.1", "550 5.1.1 no such user"))
    dovecot.deliver(rita.user, reports.qmail(fake, rita.user.email, "ann@candidates.test"))
    _fetch(rita)
    with rita.addon.session() as s:
        assert s.scalars(select(Bounce)).all() == []
        assert s.scalars(select(Suppression)).all() == []
    _send(rita, [cand])
    assert [r.rcpt_tos for r in smtp_lab.wait_for(1)] == [("ann@candidates.test",)]
