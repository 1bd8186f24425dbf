"""`make demo`: the reference host ATS with Integrated Email, on SQLite, with a
sandbox mail server (the test lab's Dovecot and SMTP) already holding mail from
demo candidates, so set-up can be finished and mail seen within two minutes.

The sandbox is for the demo only: it listens on 127.0.0.1, and 127.0.0.1 is
allow-listed for mail hosts in this process alone. It also runs a DNS server and an
autoconfig web server for one demo domain (DEMO_DOMAIN), so that typing an address
there shows settings discovery fill the form.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import select

from examples.host_ats import create_app
from examples.host_ats.models import Candidate, Contact
from examples.host_ats.seed import DEMO_USERS, seed_demo
from tests.lab.authority import LabAuthority
from tests.lab.autoconfig_web import AutoconfigWeb, client_config, document
from tests.lab.dovecot import Dovecot
from tests.lab.nameserver import LabDns
from tests.lab.oauth import OAuthLab
from tests.lab.smtp import SmtpLab

INSTANCE = Path(__file__).resolve().parent / "host_ats" / "instance"
WEB_PORT = int(os.environ.get("DEMO_PORT", "5000"))
MAIL_PASSWORD = "mailpass"
#: the company domain whose mail settings the sandbox publishes (autoconfig + DNS)
DEMO_DOMAIN = "northwind.test"
SUBJECTS = [
    ("Application for the {title} role", "Hello,\n\nI would like to apply for the {title} "
     "position. My CV is attached.\n\nBest regards,\n{name}"),
    ("Re: Interview on Thursday", "Hi,\n\nThursday at 10:00 works for me. Looking forward "
     "to it.\n\nThanks,\n{name}"),
    ("Question about the offer", "Hello,\n\nCould you tell me more about the notice period "
     "and remote work?\n\nKind regards,\n{name}"),
]


def _cv_pdf(name: str) -> bytes:
    """A one-page PDF that says whose CV it is (so Forward has a real file to carry)."""
    text = f"Curriculum vitae - {name}".replace("\\", "").replace("(", "").replace(")", "")
    stream = f"BT /F1 18 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
               b"/Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def _message(sender: str, sender_name: str, to: str, subject: str, body: str,
             when: datetime, key: str, cv: bool = False) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{sender_name} <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    # Stable ids: a refilled sandbox never shows the same demo mail twice.
    msg["Message-ID"] = f"<demo-{key}@{sender.split('@')[1]}>"
    msg.set_content(body)
    if cv:
        msg.add_attachment(_cv_pdf(sender_name), maintype="application", subtype="pdf",
                           filename=f"CV {sender_name}.pdf")
    return msg.as_bytes()


def fill_demo_mailboxes(dovecot: Dovecot, app) -> list[tuple[str, str]]:
    """One sandbox mailbox per demo user, each holding mail from a few candidates."""
    db = app.extensions["host_ats.db"]
    with db.sessions() as s:
        candidates = [c for c in s.scalars(select(Candidate).order_by(Candidate.id)) if c.email]
        contacts = [c for c in s.scalars(select(Contact).order_by(Contact.id)) if c.email]
    logins = []
    now = datetime.now(timezone.utc)
    for n, (email, _pw, _role, _name) in enumerate(DEMO_USERS):
        local = email.split("@")[0]
        user = dovecot.user(local) or dovecot.add_user(local, MAIL_PASSWORD)
        if not dovecot.list_messages(user, "INBOX"):
            picks = candidates[n * 5:(n + 1) * 5]
            for i, cand in enumerate(picks):
                subject, body = SUBJECTS[i % len(SUBJECTS)]
                name = f"{cand.first_name} {cand.last_name}"
                raw = _message(cand.email, name, email, subject.format(title=cand.title),
                               body.format(title=cand.title, name=name),
                               now - timedelta(hours=5 * i + n), f"{local}-{i}",
                               cv=i % len(SUBJECTS) == 0)
                dovecot.deliver(user, raw)
            contact = contacts[n % len(contacts)]
            dovecot.deliver(user, _message(
                contact.email, f"{contact.first_name} {contact.last_name}", email,
                "Shortlist for the open roles", "Hi,\n\nPlease send the shortlist by Friday."
                "\n\nThanks", now - timedelta(days=1), f"{local}-contact"))
            dovecot.deliver(user, _message(
                "newsletter@example.test", "Industry News", email, "This week in hiring",
                "Not from a candidate: this one is not recorded on any record.",
                now - timedelta(days=2), f"{local}-news"))
        logins.append((email, MAIL_PASSWORD))
    return logins


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # SO_REUSEADDR as the servers use it: a port in TIME_WAIT after a restart is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _pick_ports(wanted: tuple[int, ...]) -> tuple[int, ...] | None:
    """The demo's usual ports when all are free, else let the lab choose."""
    return wanted if all(_port_free(p) for p in wanted) else None


def _publish_demo_domain(authority: LabAuthority, dovecot: Dovecot,
                         smtp: SmtpLab) -> tuple[LabDns, AutoconfigWeb]:
    """DNS and autoconfig for DEMO_DOMAIN: its published configuration names the sandbox
    Dovecot and SMTP as mail.<domain> (the sandbox certificate covers that name)."""
    dns = LabDns().start()
    mail_host = f"mail.{DEMO_DOMAIN}"
    for name in (f"autoconfig.{DEMO_DOMAIN}", mail_host):
        dns.zone.add_a(name, "127.0.0.1")
    web = AutoconfigWeb(authority).start()
    web.autoconfig(DEMO_DOMAIN, document(client_config(
        imap=(mail_host, dovecot.imaps, "SSL"), smtp=(mail_host, smtp.tls_port, "SSL"))))
    return dns, web


