"""Shared set-up of the sending tests: an admin who saved settings, a recruiter whose
mailbox is a lab Dovecot user sending through the lab SMTP, and candidates."""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import Mailbox
from plugin.models.outbound import BulkJob, OutboundMessage
from tests.helpers import form, mailbox_form, save_global_settings, signed_in


@dataclass
class Sender:
    app: object
    host: object
    addon: object
    person: object
    user: object        # the lab MailUser of the sender
    client: object      # Flask test client signed in as the sender
    admin_client: object
    mailbox_id: int


def lab_user(dovecot, prefix: str):
    return dovecot.add_user(f"{prefix}{secrets.token_hex(3)}", f"pw-{secrets.token_urlsafe(9)}")


def make_sender(mini, dovecot, smtp_lab, protocol: str = "imap",
                **settings) -> Sender:
    app, host, addon = mini
    admin = host.add_person("Ada Admin", "ada@example.test", admin=True)
    admin_client = signed_in(app, admin)
    save_global_settings(admin_client, **settings)
    user = lab_user(dovecot, "rita")
    person = host.add_person("Rita Recruiter", user.email)
    client = signed_in(app, person)
    extra = {}
    if protocol == "pop3":
        extra = {"protocol": "pop3", "in_port": str(dovecot.pop3s)}
    resp = client.post("/integrated-email/mailboxes/new",
                       data=mailbox_form(dovecot, smtp_lab, user, **extra))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:3000]
    with Session(addon.engine) as s:
        mb_id = s.scalar(select(Mailbox.id).where(Mailbox.user_id == person.get_id()))
    return Sender(app, host, addon, person, user, client, admin_client, mb_id)


def outbound_rows(addon, **where) -> list[OutboundMessage]:
    with Session(addon.engine, expire_on_commit=False) as s:
        q = select(OutboundMessage).order_by(OutboundMessage.id)
        for k, v in where.items():
            q = q.where(getattr(OutboundMessage, k) == v)
        return list(s.scalars(q))


def assert_compose_refused(sender, smtp_lab, cases: list[dict]) -> None:
    """Each case (form fields over a valid message) is refused with a sentence, and
    nothing was queued or reached the SMTP server."""
    for case in cases:
        values = {"to": "ok@example.test", "subject": "Hello", "body": "x", **case}
        resp = sender.client.post("/integrated-email/compose", data=form(**values))
        assert resp.status_code == 422, case
        text = resp.get_data(as_text=True)
        assert "must be on one line" in text or "is not an email address" in text, case
    assert outbound_rows(sender.addon) == [] and smtp_lab.received == []


def job(addon, job_id: int) -> BulkJob:
    with Session(addon.engine, expire_on_commit=False) as s:
        return s.get(BulkJob, job_id)


def header(raw: bytes, name: str) -> str | None:
    """A header's value, unfolded (None when absent)."""
    m = re.search(rb"^" + name.encode() + rb":[ \t]*(.*?)\r?\n(?![ \t])", raw,
                  re.MULTILINE | re.IGNORECASE | re.DOTALL)
    if not m:
        return None
    return re.sub(r"\r?\n[ \t]+", " ", m.group(1).decode("utf-8", "replace")).strip()


def wait_until(predicate, timeout: float = 20.0, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError("condition not met in time")


__all__ = [
    "Sender",
    "form",
    "header",
    "job",
    "lab_user",
    "make_sender",
    "outbound_rows",
    "wait_until",
]
