"""A private Dovecot 2.3 instance for the real-server tests.

Why a private instance: the tests need real IMAP/POP3 behaviour (TLS, SPECIAL-USE,
UIDVALIDITY, UIDL) without touching the machine's own mail setup. Everything lives in one
temp dir and the config is generated here; see /work/shared/LAB-NOTES.md for the measured
reasons behind each setting.
"""
from __future__ import annotations

import email.utils
import hashlib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

from .ca import LabCerts
from .servers import HOST, free_port

if TYPE_CHECKING:
    from .oauth import OAuthLab

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
MAIL_UID = MAIL_GID = 5000  # owner of every home; not a system account on purpose
DOMAIN = "example.test"
SPECIAL = {"Sent": r"\Sent", "Drafts": r"\Drafts", "Trash": r"\Trash", "Junk": r"\Junk"}

_counter = itertools.count()


@dataclass(frozen=True)
class MailUser:
    login: str
    email: str
    password: str
    maildir: Path


def _imap_utf7(name: str) -> str:
    """Folder names are stored on disk in modified UTF-7 (Dovecot's default)."""
    try:
        from imapclient.imap_utf7 import encode
        return encode(name).decode("ascii")
    except ImportError:  # pragma: no cover - imapclient is a dev dependency
        return name


def _chown_tree(path: Path) -> None:
    os.chown(path, MAIL_UID, MAIL_GID)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            os.chown(os.path.join(root, n), MAIL_UID, MAIL_GID)


def _unique() -> str:
    # Maildir unique part: time.M<usec>P<pid>Q<counter>.<host>; the counter keeps bulk
    # writes within one microsecond distinct.
    t = time.time()
    return f"{int(t)}.M{int((t % 1) * 1e6)}P{os.getpid()}Q{next(_counter)}.lab"


def default_message(i: int, user: MailUser) -> bytes:
    """A small RFC 5322 message from candidate i (distinct Message-ID, dates a minute apart)."""
    date = email.utils.formatdate(1_700_000_000 + i * 60, localtime=False)
    return (
        f"From: Candidate {i} <cand{i}@{DOMAIN}>\r\n"
        f"To: {user.email}\r\n"
        f"Subject: Application #{i}\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <lab-{i}-{os.urandom(6).hex()}@{DOMAIN}>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Hello, this is candidate {i}.\r\n"
    ).encode()


