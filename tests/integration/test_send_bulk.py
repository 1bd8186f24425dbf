"""F5 bulk email through HTTP against the lab SMTP and Dovecot (SQLite and PostgreSQL):
one individual message per recipient, merge fields, progress, limits, cancel, sandbox."""
from __future__ import annotations

import re

import pytest

from tests.integration.send_helpers import form, header, job, make_sender, outbound_rows, wait_until


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    return make_sender(mini, dovecot, smtp_lab)


def _candidates(host, n: int, without: set[int] = frozenset()) -> list:
    recs = []
    for i in range(n):
        email = None if i in without else f"cand{i}.{id(host) % 9999}@candidates.test"
        recs.append(host.add_record("candidate", f"First{i}", f"Last{i}", email))
    return recs


BODY = ("Dear {{ first_name }} {{ last_name }},\n"
        "your address is {{ email }}.\n.\n..starts with dots\n\n{{ recruiter_signature }}")


def _progress(client, job_id: int) -> str:
    resp = client.get(f"/integrated-email/bulk/{job_id}/progress", headers={"HX-Request": "true"})
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_bulk_to_50_sends_47_individual_messages(rita, smtp_lab, dovecot):
    recs = _candidates(rita.host, 50, without={5, 17, 33})
    ids = [str(r.num) for r in recs]
    page = rita.client.post("/integrated-email/bulk/new", data=form(candidate_ids=ids))
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Email 47 candidates" in html
    assert "3 selected candidates will not get this email" in html
    assert html.count("No email address.") == 3
    preview = rita.client.post("/integrated-email/bulk/preview", data=form(
        candidate_ids=ids, subject="Hi {{ first_name }}", body=BODY, signature="Rita, Acme",
        preview_for=str(recs[7].num)))
    assert "Dear First7 Last7" in preview.get_data(as_text=True)
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids, subject="Hi {{ first_name }}", body=BODY, signature="Rita, Acme"))
    assert resp.status_code == 302, resp.get_data(as_text=True)
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    # The progress fragment polls itself until the job is over, then stops polling.
    first = _progress(rita.client, job_id)
    assert "<progress" in first
    done = wait_until(lambda: (lambda t: t if 'data-state="done"' in t else None)(
        _progress(rita.client, job_id)))
    assert 'value="100"' in done and "hx-trigger" not in done
    assert re.search(r'data-count="sent">47<', done)
    assert re.search(r'data-count="remaining">0<', done)
    got = smtp_lab.wait_for(47)
    assert len(got) == 47
    addresses = {r.email for r in recs if r.email}
    for rec in got:
        (rcpt,) = rec.rcpt_tos
        raw = rec.data
        i = int(re.match(r"cand(\d+)\.", rcpt).group(1))
        assert header(raw, "To") == f"First{i} Last{i} <{rcpt}>"
        assert header(raw, "Subject") == f"Hi First{i}"
        assert f"Dear First{i} Last{i}".encode() in raw and rcpt.encode() in raw
        assert b"\r\n.\r\n..starts with dots\r\n" in raw and b"Rita, Acme" in raw
        assert not re.search(rb"^bcc:", raw, re.IGNORECASE | re.MULTILINE)
        for other in addresses - {rcpt}:
            assert other.encode() not in raw
    rows = outbound_rows(rita.addon, bulk_job_id=job_id)
    assert len(rows) == 47 and {r.state for r in rows} == {"filed"}
    assert len(dovecot.list_messages(rita.user, "Sent")) == 47
    assert len({r.message_id_header for r in rows}) == 47
    assert all(rita.host.notes_on(__import__("plugin.host", fromlist=["x"]).RecordRef(
        "candidate", str(r.num))) for r in recs if r.email)


def test_limits_are_enforced_with_a_plain_message(rita, smtp_lab):
    from tests.helpers import save_global_settings
    recs = _candidates(rita.host, 6)
    ids = [str(r.num) for r in recs]
    save_global_settings(rita.admin_client, bulk_per_send="5", bulk_per_day="8")
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids, subject="Hi", body="Hello {{ first_name }}"))
    assert resp.status_code == 422
    assert "allows at most 5 in one bulk email" in resp.get_data(as_text=True)
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids[:5], subject="Hi", body="Hello {{ first_name }}"))
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    wait_until(lambda: job(rita.addon, job_id).finished)
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids[:4], subject="Hi", body="Hello {{ first_name }}"))
    assert resp.status_code == 422
    assert "you can send 3 more today" in resp.get_data(as_text=True)
    assert len(smtp_lab.wait_for(5)) == 5


def test_cancel_stops_before_the_next_message(rita, smtp_lab):
    from tests.helpers import save_global_settings
    save_global_settings(rita.admin_client, bulk_spacing_seconds="1")
    ids = [str(r.num) for r in _candidates(rita.host, 10)]
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids, subject="Hi", body="Hello {{ first_name }}"))
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    smtp_lab.wait_for(1)
    text = rita.client.post(f"/integrated-email/bulk/{job_id}/cancel", data=form(),
                            headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<progress" in text
    final = wait_until(lambda: job(rita.addon, job_id).finished and job(rita.addon, job_id))
    assert final.state == "cancelled"
    rows = outbound_rows(rita.addon, bulk_job_id=job_id)
    sent = [r for r in rows if r.state in ("sent", "filed")]
    assert len(sent) == len(smtp_lab.received) < 10
    assert {r.state for r in rows} <= {"sent", "filed", "cancelled"}
    assert "Cancelled" in _progress(rita.client, job_id)


@pytest.mark.parametrize("template", ["{{ ''.__class__ }}", "{{ config }}",
                                      "{{ first_name.__class__.__mro__[1] }}",
                                      "{{ range(3) }}", "{{ self }}"])
def test_template_reaching_internals_is_reported_and_nothing_sent(rita, smtp_lab, template):
    ids = [str(r.num) for r in _candidates(rita.host, 2)]
    preview = rita.client.post("/integrated-email/bulk/preview", data=form(
        candidate_ids=ids, subject="Hi", body="Hello " + template)).get_data(as_text=True)
    assert "ie-alert-error" in preview
    assert "ie-preview-body" not in preview  # nothing was rendered
    assert "&lt;class" not in preview and "Config" not in preview
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids, subject="Hi", body="Hello " + template))
    text = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Nothing was sent." in text
    assert "&lt;class" not in text and "SECRET" not in text
    assert outbound_rows(rita.addon) == [] and smtp_lab.received == []


def test_bulk_from_the_host_list_needs_the_csrf_token(rita):
    resp = rita.client.post("/integrated-email/bulk/new", data={"candidate_ids": ["1"]})
    assert resp.status_code == 400
