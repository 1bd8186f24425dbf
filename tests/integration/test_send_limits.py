"""Provider limits against the lab SMTP server: a paced bulk that its server throttles
slows down and finishes with one copy each; a daily cap pauses a job until the next
day (a controllable clock), across a worker kill, with nothing sent twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from plugin.jobs import send as send_job
from plugin.sending import limits
from plugin.testing import clock
from tests.integration.send_helpers import form, job, make_sender, outbound_rows, wait_until
from tests.integration.sync_helpers import process_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    yield make_sender(mini, dovecot, smtp_lab, bulk_per_send="400", bulk_per_day="2000")
    smtp_lab.clear()


@pytest.fixture
def sending_clock():
    yield clock
    clock.set_clock(0, 1)


def save_limits(admin_client, **own) -> None:
    """The admin's sending limits page, saved with ``own`` {key: (per_minute, per_day)}."""
    data = {}
    for p in limits.PROVIDER_LIMITS:
        data[f"per_minute_{p.key}"], data[f"per_day_{p.key}"] = str(p.per_minute), str(p.per_day)
    for key, (minute, day) in own.items():
        data[f"per_minute_{key}"], data[f"per_day_{key}"] = str(minute), str(day)
    data.setdefault("per_minute_other", "0")
    data.setdefault("per_day_other", "0")
    resp = admin_client.post("/integrated-email/admin/send-limits",
                             data=form(bulk_unsubscribe="on", **data))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]


def _start_bulk(rita, n: int, tag: str) -> int:
    recs = [rita.host.add_record("candidate", f"F{i}", f"L{i}", f"{tag}{i}@candidates.test")
            for i in range(n)]
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=[str(r.num) for r in recs], subject="Hi {{ first_name }}",
        body="Hello {{ full_name }}"))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    return int(resp.headers["Location"].rsplit("/", 1)[1])


def _most_in_a_minute(times: list[float]) -> int:
    times = sorted(times)
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - 60.0:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def _copies(smtp_lab) -> Counter:
    return Counter(r for rec in smtp_lab.received for r in rec.rcpt_tos)


def test_throttled_bulk_of_300_slows_down_and_everyone_gets_one_copy(rita, smtp_lab,
                                                                     sending_clock):
    # The admin's figure (120 a minute) is more than this server takes (60 a minute,
    # then "421 4.7.0"): the job must slow down, retry the refused ones, and finish.
    save_limits(rita.admin_client, other=(120, 0))
    sending_clock.set_clock(0, 40)
    smtp_lab.clock = clock.monotonic
    smtp_lab.throttle_per_minute = 60
    job_id = _start_bulk(rita, 300, "thr")
    final = wait_until(lambda: job(rita.addon, job_id).finished and job(rita.addon, job_id),
                       timeout=240, step=0.2)
    assert final.state == "done", final.notice
    rows = outbound_rows(rita.addon, bulk_job_id=job_id)
    assert Counter(r.state for r in rows) == {"filed": 300}
    copies = _copies(smtp_lab)
    assert len(copies) == 300 and set(copies.values()) == {1}
    # It slowed down instead of hammering: a few refusals, not hundreds, and never more
    # attempts in a minute than the admin's limit, never more accepted than the server's.
    assert 1 <= smtp_lab.throttled <= 6, smtp_lab.throttled
    assert _most_in_a_minute(smtp_lab.attempts_at) <= 120
    assert _most_in_a_minute([r.at for r in smtp_lab.received]) <= 60
    with rita.addon.session() as s:
        from plugin.models.deliverability import SendPace
        pace = s.query(SendPace).filter_by(mailbox_id=rita.mailbox_id).one()
        assert pace.per_minute <= 60 and pace.throttles == smtp_lab.throttled


def test_paced_bulk_never_sends_more_in_a_minute_than_the_provider_allows(rita, smtp_lab,
                                                                         sending_clock):
    save_limits(rita.admin_client, other=(30, 0))
    sending_clock.set_clock(0, 20)
    smtp_lab.clock = clock.monotonic
    job_id = _start_bulk(rita, 45, "pace")
    page = rita.client.get(f"/integrated-email/bulk/{job_id}").get_data(as_text=True)
    assert "Expected to finish around" in page
    final = wait_until(lambda: job(rita.addon, job_id).finished and job(rita.addon, job_id),
                       timeout=120, step=0.2)
    assert final.state == "done"
    times = sorted(r.at for r in smtp_lab.received)
    assert len(times) == 45 and _most_in_a_minute(times) <= 30
    # Paced, not bursty: 45 at 30 a minute take about 88 s of the clock.
    assert times[-1] - times[0] >= 85


