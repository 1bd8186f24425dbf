"""Bulk rows whose message cannot be built, through the real runner and the lab SMTP:
a line break in the sender's profile name or in one row's subject fails that row with
a sentence, the others go out, and the job always ends (it never stays "running")."""
from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from plugin.models import Mailbox
from plugin.models.outbound import OutboundMessage
from plugin.sending import bulk as bulk_service
from tests.integration.send_helpers import form, job, make_sender, outbound_rows
from tests.integration.test_send_hostile_headers import assert_clean

HOSTILE_NAME = "Rita\r\nBcc: victim@example.test"


def _queue(sender, n: int, name: str) -> int:
    """A job for ``n`` new candidates, made by the bulk service (not started)."""
    recs = [sender.host.add_record("candidate", f"Ann{i}", "Lee", f"ann{i}@candidates.test")
            for i in range(n)]
    user = sender.host.get_user(sender.person.get_id())
    user = type(user)(**{**user.__dict__, "name": name})
    addon = sender.addon
    with Session(addon.engine, expire_on_commit=False) as s:
        mb = s.get(Mailbox, sender.mailbox_id)
        selection = bulk_service.select_recipients(addon, user, [str(r.num) for r in recs])
        created = bulk_service.create_job(addon, s, user, mb, "Hi {{ first_name }}",
                                          "Dear {{ first_name }}", selection, signature="R")
        return created.id


def _run(sender, job_id: int) -> str:
    with sender.app.app_context():
        return bulk_service.run_job(sender.addon, job_id)


def test_a_hostile_profile_name_is_refused_before_a_job_is_made(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    sender = make_sender(mini, dovecot, smtp_lab)
    sender.person.name = HOSTILE_NAME
    rec = sender.host.add_record("candidate", "Ann", "Lee", "ann@candidates.test")
    resp = sender.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=[str(rec.num)], subject="Hi", body="Dear {{ first_name }}",
        signature="R"))
    assert resp.status_code == 422
    assert "The sender name must be on one line" in resp.get_data(as_text=True)
    assert outbound_rows(sender.addon) == [] and smtp_lab.received == []


def test_rows_with_a_hostile_sender_name_fail_and_the_job_ends(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    sender = make_sender(mini, dovecot, smtp_lab)
    job_id = _queue(sender, 3, HOSTILE_NAME)  # rows written before the route checked names
    assert _run(sender, job_id) == "done"
    assert job(sender.addon, job_id).state == "done"
    rows = outbound_rows(sender.addon, bulk_job_id=job_id)
    assert [r.state for r in rows] == ["failed"] * 3
    assert all("sender name must be on one line" in r.error for r in rows)
    assert smtp_lab.received == []
    page = sender.client.get(f"/integrated-email/bulk/{job_id}").get_data(as_text=True)
    assert "Finished: 0 of 3 sent." in page and "sender name must be on one line" in page


def test_one_unbuildable_row_fails_alone(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    sender = make_sender(mini, dovecot, smtp_lab)
    job_id = _queue(sender, 3, "Rita Recruiter")
    rows = outbound_rows(sender.addon, bulk_job_id=job_id)
    out = OutboundMessage.__table__
    with sender.addon.engine.begin() as conn:  # a row as an older version may have left it
        conn.execute(update(out).where(out.c.id == rows[1].id).values(
            subject="Hi\r\nBcc: victim@example.test"))
    assert _run(sender, job_id) == "done"
    after = outbound_rows(sender.addon, bulk_job_id=job_id)
    assert after[1].state == "failed" and "subject must be on one line" in after[1].error
    assert {after[0].state, after[2].state} <= {"sent", "filed"}
    got = smtp_lab.wait_for(2)
    assert sorted(r.rcpt_tos for r in got) == [("ann0@candidates.test",),
                                               ("ann2@candidates.test",)]
    for rec in got:
        assert_clean(rec.data)
    assert len(smtp_lab.received) == 2
