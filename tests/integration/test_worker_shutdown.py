"""A graceful stop gives back every lease: a tick whose pool was shut down after its
claim, syncs cancelled before they started, and no new claims while stopping."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from sqlalchemy import select

from plugin.jobs import dispatcher as dispatcher_module
from plugin.jobs.dispatcher import Dispatcher
from plugin.models import Mailbox
from tests.helpers import complete_settings, make_mailbox


def _leases(addon) -> dict[int, str | None]:
    with addon.session() as s:
        return dict(s.execute(select(Mailbox.id, Mailbox.lease_owner)).all())


def _due_mailboxes(mini, dovecot, n: int) -> list[int]:
    _app, host, addon = mini
    complete_settings(addon)
    owner = host.add_person("Rita", "rita@acme.test").get_id()
    return [make_mailbox(addon, owner, dovecot,
                         dovecot.add_user(f"stop{i}x{id(addon) % 9999}", "pw"))
            for i in range(n)]


def test_sigterm_between_claim_and_submit_leaves_no_lease(mini, dovecot):
    _app, _host, addon = mini
    ids = _due_mailboxes(mini, dovecot, 3)
    worker = Dispatcher(addon, 3, name="w-stop-1")
    worker.pool.shutdown()  # what the signal handler's shutdown does mid-tick
    assert worker.tick() == 0  # no "cannot schedule new futures after shutdown"
    assert _leases(addon) == {i: None for i in ids}


def test_shutdown_during_a_sync_claims_nothing_more_and_gives_everything_back(
        mini, dovecot, monkeypatch):
    _app, _host, addon = mini
    ids = _due_mailboxes(mini, dovecot, 3)
    started, go_on, synced = threading.Event(), threading.Event(), []

    def slow_sync(addon_, mailbox_id, **kwargs):
        synced.append(mailbox_id)
        started.set()
        go_on.wait(10)
        return SimpleNamespace(settled=False, stored=0, error_kind=None, skipped=None)

    monkeypatch.setattr(dispatcher_module, "fetch_and_link", slow_sync)
    worker = Dispatcher(addon, 1, name="w-stop-2")
    assert worker.tick() == 1
    assert started.wait(10)
    stopper = threading.Thread(target=worker.shutdown, kwargs={"wait": True})
    stopper.start()
    time.sleep(0.2)
    go_on.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert len(synced) == 1  # the running sync ended; no other was claimed after it
    assert _leases(addon) == {i: None for i in ids}
    assert worker.tick() == 0
