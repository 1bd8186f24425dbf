"""The reference host app for worker subprocesses, configured from IE_TEST_CONFIG (JSON).

``python -m flask --app tests.integration.worker_app integrated-email worker``
"""

from __future__ import annotations

import json
import logging
import os

from examples.host_ats import create_app

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
logging.getLogger("plugin.integrated_email.jobs").setLevel(logging.INFO)
app = create_app(json.loads(os.environ["IE_TEST_CONFIG"]))
