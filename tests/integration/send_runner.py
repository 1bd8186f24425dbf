"""Run one bulk job in a process of its own, so the crash tests can SIGKILL it.

    python -m tests.integration.send_runner CONFIG.json JOB_ID

IE_CRASHPOINT (e.g. ``bulk_after_smtp:12``) kills it at a chosen step."""
from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    config = json.loads(open(argv[1]).read())
    from plugin import IntegratedEmail
    from plugin.sending import bulk
    from tests.hosts.mini_host import create_mini_app

    app, host = create_mini_app(config)
    addon = IntegratedEmail(app, host=host)
    with app.app_context():
        print(json.dumps({"state": bulk.run_job(addon, int(argv[2]))}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
