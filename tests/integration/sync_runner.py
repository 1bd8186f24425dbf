"""Run one sync in a process of its own, so fault tests can SIGKILL it.

    python -m tests.integration.sync_runner CONFIG.json MAILBOX_ID

CONFIG.json is the app config (as tests.conftest.make_config builds it). Prints the
SyncResult as JSON. IE_SYNC_BATCH sets the batch size; IE_CRASHPOINT a crash point.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys


def main(argv: list[str]) -> int:
    with open(argv[1]) as fh:
        config = json.load(fh)
    from plugin import IntegratedEmail
    from plugin.fetching import imap_sync, pop3_sync, sync
    from tests.hosts.mini_host import create_mini_app

    if os.environ.get("IE_SYNC_BATCH"):
        imap_sync.IMAP_BATCH = pop3_sync.POP3_BATCH = int(os.environ["IE_SYNC_BATCH"])
    app, host = create_mini_app(config)
    addon = IntegratedEmail(app, host=host)
    result = sync.sync_mailbox(addon, int(argv[2]))
    print(json.dumps(dataclasses.asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