class Dovecot:
    host = HOST

    def __init__(self, certs: LabCerts, workdir: str | Path | None = None,
                 high_performance: bool = False, oauth: OAuthLab | None = None) -> None:
        for binary in (DOVECOT, DOVEADM):
            if not os.access(binary, os.X_OK):
                raise RuntimeError(f"{binary} missing: run `make test` (it apt-installs "
                                   "dovecot-imapd dovecot-pop3d dovecot-lmtpd)")
        if os.geteuid() != 0:
            raise RuntimeError("the Dovecot lab must run as root (homes are chowned to 5000)")
        self.certs = certs
        #: Dovecot's documented high-performance mode (login and imap processes reused),
        #: for benchmarks where the server shares the cores with what is measured
        self.high_performance = high_performance
        #: the lab OAuth provider whose introspection endpoint validates XOAUTH2/OAUTHBEARER
        self.oauth = oauth
        self.ca_file = str(certs.ca_cert)
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="lab-dovecot-"))
        # Why 0755: login/imap processes (dovenull, uid 5000) must traverse this dir.
        self.dir.chmod(0o755)
        for parent in self.dir.parents:  # e.g. pytest's tmp_path root is 0700: unusable
            if not parent.stat().st_mode & 0o001:
                raise RuntimeError(f"{parent} is not world-traversable; the dovecot/dovenull/"
                                   f"uid-5000 processes could not reach {self.dir}")
        self.mail_root = self.dir / "mail"
        self.mail_root.mkdir(exist_ok=True)
        self.mail_root.chmod(0o755)
        # One passwd-file per user (path with %u): Dovecot re-stats a passwd-file at most once
        # per second, so a user appended to a shared file right after a lookup stays unknown
        # for up to 1 s. A new file per user is read fresh on first lookup.
        self.passwd_dir = self.dir / "passwd.d"
        self.passwd_dir.mkdir(exist_ok=True)
        self.passwd_dir.chmod(0o755)
        self.conf = self.dir / "dovecot.conf"
        self.log = self.dir / "dovecot.log"
        self.users: dict[str, MailUser] = {}
        self.imap = self.imaps = self.pop3 = self.pop3s = 0
        self._proc: subprocess.Popen | None = None

    # ---------------------------------------------------------------- lifecycle
    def _write_conf(self) -> None:
        d = self.dir
        mailboxes = "\n".join(
            f"  mailbox {name} {{\n    special_use = {flag}\n    auto = subscribe\n  }}"
            for name, flag in SPECIAL.items()
        )
        # Debian's default (high-security) forks a login process per connection and an
        # imap process per session: ~28 ms of server CPU a first sync here, which the
        # scale-out benchmark would otherwise charge to the workers it compares.
        login_mode = imap_mode = ""
        if self.high_performance:
            login_mode = "  service_count = 0\n  process_min_avail = 2\n"
            imap_mode = "service imap {\n  service_count = 1000\n  process_min_avail = 2\n}\n"
        dh_pem = Path("/usr/share/dovecot/dh.pem")
        dh = f"ssl_dh = <{dh_pem}" if dh_pem.exists() else ""
        mechanisms, passdb_mechs, oauth_passdb = "plain login", "", ""
        if self.oauth is not None:
            mechanisms = "plain login xoauth2 oauthbearer"
            # Each passdb only for its own mechanisms: a token is never tried as a
            # password, nor a password sent to the introspection endpoint.
            passdb_mechs = "  mechanisms = plain login\n"
            oauth_passdb = (f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                            f"  args = {self._write_oauth_conf()}\n}}\n")
        self.conf.write_text(f"""
instance_name = lab-{d.name}
base_dir = {d}/run
state_dir = {d}/state
log_path = {self.log}
protocols = imap pop3
listen = {HOST}
ssl = yes
ssl_cert = <{self.certs.cert}
ssl_key = <{self.certs.key}
{dh}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_username_format = %Ln
auth_failure_delay = 0
auth_verbose = yes
first_valid_uid = 1000
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
mail_fsync = never
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_dir}/%u
{passdb_mechs}}}
{oauth_passdb}userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd_dir}/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}
}}
{imap_mode}service imap-login {{
{login_mode}  inet_listener imap {{
    address = {HOST}
    port = {self.imap}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.imaps}
    ssl = yes
  }}
}}
service pop3-login {{
{login_mode}  inet_listener pop3 {{
    address = {HOST}
    port = {self.pop3}
  }}
  inet_listener pop3s {{
    address = {HOST}
    port = {self.pop3s}
    ssl = yes
  }}
}}
# Without this (and auth_failure_delay = 0) failed logins cost 2-15 s each.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
""")

    def _write_oauth_conf(self) -> Path:
        """The oauth2 passdb settings: RFC 7662 introspection at the lab provider."""
        assert self.oauth is not None
        # Copies inside our 0755 dir: the auth process (user dovecot) cannot read pytest's
        # 0700 temp dirs.
        ca = self.dir / "oauth-ca.pem"
        shutil.copyfile(self.oauth.certs.ca_cert, ca)
        ca.chmod(0o644)
        conf = self.dir / "dovecot-oauth2.conf.ext"
        host = self.oauth.base_url.split("://", 1)[1]
        conf.write_text(
            "introspection_mode = post\n"
            f"introspection_url = https://{self.oauth.mail_servers_client}:{self.oauth.mail_servers_secret}"
            f"@{host}/introspect\n"
            # The provider names the account by its address; Dovecot's user is the local part.
            "username_attribute = username\n"
            "username_format = %Ln\n"
            "active_attribute = active\n"
            "active_value = true\n"
            f"tls_ca_cert_file = {ca}\n"
            "timeout_msecs = 5000\n")
        conf.chmod(0o644)
        return conf

    def start(self, timeout: float = 10, ports: tuple[int, int, int, int] | None = None) -> Dovecot:
        """Start; ``ports`` (imap, imaps, pop3, pop3s) fixes the ports (the demo does)."""
        if self._proc and self._proc.poll() is None:
            return self
        # A stale socket in base_dir stalls the first login by ~5 s: always start empty.
        shutil.rmtree(self.dir / "run", ignore_errors=True)
        (self.dir / "state").mkdir(exist_ok=True)
        self.imap, self.imaps, self.pop3, self.pop3s = ports or tuple(free_port() for _ in range(4))
        self._write_conf()
        self._proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace")
                raise RuntimeError(f"dovecot exited ({self._proc.returncode}): {err}\n"
                                   f"{self.log_text()}")
            if all(self._greets(p) for p in (self.imap, self.pop3)):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot not ready after {timeout}s\n{self.log_text()}")
            time.sleep(0.05)

    def _greets(self, port: int) -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                return s.recv(100).startswith((b"* OK", b"+OK"))
        except OSError:
            return False

    def stop(self, timeout: float = 15) -> None:
        """TERM the master and wait for it: it lingers ~2.5 s while children exit."""
        p, self._proc = self._proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        if p.stderr:
            p.stderr.close()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -------------------------------------------------------------------- users
    def add_user(self, login: str, password: str) -> MailUser:
        """Add a user while Dovecot runs; usable at once, no reload (its own passwd-file)."""
        login = login.lower()
        if not re.fullmatch(r"[a-z0-9][a-z0-9._+-]*", login):
            raise ValueError(f"lab logins must be simple ascii: {login!r}")
        home = self.mail_root / login
        maildir = home / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        _chown_tree(home)
        user = MailUser(login, f"{login}@{DOMAIN}", password, maildir)
        self.users[login] = user
        # SHA256.HEX so any password (':' , spaces, non-ASCII) fits the ':'-separated file.
        line = (f"{login}:{{SHA256.HEX}}{hashlib.sha256(password.encode()).hexdigest()}"
                f":{MAIL_UID}:{MAIL_GID}::{home}::\n")
        tmp = self.passwd_dir / f".{login}.tmp"
        tmp.write_text(line)
        tmp.chmod(0o644)
        os.replace(tmp, self.passwd_dir / login)  # atomic: a login never reads half a file
        return user

    def user(self, login_or_email: str) -> MailUser | None:
        return self.users.get(login_or_email.split("@", 1)[0].lower())

    # ------------------------------------------------------------------ folders
    def folder_path(self, user: MailUser, folder: str = "INBOX") -> Path:
        """Maildir++ layout: INBOX is the root, 'A/B' lives in '.A.B' (mUTF-7 names)."""
        if folder.upper() == "INBOX":
            return user.maildir
        return user.maildir / ("." + _imap_utf7(folder).replace("/", "."))

    def _ensure_folder(self, user: MailUser, folder: str) -> Path:
        path = self.folder_path(user, folder)
        if not (path / "cur").is_dir():
            for sub in ("cur", "new", "tmp"):
                (path / sub).mkdir(parents=True, exist_ok=True)
            (path / "maildirfolder").touch()
            _chown_tree(path)
        return path

    def _write(self, path: Path, raw: bytes, seen: bool, flags: str = "") -> str:
        """tmp/ -> new/ or cur/ so Dovecot never sees a half-written file."""
        if seen and "S" not in flags:
            flags += "S"
        flags = "".join(sorted(set(flags)))
        base = f"{_unique()},S={len(raw)}"
        name = f"{base}:2,{flags}" if (seen or flags) else base
        tmp = path / "tmp" / base
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, raw)
            os.fchown(fd, MAIL_UID, MAIL_GID)
        finally:
            os.close(fd)
        os.rename(tmp, path / ("cur" if (seen or flags) else "new") / name)
        return name

    def deliver(self, user: MailUser, raw: bytes, folder: str = "INBOX",
                seen: bool = False, flags: str = "") -> str:
        """Drop one message into a folder (unseen -> new/, seen/flagged -> cur/); returns its
        file name."""
        return self._write(self._ensure_folder(user, folder), raw, seen, flags)

    def fill(self, user: MailUser, n: int, folder: str = "INBOX",
             make: Callable[[int, MailUser], bytes] | None = None) -> None:
        """Bulk-write n messages straight into cur/ (unseen, no \\Recent): ~10k/s.

        Why cur/: Dovecot would otherwise rename every new/ file on first SELECT.
        """
        path = self._ensure_folder(user, folder)
        make = make or default_message
        cur, tmpdir = path / "cur", path / "tmp"
        for i in range(n):
            raw = make(i, user)
            base = f"{_unique()},S={len(raw)}"
            tmp = tmpdir / base
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, raw)
            os.fchown(fd, MAIL_UID, MAIL_GID)
            os.close(fd)
            os.rename(tmp, cur / f"{base}:2,")

    def list_messages(self, user: MailUser, folder: str = "INBOX") -> list[tuple[str, str, bytes]]:
        """(filename, flags, raw bytes) for every message in new/ and cur/, oldest name first."""
        path = self.folder_path(user, folder)
        out = []
        for sub in ("new", "cur"):
            d = path / sub
            if not d.is_dir():
                continue
            for name in sorted(os.listdir(d)):
                flags = name.split(":2,", 1)[1] if ":2," in name else ""
                out.append((name, flags, (d / name).read_bytes()))
        return out

    # -------------------------------------------------------------- UIDVALIDITY
    def _doveadm(self, *args: str) -> str:
        r = subprocess.run([DOVEADM, "-c", str(self.conf), *args],
                           check=False, capture_output=True, text=True, timeout=30)
        if r.returncode:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {r.stderr}")
        return r.stdout

    def uidvalidity(self, user: MailUser, folder: str = "INBOX") -> int:
        out = self._doveadm("mailbox", "status", "-u", user.login, "uidvalidity", folder)
        return int(out.split("=", 1)[1])

    def change_uidvalidity(self, user: MailUser, folder: str = "INBOX") -> int:
        """Forget the folder's UID map so Dovecot assigns a new UIDVALIDITY (UIDs restart at 1).

        Call it with no client session open on that mailbox. Returns the new value and
        checks it really differs (the mailbox-list index caches it, so we also drop that).
        """
        old = self.uidvalidity(user, folder)
        path = self.folder_path(user, folder)
        for p in list(path.glob("dovecot-uidlist*")) + list(path.glob("dovecot.index*")):
            p.unlink()
        for p in user.maildir.glob("dovecot.list.index*"):
            p.unlink()
        new = self.uidvalidity(user, folder)
        if new == old:  # same-second regeneration: force a distinct value
            self._doveadm("mailbox", "update", "-u", user.login,
                          "--uid-validity", str(old + 1), folder)
            new = self.uidvalidity(user, folder)
        if new == old:
            raise RuntimeError(f"UIDVALIDITY of {user.login}/{folder} did not change ({old})")
        return new
