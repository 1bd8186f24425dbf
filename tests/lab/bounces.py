"""Bounce reports as mail servers write them, for the lab SMTP server (which plays the
recipient's server for addresses starting with "bounce") and the bounce tests.

``dsn`` is an RFC 3464 delivery status notification, shaped like Postfix's; the others
are the common non-standard formats, shaped like qmail's and Exim's own texts."""
from __future__ import annotations

from email.utils import format_datetime, make_msgid
from datetime import UTC, datetime

#: what the lab's "recipient server" says per local-part prefix: (action, status, text)
OUTCOMES = {
    "bouncelater": ("delayed", "4.2.2", "452 4.2.2 Mailbox full, will retry"),
    "bounce": ("failed", "5.1.1", "550 5.1.1 <{rcpt}>: Recipient address rejected: "
               "User unknown in virtual mailbox table"),
}


def outcome_for(rcpt: str) -> tuple[str, str, str] | None:
    local = rcpt.split("@", 1)[0].lower()
    for prefix in sorted(OUTCOMES, key=len, reverse=True):
        if local.startswith(prefix):
            action, status, text = OUTCOMES[prefix]
            return action, status, text.format(rcpt=rcpt)
    return None


def _headers_of(original: bytes) -> bytes:
    return original.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")


def dsn(original: bytes, sender: str, rcpt: str, action: str, status: str,
        diagnostic: str, reporter: str = "mx.candidates.test") -> bytes:
    """A multipart/report; report-type=delivery-status, as Postfix sends it."""
    boundary = "lab-dsn-" + make_msgid().strip("<>").split("@")[0]
    when = format_datetime(datetime.now(UTC))
    subject = ("Delayed Mail (still being retried)" if action == "delayed"
               else "Undelivered Mail Returned to Sender")
    head = (f"From: MAILER-DAEMON@{reporter} (Mail Delivery System)\n"
            f"To: {sender}\n"
            f"Subject: {subject}\n"
            f"Date: {when}\n"
            f"Message-ID: {make_msgid(domain=reporter)}\n"
            "MIME-Version: 1.0\n"
            f"Content-Type: multipart/report; report-type=delivery-status;\n"
            f" boundary=\"{boundary}\"\n\n")
    text = (f"--{boundary}\nContent-Description: Notification\n"
            "Content-Type: text/plain; charset=us-ascii\n\n"
            f"This is the mail system at host {reporter}.\n\n"
            "I'm sorry to have to inform you that your message could not\n"
            "be delivered to one or more recipients.\n\n"
            f"<{rcpt}>: host {reporter} said: {diagnostic}\n\n")
    status_part = (f"--{boundary}\nContent-Description: Delivery report\n"
                   "Content-Type: message/delivery-status\n\n"
                   f"Reporting-MTA: dns; {reporter}\n"
                   f"Arrival-Date: {when}\n\n"
                   f"Final-Recipient: rfc822; {rcpt}\n"
                   f"Original-Recipient: rfc822;{rcpt}\n"
                   f"Action: {action}\n"
                   f"Status: {status}\n"
                   f"Remote-MTA: dns; {reporter}\n"
                   f"Diagnostic-Code: smtp; {diagnostic}\n\n")
    returned = (f"--{boundary}\nContent-Description: Undelivered Message Headers\n"
                "Content-Type: text/rfc822-headers\n\n").encode() + _headers_of(original) + \
        f"\n\n--{boundary}--\n".encode()
    return (head + text + status_part).encode().replace(b"\n", b"\r\n") + \
        returned.replace(b"\n", b"\r\n")


def qmail(original: bytes, sender: str, rcpt: str) -> bytes:
    """qmail-send's failure notice: plain text, the original quoted after a marker."""
    return ("From: MAILER-DAEMON@mail.candidates.test\n"
            f"To: {sender}\nSubject: failure notice\n"
            f"Date: {format_datetime(datetime.now(UTC))}\n"
            f"Message-ID: {make_msgid(domain='mail.candidates.test')}\n\n"
            "Hi. This is the qmail-send program at mail.candidates.test.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
            "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
            f"<{rcpt}>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
            "--- Below this line is a copy of the message.\n\n").encode().replace(
        b"\n", b"\r\n") + original


def exim(original: bytes, sender: str, rcpt: str) -> bytes:
    """Exim's "Mail delivery failed" with X-Failed-Recipients, the original appended."""
    return ("From: Mail Delivery System <Mailer-Daemon@exim.candidates.test>\n"
            f"To: {sender}\nSubject: Mail delivery failed: returning message to sender\n"
            f"X-Failed-Recipients: {rcpt}\n"
            "Auto-Submitted: auto-replied\n"
            f"Date: {format_datetime(datetime.now(UTC))}\n"
            f"Message-ID: {make_msgid(domain='exim.candidates.test')}\n\n"
            "This message was created automatically by mail delivery software.\n\n"
            "A message that you sent could not be delivered to one or more of its\n"
            "recipients. This is a permanent error. The following address(es) failed:\n\n"
            f"  {rcpt}\n    retry timeout exceeded\n\n"
            "------ This is a copy of the message, including all the headers. ------\n\n"
            ).encode().replace(b"\n", b"\r\n") + original
