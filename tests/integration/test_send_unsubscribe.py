"""One-click unsubscribe (RFC 8058, RFC 2369) on bulk email, through HTTP against the
lab SMTP: the headers on the bytes that went out, the public POST that needs no
session, and the hostile cases (GET, forged, altered, moved and replayed tokens)."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from itsdangerous import URLSafeSerializer
from sqlalchemy import func, select

from plugin.models.deliverability import Suppression
from tests.integration.send_helpers import form, header, job, make_sender, outbound_rows, wait_until


@pytest.fixture
def rita(mini, dovecot, smtp_lab):
    smtp_lab.clear()
    return make_sender(mini, dovecot, smtp_lab)


def _bulk(rita, smtp_lab, tag: str, n: int = 3) -> tuple[list, dict[str, bytes]]:
    recs = [rita.host.add_record("candidate", f"F{i}", f"L{i}", f"{tag}{i}@candidates.test")
            for i in range(n)]
    before = len(smtp_lab.received)
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=[str(r.num) for r in recs], subject="Hi {{ first_name }}",
        body="Hello {{ full_name }}"))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:2000]
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    wait_until(lambda: job(rita.addon, job_id).finished)
    got = smtp_lab.wait_for(before + n)[before:]
    return recs, {rec.rcpt_tos[0]: rec.data for rec in got}


def _link(raw: bytes) -> str:
    value = header(raw, "List-Unsubscribe")
    m = re.fullmatch(r"<(https://[^>\s]+)>", value or "")
    assert m, value
    return m.group(1)


def _suppressed(rita) -> list[str]:
    with rita.addon.session() as s:
        return list(s.scalars(select(Suppression.address).order_by(Suppression.id)))


def test_unsubscribe_headers_on_the_bulk_bytes_follow_rfc_8058(rita, smtp_lab):
    _recs, raws = _bulk(rita, smtp_lab, "hdr")
    links = set()
    for raw in raws.values():
        head = raw.split(b"\r\n\r\n", 1)[0]
        # Exactly one of each, on one line each: an https URL in angle brackets, and
        # the one value RFC 8058 allows.
        assert len(re.findall(rb"(?im)^List-Unsubscribe:", head)) == 1
        assert re.search(rb"(?m)^List-Unsubscribe: <https://[!-~]+>\r\n", head)
        assert re.findall(rb"(?im)^List-Unsubscribe-Post:(.*)$", head) == \
            [b" List-Unsubscribe=One-Click\r"]
        link = _link(raw)
        assert link.encode() in raw.split(b"\r\n\r\n", 1)[1]  # and under the text
        links.add(link)
    assert len(links) == 3  # signed per recipient
    rows = outbound_rows(rita.addon)
    assert {r.unsubscribe_url for r in rows} == links
    # A hand-written message has none.
    rita.client.post("/integrated-email/compose", data=form(
        to="single@example.test", subject="Hello", body="By hand"))
    single = smtp_lab.wait_for(4)[-1].data
    assert header(single, "List-Unsubscribe") is None


def test_one_click_unsubscribe_post_needs_no_session_and_replay_changes_nothing(
        rita, smtp_lab):
    _recs, raws = _bulk(rita, smtp_lab, "oneclick")
    addr, raw = sorted(raws.items())[0]
    path = urlsplit(_link(raw)).path
    stranger = rita.app.test_client()  # no session, no CSRF token: a mail provider
    resp = stranger.post(path, data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 200
    assert "You are unsubscribed" in resp.get_data(as_text=True)
    assert resp.headers["Cache-Control"] == "no-store"
    assert _suppressed(rita) == [addr]
    again = stranger.post(path, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200 and "was already unsubscribed" in again.get_data(as_text=True)
    assert _suppressed(rita) == [addr]


def test_unsubscribe_get_only_asks_and_a_post_without_one_click_does_nothing(rita, smtp_lab):
    _recs, raws = _bulk(rita, smtp_lab, "getonly")
    path = urlsplit(_link(next(iter(raws.values())))).path
    stranger = rita.app.test_client()
    page = stranger.get(path)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and 'value="One-Click"' in text and "<script" not in text
    assert stranger.head(path).status_code == 200
    assert stranger.post(path, data={}).status_code == 400
    assert stranger.post(path, data={"List-Unsubscribe": "yes"}).status_code == 400
    assert _suppressed(rita) == []


def test_forged_altered_or_moved_unsubscribe_tokens_do_nothing_and_say_so(rita, smtp_lab):
    _recs, raws = _bulk(rita, smtp_lab, "forge", n=2)
    (a, raw_a), (b, _raw_b) = sorted(raws.items())
    path = urlsplit(_link(raw_a)).path
    prefix, token = path.rsplit("/", 1)
    row_a = next(r for r in outbound_rows(rita.addon) if a in r.to_addrs)
    wrong_key = URLSafeSerializer(b"not our key", salt="unsubscribe")
    forged = [
        token[:-2] + ("AA" if not token.endswith("AA") else "BB"),   # signature changed
        token[:5] + ("x" if token[5] != "x" else "y") + token[6:],   # payload changed
        wrong_key.dumps({"m": row_a.message_id_header, "a": b}),     # another address
        wrong_key.dumps({"m": "never-sent@example.test", "a": a}),   # a message never sent
        "", "..", "%00", "A" * 5000,
    ]
    stranger = rita.app.test_client()
    for bad in forged:
        resp = stranger.post(f"{prefix}/{bad}", data={"List-Unsubscribe": "One-Click"})
        assert resp.status_code in (400, 404), bad
        if resp.status_code == 400:
            assert "This unsubscribe link is not valid" in resp.get_data(as_text=True)
            assert "Nothing was changed" in resp.get_data(as_text=True)
    # Signed with our key, but naming an address the message did not go to.
    from plugin.sending import unsubscribe
    moved = unsubscribe.token_for(rita.addon.secrets, row_a.message_id_header, b)
    resp = stranger.post(f"{prefix}/{moved}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 400
    never = unsubscribe.token_for(rita.addon.secrets, "never-sent@example.test", a)
    assert stranger.post(f"{prefix}/{never}", data={
        "List-Unsubscribe": "One-Click"}).status_code == 400
    assert _suppressed(rita) == []


def test_unsubscribed_addresses_are_skipped_by_the_next_bulk_with_the_reason(rita, smtp_lab):
    recs, raws = _bulk(rita, smtp_lab, "skip")
    gone = sorted(raws)[1]
    rita.app.test_client().post(urlsplit(_link(raws[gone])).path,
                                data={"List-Unsubscribe": "One-Click"})
    ids = [str(r.num) for r in recs]
    page = rita.client.post("/integrated-email/bulk/new", data=form(candidate_ids=ids))
    text = page.get_data(as_text=True)
    assert "Email 2 candidates" in text and "Does not want bulk email (unsubscribed" in text
    before = len(smtp_lab.received)
    resp = rita.client.post("/integrated-email/bulk/send", data=form(
        candidate_ids=ids, subject="Again", body="Hello again"))
    job_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    wait_until(lambda: job(rita.addon, job_id).finished)
    later = smtp_lab.wait_for(before + 2)[before:]
    assert sorted(r.rcpt_tos[0] for r in later) == sorted(set(raws) - {gone})
    shown = rita.client.get(f"/integrated-email/bulk/{job_id}").get_data(as_text=True)
    assert "Does not want bulk email" in shown
    # The record says so too; the others' records do not.
    by_email = {r.email: r for r in recs}
    for addr, rec in by_email.items():
        panel = rita.client.get(f"/integrated-email/records/candidate/{rec.num}/timeline")
        assert ("Does not want bulk email" in panel.get_data(as_text=True)) == (addr == gone)
    # A message a person writes by hand is never blocked.
    resp = rita.client.post("/integrated-email/compose", data=form(
        to=gone, subject="Personal", body="Just you"))
    assert resp.status_code == 302
    assert smtp_lab.wait_for(before + 3)[-1].rcpt_tos == (gone,)


def test_unsubscribe_links_can_be_turned_off_by_the_admin(rita, smtp_lab):
    from plugin.sending import limits
    data = {"per_minute_other": "0", "per_day_other": "0"}  # no "bulk_unsubscribe": off
    for p in limits.PROVIDER_LIMITS:
        data[f"per_minute_{p.key}"], data[f"per_day_{p.key}"] = str(p.per_minute), str(p.per_day)
    resp = rita.admin_client.post("/integrated-email/admin/send-limits", data=form(**data))
    assert resp.status_code == 302
    _recs, raws = _bulk(rita, smtp_lab, "off", n=1)
    raw = next(iter(raws.values()))
    assert header(raw, "List-Unsubscribe") is None and b"unsubscribe" not in raw.lower()
    with rita.addon.session() as s:
        assert s.scalar(select(func.count()).select_from(Suppression)) == 0


@pytest.mark.parametrize("csrf_first", [True, False])
def test_unsubscribe_post_gets_past_a_hosts_flask_wtf_csrf_protect(tmp_path, csrf_first):
    # RFC 8058 POSTs carry no CSRF token: a host's CSRFProtect, set up before or after
    # the add-on, must leave this one view to its signed token (and nothing else).
    from flask import Flask
    from flask_wtf.csrf import CSRFProtect

    from plugin import IntegratedEmail
    from tests.conftest import TEST_KEY
    from tests.hosts.mini_host import MiniHost

    app = Flask("wtf", instance_path=str(tmp_path / "inst"))
    app.config.update(IE_SECRET_KEYS=TEST_KEY, IE_SCHEDULER="off", SECRET_KEY="x",
                      IE_DATABASE_URL=f"sqlite:///{tmp_path}/w.db")
    if csrf_first:
        CSRFProtect(app)
    ie = IntegratedEmail(app, host=MiniHost())
    if not csrf_first:
        CSRFProtect(app)
    ie.migrate()
    ie.set_active(True)
    client = app.test_client()
    resp = client.post("/integrated-email/unsubscribe/not-a-token",
                       data={"List-Unsubscribe": "One-Click"})
    assert resp.status_code == 400
    assert "This unsubscribe link is not valid" in resp.get_data(as_text=True)
    # Every other state-changing URL of the add-on is still Flask-WTF's to guard.
    other = client.post("/integrated-email/bulk/send", data={})
    assert other.status_code == 400
    assert "This unsubscribe link" not in other.get_data(as_text=True)
    ie.engine.dispose()
