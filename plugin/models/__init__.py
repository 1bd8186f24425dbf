"""The add-on's tables (all prefixed ``ie_``), one module per aggregate."""

from plugin.db import Base
from plugin.models.settings import AddonState, GlobalSettings
from plugin.models.mailbox import FetchCursor, Mailbox
from plugin.models.message import Attachment, Message, MessageLocation, Quarantine, RecordLink
# Imported for their tables; use their classes from the modules themselves.
from plugin.models import oauth, outbound, search, sharing  # noqa: F401
from plugin.models import blob  # noqa: F401  (ie_blob joins the metadata)
from plugin.models import deliverability  # noqa: F401  (limits, suppression, bounces)
from plugin.models import notes  # noqa: F401  (ie_host_note joins the metadata)

__all__ = [
    "Base", "AddonState", "GlobalSettings", "Mailbox", "FetchCursor", "Message",
    "MessageLocation", "Attachment", "Quarantine", "RecordLink",
]
