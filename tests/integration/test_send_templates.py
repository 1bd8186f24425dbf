"""Saved templates and signatures through HTTP against the lab SMTP: a shared template
with merge fields used in bulk, its checks and whose it is; a mailbox signature under
new mail, above a reply's quote, escaped in formatted mail."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from plugin.models import Message
from plugin.models.deliverability import MailTemplate
from tests.helpers import signed_in
from tests.integration.send_helpers import form, header, job, make_sender, wait_until


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    return make_sender(mini, dovecot, smtp_lab)


def _save_template(client, **values):
    data = {"name": "Role pitch", "subject": "A role for you, {{ first_name }}",
            "body": "Dear {{ full_name }},\n\nA role might suit you.\n\n{{ recruiter_signature }}",
            **values}
    return client.post("/integrated-email/templates", data=form(**data))


def test_shared_template_with_merge_fields_is_used_in_bulk(rita, smtp_lab):
    assert _save_template(rita.client, shared="on").status_code == 302
    with rita.addon.session() as s:
        tpl = s.scalars(select(MailTemplate)).one()
    recs = [rita.host.add_record("candidate", f"Ann{i}", f"Lee{i}", f"tpl{i}@candidates.test")
            for i in range(3)]
    ids = [str(r.num) for r in recs]
    page = rita.client.post("/integrated-email/bulk/new", data=form(
        candidate_ids=ids, template=str(tpl.id))).get_data(as_text=True)
    assert 'value="A role for you, {{ first_name }}"' in page
    assert "Dear {{ full_name }}," in page
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids, subject=tpl.subject, body=tpl.body, signature="Rita, Acme"))
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    wait_until(lambda: job(rita.addon, job_id).finished)
    for rec in smtp_lab.wait_for(3):
        i = int(re.match(r"tpl(\d+)@", rec.rcpt_tos[0]).group(1))
        assert header(rec.data, "Subject") == f"A role for you, Ann{i}"
        assert f"Dear Ann{i} Lee{i},".encode() in rec.data and b"Rita, Acme" in rec.data
    # Another user sees the shared template in the picker, but may not change it.
    rob = rita.host.add_person("Rob Recruiter", "rob@example.test")
    rob_client = signed_in(rita.app, rob)
    listing = rob_client.get("/integrated-email/templates").get_data(as_text=True)
    assert "Role pitch" in listing and "Everyone" in listing
    assert rob_client.get(f"/integrated-email/templates/{tpl.id}").status_code == 404
    assert rob_client.post(f"/integrated-email/templates/{tpl.id}/delete",
                           data=form()).status_code == 404


def test_template_merge_fields_are_checked_and_private_ones_stay_private(rita):
    resp = _save_template(rita.client, body="Hello {{ config }}")
    assert resp.status_code == 422 and "was not saved" in resp.get_data(as_text=True)
    resp = _save_template(rita.client, name="", subject="Hi")
    assert resp.status_code == 422 and "Give the template a name" in resp.get_data(as_text=True)
    assert _save_template(rita.client, name="Mine only").status_code == 302
    with rita.addon.session() as s:
        (tpl,) = s.scalars(select(MailTemplate)).all()
        assert not tpl.shared
    rob = rita.host.add_person("Rob Recruiter", "rob@example.test")
    rob_client = signed_in(rita.app, rob)
    assert "Mine only" not in rob_client.get("/integrated-email/templates").get_data(
        as_text=True)


def test_signature_under_new_mail_above_a_reply_quote_and_escaped_when_formatted(
        rita, smtp_lab):
    sig = "Rita Recruiter\n**Acme** Talent <script>alert(1)</script>"
    resp = rita.client.post("/integrated-email/signature", data=form(signature=sig))
    assert resp.status_code == 302
    page = rita.client.get("/integrated-email/compose").get_data(as_text=True)
    assert "\n-- \nRita Recruiter\n**Acme** Talent &lt;script&gt;" in page
    resp = rita.client.post("/integrated-email/compose", data=form(
        to="jane@example.test", subject="Hello", formatted="on",
        body="Hi Jane\n\n-- \n" + sig))
    assert resp.status_code == 302
    raw = smtp_lab.wait_for(1)[0].data
    html = raw.split(b"Content-Type: text/html", 1)[1]
    assert b"<script>" not in html and b"&lt;script&gt;" in html
    assert b"<strong>Acme</strong>" in html
    with rita.addon.session() as s:
        sent_id = s.scalar(select(Message.id).where(Message.origin == "ats"))
    reply = rita.client.get(f"/integrated-email/compose/reply/{sent_id}?mode=reply")
    text = reply.get_data(as_text=True)
    body = re.search(r'<textarea id="ie-body"[^>]*>(.*?)</textarea>', text, re.S).group(1)
    assert body.index("-- \nRita Recruiter") < body.index("wrote:")
    bulk = rita.client.post("/integrated-email/bulk/new", data=form(
        candidate_ids=[str(rita.host.add_record("candidate", "A", "B", "ab@c.test").num)]))
    assert "Rita Recruiter\n**Acme**" in bulk.get_data(as_text=True)


def test_signature_with_a_nul_is_refused_and_nothing_saved(rita):
    resp = rita.client.post("/integrated-email/signature", data=form(signature="Rita\x00"))
    assert resp.status_code == 422 and "NUL" in resp.get_data(as_text=True)
    assert "\n-- \n" not in rita.client.get("/integrated-email/compose").get_data(as_text=True)


@pytest.mark.parametrize("target, lands", [
    ("/integrated-email/compose?to=a@b.test", "/integrated-email/compose?to=a@b.test"),
    ("https://evil.test/", "/integrated-email/signature"),
    ("//evil.test/integrated-email/", "/integrated-email/signature"),
    ("/integrated-email//evil.test", "/integrated-email/signature"),
    ("/integrated-email/\\\\evil.test", "/integrated-email/signature"),
    ("/elsewhere", "/integrated-email/signature"),
])
def test_signature_save_returns_only_to_the_add_ons_own_pages(rita, target, lands):
    resp = rita.client.post("/integrated-email/signature", data=form(signature="Rita",
                                                                    next=target))
    assert resp.status_code == 302 and resp.headers["Location"] == lands
