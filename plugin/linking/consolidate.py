"""'Consolidate all my client emails': matched mail also filed into one folder
(or Gmail label) on the user's own server, after it is committed here.

Only copies or labels; the original stays where it was.  A message is marked
``consolidated`` once filed, so a second run files nothing twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from plugin.blobs import blob_store
from plugin.blobs.durable import blob_names_of, durable_before_server_change
from plugin.context import AddonContext
from plugin.mail.errors import MailError
from plugin.mail.imap import ImapSession
from plugin.models import Mailbox, Message, MessageLocation, RecordLink
from plugin.fetching.status import record_action
from plugin.setup.credentials import incoming_for
from plugin.setup.policy import connection_policy

log = logging.getLogger("plugin.integrated_email.import")


def consolidate(addon: AddonContext, mailbox_id: int) -> int:
    """File linked, not yet consolidated messages; returns how many were filed."""
    with Session(addon.engine, expire_on_commit=False) as s:
        mb = s.get(Mailbox, mailbox_id)
        if mb is None or mb.protocol != "imap" or not mb.consolidate_folder:
            return 0
        rows = s.execute(
            select(Message.id, MessageLocation.folder, MessageLocation.uidvalidity,
                   MessageLocation.uid)
            .join(MessageLocation, MessageLocation.message_id == Message.id)
            .where(Message.mailbox_id == mailbox_id, Message.consolidated.is_(False),
                   Message.id.in_(select(RecordLink.message_id)),
                   MessageLocation.uid.is_not(None),
                   MessageLocation.removed_from_server.is_(False))
        ).all()
        if not rows:
            return 0
        target = mb.consolidate_folder
        try:
            settings = incoming_for(addon, mb)
        except MailError as exc:  # e.g. sign in again: the next import tries again
            log.info("consolidating mailbox %s waits: %s", mailbox_id, exc.kind)
            return 0
        policy = connection_policy(addon, s)
    by_folder: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
    for mid, folder, validity, uid in rows:
        if folder != target:
            by_folder[(folder, validity)].append((mid, uid))
    done: list[int] = []
    filed = [mid for items in by_folder.values() for mid, _uid in items]
    # what is filed on the server must survive a power cut here first
    durable_before_server_change(addon.engine, blob_store(addon.app.config),
                                 blob_names_of(addon.engine, filed))
    try:
        with ImapSession(settings, policy) as imap:
            gmail = "X-GM-EXT-1" in imap.capabilities
            if not gmail:
                imap.create_folder(target)
            for (folder, validity), items in by_folder.items():
                selected = imap.select(folder, readonly=gmail)
                if selected.uidvalidity != validity:
                    continue  # renumbered since: the next sync re-finds these
                uids = [uid for _mid, uid in items]
                if gmail:
                    imap.add_labels(uids, [target])
                else:
                    imap.copy(uids, target)
                done += [mid for mid, _uid in items]
        record_action(addon.engine, mailbox_id, "consolidate", None)
    except MailError as exc:
        log.info("consolidating mailbox %s stopped: %s", mailbox_id, exc.kind)
        record_action(addon.engine, mailbox_id, "consolidate", exc.sentence)
    if done:
        with Session(addon.engine) as s:
            s.execute(update(Message).where(Message.id.in_(done)).values(consolidated=True))
            s.commit()
    return len(done)