def _runner(rita, tmp_path, job_id: int, crashpoint: str | None = None):
    fd, path = tempfile.mkstemp(suffix=".json", dir=tmp_path)
    with os.fdopen(fd, "w") as fh:
        json.dump(process_config(rita.app, tmp_path), fh)
    env = dict(os.environ, PYTHONPATH=str(ROOT), IE_TEST_CLOCK=f"{clock._offset},1")
    env.pop("IE_CRASHPOINT", None)
    if crashpoint:
        env["IE_CRASHPOINT"] = crashpoint
    return subprocess.Popen([sys.executable, "-m", "tests.integration.send_runner", path,
                             str(job_id)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_paced_job_at_the_daily_cap_waits_for_the_next_day_even_across_a_worker_kill(
        rita, smtp_lab, tmp_path, sending_clock):
    save_limits(rita.admin_client, other=(0, 10))
    # Every send path counts: three hand-written messages use three of the ten.
    for i in range(3):
        resp = rita.client.post("/integrated-email/compose", data=form(
            to=f"single{i}@example.test", subject="Hello", body="A message by hand"))
        assert resp.status_code == 302
    assert len(smtp_lab.wait_for(3)) == 3
    job_id = _start_bulk(rita, 25, "day")
    waiting = wait_until(lambda: (lambda j: j if j.lease_owner == "paused" else None)(
        job(rita.addon, job_id)))
    assert waiting.state == "running" and "allows 10 messages in 24 hours" in waiting.notice
    assert len(smtp_lab.received) == 3 + 7
    page = rita.client.get(f"/integrated-email/bulk/{job_id}").get_data(as_text=True)
    assert "The rest go out by themselves from" in page and "Expected to finish around" in page
    # The send job leaves it alone until the provider's day has room again.
    with rita.app.app_context():
        send_job.run(rita.addon)
    assert len(smtp_lab.received) == 10
    clock.advance(86400 + 60)
    with rita.app.app_context():
        send_job.run(rita.addon)
    assert len(smtp_lab.received) == 20
    assert job(rita.addon, job_id).lease_owner == "paused"
    # Day three: the worker is killed after its third message went out.
    clock.advance(86400 + 60)
    proc = _runner(rita, tmp_path, job_id, "bulk_after_smtp:3")
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert len(smtp_lab.received) == 23
    with rita.app.app_context():
        send_job.run(rita.addon)
    final = job(rita.addon, job_id)
    assert final.state == "done", final.notice
    copies = _copies(smtp_lab)
    bulk_copies = {a: n for a, n in copies.items() if a.startswith("day")}
    # The one killed after SMTP is "unknown" (never re-sent); everyone has one copy.
    assert len(bulk_copies) == 25 and set(bulk_copies.values()) == {1}
    states = Counter(r.state for r in outbound_rows(rita.addon, bulk_job_id=job_id))
    assert states == {"filed": 24, "unknown": 1}


def test_paced_limits_page_refuses_bad_figures_keeps_them_and_is_for_admins(rita):
    data = {**_limits_form(), "per_minute_gmail": "lots", "per_day_other": "99999999999"}
    resp = rita.admin_client.post("/integrated-email/admin/send-limits", data=form(**data))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "nothing was saved" in text
    assert "Type a whole number from 0 to 100,000 for Gmail" in text
    assert 'value="lots"' in text and 'value="99999999999"' in text
    with rita.addon.session() as s:
        assert limits.all_limits(s, rita.app.config)[2].per_minute == 20  # Gmail unchanged
    assert rita.client.get("/integrated-email/admin/send-limits").status_code == 403
    assert rita.client.post("/integrated-email/admin/send-limits",
                            data=form(**_limits_form())).status_code == 403


def _limits_form() -> dict:
    data = {"per_minute_other": "0", "per_day_other": "0", "bulk_unsubscribe": "on"}
    for p in limits.PROVIDER_LIMITS:
        data[f"per_minute_{p.key}"], data[f"per_day_{p.key}"] = str(p.per_minute), str(p.per_day)
    return data