def main() -> int:
    if not _port_free(WEB_PORT):
        print(f"Port {WEB_PORT} is in use; stop what runs there or set DEMO_PORT.",
              file=sys.stderr)
        return 1
    INSTANCE.mkdir(parents=True, exist_ok=True)
    authority = LabAuthority(INSTANCE / "sandbox-certs")
    certs = authority.lab_certs(extra_names=(f"mail.{DEMO_DOMAIN}",))
    # Fixed ports and a kept mail folder, so a mailbox set up yesterday still works.
    mail_dir = INSTANCE / "sandbox-mail"
    mail_dir.mkdir(exist_ok=True)
    # The sandbox sign-in service stands in for Google's and Microsoft's: Dovecot and the
    # SMTP server check its tokens, so "Sign in with ..." works end to end.
    oauth_ports = _pick_ports((10444,))
    oauth = OAuthLab(certs).start(port=oauth_ports[0] if oauth_ports else None)
    callbacks = tuple(f"http://{h}:{WEB_PORT}/integrated-email/oauth/callback"
                      for h in ("127.0.0.1", "localhost"))
    clients = {key: oauth.add_client(redirect_uris=callbacks) for key in ("google", "microsoft")}
    dovecot = Dovecot(certs, workdir=mail_dir, oauth=oauth)
    dovecot.start(ports=_pick_ports((10143, 10993, 10110, 10995)))
    smtp = SmtpLab(dovecot, with_plain=False).start(ports=_pick_ports((10587, 10465)))
    servers = {"imap": f"localhost:{dovecot.imaps}:ssl", "pop3": f"localhost:{dovecot.pop3s}:ssl",
               "smtp": f"localhost:{smtp.tls_port}:ssl", "token_url": oauth.token_url,
               "authorize_url": oauth.authorize_url, "revoke_url": oauth.revoke_url}

    dns, web = _publish_demo_domain(authority, dovecot, smtp)

    app = create_app({
        "INSTANCE_PATH": str(INSTANCE),
        "IE_ALLOWED_MAIL_HOSTS": "127.0.0.1:1024-65535,localhost:1024-65535",
        "IE_CA_FILE": str(certs.ca_cert),
        "IE_GENERATE_SECRET_KEY": True,
        "IE_DISPATCH_SECONDS": 10,
        # Settings discovery (and mail host names) ask the sandbox's DNS server.
        "IE_DISCOVERY_NAMESERVERS": "127.0.0.1",
        "IE_DISCOVERY_DNS_PORT": dns.port,
        "IE_DISCOVERY_HTTPS_PORT": web.port,
        # Both sign-in buttons, against the sandbox: addresses at contoso.test are
        # "Microsoft" mail, at fabrikam.test "Google" mail (same sandbox mailboxes).
        "IE_OAUTH_ENDPOINTS": {
            "microsoft": {**servers, "domains": "contoso.test"},
            "google": {**servers, "userinfo_url": oauth.userinfo_url, "domains": "fabrikam.test"}},
        "IE_OAUTH_MICROSOFT_CLIENT_ID": clients["microsoft"].client_id,
        "IE_OAUTH_MICROSOFT_CLIENT_SECRET": clients["microsoft"].client_secret,
        "IE_OAUTH_GOOGLE_CLIENT_ID": clients["google"].client_id,
        "IE_OAUTH_GOOGLE_CLIENT_SECRET": clients["google"].client_secret,
    })
    with app.app_context():
        db = app.extensions["host_ats.db"]
        with db.sessions() as s:
            seed_demo(s)
            s.commit()
    logins = fill_demo_mailboxes(dovecot, app)

    print("\n" + "=" * 72)
    print(f"Acme Recruit with Integrated Email: http://127.0.0.1:{WEB_PORT}")
    print("ATS logins:")
    for email, pw, role, name in DEMO_USERS:
        print(f"  {email:<18} {pw:<10} {role:<10} {name}")
    print("Sandbox mail server (use these in Integrated email set-up):")
    print(f"  incoming: IMAP  host localhost  port {dovecot.imaps}  SSL/TLS"
          f"   (STARTTLS on {dovecot.imap}; POP3 SSL/TLS on {dovecot.pop3s})")
    print(f"  outgoing: SMTP  host localhost  port {smtp.tls_port}  SSL/TLS"
          f"   (STARTTLS on {smtp.starttls_port})")
    for email, pw in logins:
        print(f"  mailbox {email:<18} password {pw}")
    print("Sign in with Microsoft / Google (sandbox sign-in service): in set-up, type")
    print("  rita@contoso.test (Microsoft) or rita@fabrikam.test (Google) and click the button;")
    print(f"  the sandbox's page at {oauth.base_url} uses the sandbox certificate, so the")
    print("  browser warns once: continue, it is this machine. Approve, and you are back.")
    print("Settings discovery: in set-up, type rita@northwind.test (the sandbox publishes")
    print(f"  {DEMO_DOMAIN}'s settings): the servers fill themselves in; password {MAIL_PASSWORD}.")
    print("First: sign in as admin, Settings > Manage plugins and add-ons > Activate.")
    print("=" * 72 + "\n", flush=True)

    def stop(*_a) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        app.run(host="127.0.0.1", port=WEB_PORT, threaded=True, use_reloader=False)
    finally:  # the sandbox's mail is kept for the next start (instance/sandbox-mail)
        smtp.stop()
        dovecot.stop()
        oauth.stop()
        web.stop()
        dns.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
