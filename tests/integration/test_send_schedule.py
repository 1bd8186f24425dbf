"""Send later, against the lab SMTP with a controllable clock: a scheduled message and a
scheduled bulk go out at their time (typed in the sender's time zone) and not before;
cancelled ones never go; times that cannot be used are refused in plain words."""
from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

import pytest

from plugin.jobs import send as send_job
from plugin.sending.lease import aware
from plugin.testing import clock
from tests.integration.send_helpers import form, job, make_sender, outbound_rows


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    yield make_sender(mini, dovecot, smtp_lab)
    clock.set_clock(0, 1)


BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def _tomorrow_9_berlin() -> tuple[str, datetime]:
    local = (datetime.now(BERLIN) + timedelta(days=1)).replace(hour=9, minute=30, second=0,
                                                               microsecond=0)
    return local.strftime("%Y-%m-%dT%H:%M"), local.astimezone(zoneinfo.ZoneInfo("UTC"))


def _tick(rita) -> None:
    with rita.app.app_context():
        send_job.run(rita.addon)


def _advance_past(when: datetime) -> None:
    clock.advance((when - clock.now()).total_seconds() + 30)


def test_scheduled_message_goes_out_at_its_time_and_a_cancelled_one_never(rita, smtp_lab):
    typed, when = _tomorrow_9_berlin()
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="later@example.test", subject="Scheduled", body="At nine thirty",
        send_at=typed, time_zone="Europe/Berlin"))
    assert resp.status_code == 302
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="never@example.test", subject="Cancelled", body="Not at all",
        send_at=typed, time_zone="Europe/Berlin"))
    later, never = outbound_rows(rita.addon)
    assert aware(later.next_attempt_at) == when and later.state == "queued"
    outbox = rita.client.get("/integrated-email/outbox").get_data(as_text=True)
    assert outbox.count("Cancel sending") == 2
    rita.client.post(f"/integrated-email/outbox/{never.id}/cancel", data=form())
    _tick(rita)
    assert smtp_lab.received == []  # not before its time
    _advance_past(when)
    _tick(rita)
    got = smtp_lab.wait_for(1)
    assert [r.rcpt_tos for r in got] == [("later@example.test",)]
    _tick(rita)
    assert len(smtp_lab.received) == 1
    rows = {r.subject: r for r in outbound_rows(rita.addon)}
    assert rows["Scheduled"].state == "filed" and rows["Cancelled"].state == "cancelled"
    # Once it has gone out it cannot be cancelled.
    rita.client.post(f"/integrated-email/outbox/{rows['Scheduled'].id}/cancel", data=form())
    with rita.client.session_transaction() as session:
        assert "can no longer be cancelled" in str(session.get("_flashes"))
    assert {r.state for r in outbound_rows(rita.addon)} == {"filed", "cancelled"}


def test_scheduled_bulk_starts_at_its_time_and_a_cancelled_one_never(rita, smtp_lab):
    typed, when = _tomorrow_9_berlin()
    recs = [rita.host.add_record("candidate", f"F{i}", "L", f"sched{i}@candidates.test")
            for i in range(4)]
    ids = [str(r.num) for r in recs]
    jobs = []
    for subject in ("Planned", "Dropped"):
        resp = rita.client.post("/integrated-email/bulk/send", data=form(
            candidate_ids=ids, subject=subject, body="Hello {{ first_name }}",
            send_at=typed, time_zone="Europe/Berlin"))
        assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
        jobs.append(int(resp.headers["Location"].rsplit("/", 1)[1]))
    planned, dropped = jobs
    page = rita.client.get(f"/integrated-email/bulk/{planned}").get_data(as_text=True)
    assert "Scheduled for" in page and "Europe/Berlin" in page
    rita.client.post(f"/integrated-email/bulk/{dropped}/cancel", data=form())
    _tick(rita)
    assert smtp_lab.received == [] and job(rita.addon, planned).state == "queued"
    _advance_past(when)
    _tick(rita)
    got = smtp_lab.wait_for(4)
    assert sorted(r.rcpt_tos[0] for r in got) == sorted(r.email for r in recs)
    assert job(rita.addon, planned).state == "done"
    assert job(rita.addon, dropped).state == "cancelled"
    _tick(rita)
    assert len(smtp_lab.received) == 4


