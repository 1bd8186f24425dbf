"""Shared helpers of the sync tests: a mailbox row for a lab user, and counts."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.models import GlobalSettings, Mailbox, Message, MessageLocation, Quarantine


def set_window(addon, days: int = 3650, messages: int = 100_000) -> None:
    with Session(addon.engine) as s:
        gs = s.get(GlobalSettings, 1) or GlobalSettings(id=1)
        gs.saved_at = datetime.now(UTC)
        gs.initial_sync_days = days
        gs.initial_sync_messages = messages
        s.add(gs)
        s.commit()


def make_mailbox(addon, dovecot, user, protocol: str = "imap", security: str = "ssl",
                 port: int | None = None, password: str | None = None,
                 delete_policy: str = "leave", delete_after_days: int | None = None,
                 host: str = "localhost") -> int:
    if port is None:
        port = {("imap", "ssl"): dovecot.imaps, ("imap", "starttls"): dovecot.imap,
                ("pop3", "ssl"): dovecot.pop3s, ("pop3", "starttls"): dovecot.pop3}[
            (protocol, security)]
    with Session(addon.engine) as s:
        mb = Mailbox(user_id="u1", account_name="Work", email=user.email, is_active=True,
                     protocol=protocol, in_host=host, in_port=port, in_security=security,
                     in_login=user.login,
                     in_password=addon.secrets.encrypt(password or user.password),
                     out_host="localhost", out_port=465, out_security="ssl",
                     delete_policy=delete_policy, delete_after_days=delete_after_days)
        s.add(mb)
        s.commit()
        return mb.id


def mailbox(addon, mailbox_id: int) -> Mailbox:
    with Session(addon.engine, expire_on_commit=False) as s:
        return s.get(Mailbox, mailbox_id)


def message_keys(addon, mailbox_id: int) -> list[str]:
    with Session(addon.engine) as s:
        return list(s.scalars(select(Message.message_key).where(
            Message.mailbox_id == mailbox_id)))


def duplicate_keys(addon, mailbox_id: int) -> list[str]:
    return [k for k, n in Counter(message_keys(addon, mailbox_id)).items() if n > 1]


def count(addon, model, mailbox_id: int) -> int:
    with Session(addon.engine) as s:
        return s.scalar(select(func.count()).select_from(model).where(
            model.mailbox_id == mailbox_id))


def server_ids(dovecot, user, folder: str = "INBOX") -> set[str]:
    """Message-IDs (without brackets) of the messages on the server."""
    import re
    out = set()
    for _name, _flags, raw in dovecot.list_messages(user, folder):
        m = re.search(rb"^Message-ID:\s*<([^>]+)>", raw, re.MULTILINE | re.IGNORECASE)
        out.add(m.group(1).decode() if m else None)
    return out


__all__ = [
    "Message",
    "MessageLocation",
    "Quarantine",
    "count",
    "duplicate_keys",
    "mailbox",
    "make_mailbox",
    "message_keys",
    "server_ids",
    "set_window",
]


def run_sync_process(config: dict, mailbox_id: int, crashpoint: str | None = None,
                     batch: int = 5, wait: bool = True):
    """Sync in a subprocess (tests.integration.sync_runner); returns the Popen."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)
    env = dict(os.environ, IE_SYNC_BATCH=str(batch), PYTHONPATH=str(root))
    env.pop("IE_CRASHPOINT", None)
    if crashpoint:
        env["IE_CRASHPOINT"] = crashpoint
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.sync_runner", path,
                             str(mailbox_id)], cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    if wait:
        proc.out, proc.err = proc.communicate(timeout=120)
    return proc


def process_config(app, tmp_path) -> dict:
    """The app's IE_* settings (same key, database, blob dir) for a sync subprocess."""
    cfg = {k: v for k, v in app.config.items() if k.startswith("IE_")}
    cfg["IE_SCHEDULER"] = "off"
    cfg["INSTANCE_PATH"] = str(tmp_path / "instance-sub")
    return cfg