@pytest.mark.parametrize("send_at, zone, sentence", [
    ("2001-01-01T09:00", "UTC", "That time has passed"),
    ("tomorrow at nine", "UTC", "Enter the date and time like"),
    ("2099-01-01T09:00", "UTC", "Schedule at most a year ahead"),
    ("next", "Mars/Olympus_Mons", "is not a time zone"),
    ("next", "../../etc/passwd", "is not a time zone"),
])
def test_schedule_times_that_cannot_be_used_are_refused_and_nothing_is_queued(
        rita, smtp_lab, send_at, zone, sentence):
    if send_at == "next":
        send_at = _tomorrow_9_berlin()[0]
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="x@example.test", subject="Hi", body="x", send_at=send_at, time_zone=zone))
    assert resp.status_code == 422 and sentence in resp.get_data(as_text=True)
    ids = [str(rita.host.add_record("candidate", "A", "B", "ab@candidates.test").num)]
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids, subject="Hi", body="x", send_at=send_at, time_zone=zone))
    assert resp.status_code == 422 and sentence in resp.get_data(as_text=True)
    assert outbound_rows(rita.addon) == [] and smtp_lab.received == []


def _set_now(target: datetime) -> None:
    clock.set_clock(0, 1)
    clock.set_clock((target - clock.now()).total_seconds(), 1)


def test_schedule_window_holds_a_bulk_until_the_window_opens(rita, smtp_lab):
    utc = zoneinfo.ZoneInfo("UTC")
    saturday = datetime(2027, 1, 2, 10, 0, tzinfo=utc)  # a Saturday
    _set_now(saturday)
    recs = [rita.host.add_record("candidate", f"W{i}", "L", f"win{i}@candidates.test")
            for i in range(3)]
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=[str(r.num) for r in recs], subject="Hi", body="Hello",
        window="on", window_days=["0", "1", "2", "3", "4"], window_start="08:00",
        window_end="18:00", time_zone="Europe/Berlin"))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    from tests.integration.send_helpers import wait_until
    waiting = wait_until(lambda: (lambda j: j if j.lease_owner == "paused" else None)(
        job(rita.addon, job_id)))
    # Monday 08:00 in Berlin is 07:00 UTC.
    assert aware(waiting.lease_until) == datetime(2027, 1, 4, 7, 0, tzinfo=utc)
    assert "Mon, Tue, Wed, Thu, Fri 08:00–18:00 (Europe/Berlin)" in waiting.notice
    assert smtp_lab.received == []
    _set_now(datetime(2027, 1, 4, 6, 59, tzinfo=utc))
    _tick(rita)
    assert smtp_lab.received == []
    _set_now(datetime(2027, 1, 4, 7, 1, tzinfo=utc))
    _tick(rita)
    assert len(smtp_lab.wait_for(3)) == 3 and job(rita.addon, job_id).state == "done"


@pytest.mark.parametrize("fields, sentence", [
    ({"window_days": []}, "Tick at least one day"),
    ({"window_start": "18:00", "window_end": "08:00"}, "must end after it starts"),
    ({"window_start": "8 o'clock"}, "like 08:00 and 18:00"),
])
def test_schedule_window_that_cannot_be_used_is_refused(rita, smtp_lab, fields, sentence):
    ids = [str(rita.host.add_record("candidate", "A", "B", "ab@candidates.test").num)]
    data = {"window": "on", "window_days": ["0"], "window_start": "08:00",
            "window_end": "18:00", **fields}
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids, subject="Hi", body="x", **data))
    assert resp.status_code == 422 and sentence in resp.get_data(as_text=True)
    assert outbound_rows(rita.addon) == []


def test_scheduled_message_edited_before_its_time_goes_out_as_edited_once(rita, smtp_lab):
    typed, when = _tomorrow_9_berlin()
    rita.client.post("/integrated-email/compose", data=form(
        to="edit@example.test", subject="First draft", body="Old text",
        send_at=typed, time_zone="Europe/Berlin"))
    (row,) = outbound_rows(rita.addon)
    page = rita.client.post(f"/integrated-email/outbox/{row.id}/edit", data=form())
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "First draft" in text and "Old text" in text
    assert when.strftime("%Y-%m-%dT%H:%M") in text  # the time kept (in UTC)
    rita.client.post("/integrated-email/compose", data=form(
        to="edit@example.test", subject="Second draft", body="New text",
        send_at=when.strftime("%Y-%m-%dT%H:%M"), time_zone="UTC"))
    _advance_past(when)
    _tick(rita)
    (got,) = smtp_lab.wait_for(1)
    assert b"Second draft" in got.data and b"Old text" not in got.data
    _tick(rita)
    assert len(smtp_lab.received) == 1
    states = sorted(r.state for r in outbound_rows(rita.addon))
    assert states == ["cancelled", "filed"]
