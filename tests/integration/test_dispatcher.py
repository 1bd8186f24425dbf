"""The fetch dispatcher: due mailboxes, leases, provider floors, off switches."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from plugin.jobs import leases
from plugin.fetching.status import request_fetch
from plugin.jobs.dispatcher import dispatch, dispatcher_for
from plugin.models import Mailbox, Message
from tests.helpers import complete_settings, make_mailbox, raw_mail


def _count(addon) -> int:
    with addon.session() as s:
        return len(s.scalars(select(Message.id)).all())


def test_only_due_unpaused_active_mailboxes_are_claimed(mini, dovecot):
    _app, host, addon = mini
    complete_settings(addon)
    owner = host.add_person("Rita", "rita@acme.test").get_id()
    users = [dovecot.add_user(f"due{i}x{id(addon) % 9999}", "pw") for i in range(4)]
    due = make_mailbox(addon, owner, dovecot, users[0])
    later = make_mailbox(addon, owner, dovecot, users[1],
                         next_fetch_at=datetime.now(timezone.utc) + timedelta(hours=1))
    paused = make_mailbox(addon, owner, dovecot, users[2], paused=True, pause_reason="auth")
    inactive = make_mailbox(addon, owner, dovecot, users[3], is_active=False)
    now = datetime.now(timezone.utc)
    claimed = leases.claim_due(addon.engine, "w1", 10, now, timedelta(seconds=60))
    assert claimed == [due]
    # Held by w1: nobody else gets it until the lease expires ...
    assert leases.claim_due(addon.engine, "w2", 10, now, timedelta(seconds=60)) == []
    # ... then another worker takes it over (w1 died).
    later_now = now + timedelta(seconds=61)
    assert leases.claim_due(addon.engine, "w2", 10, later_now, timedelta(seconds=60)) == [due]
    # Fetch now makes a not-yet-due mailbox due at once.
    request_fetch(addon.engine, later)
    assert leases.claim_due(addon.engine, "w3", 10, later_now, timedelta(seconds=60)) == [later]
    assert {paused, inactive}.isdisjoint(
        leases.claim_due(addon.engine, "w4", 10, later_now + timedelta(hours=2),
                         timedelta(seconds=60)))


def test_next_fetch_respects_interval_provider_floor_and_jitter(mini, dovecot, mail_user):
    app, host, addon = mini
    complete_settings(addon, fetch_interval_minutes=20)
    mb = make_mailbox(addon, host.add_person("R", "r@acme.test").get_id(), dovecot, mail_user)
    with app.app_context():
        assert dispatch(addon, wait=True) == 1
    with addon.session() as s:
        m = s.get(Mailbox, mb)
        gap = (m.next_fetch_at - m.last_attempt_at).total_seconds()
        assert 20 * 60 <= gap <= 20 * 60 * 1.1 + 1
        assert m.lease_owner is None and not m.fetch_requested
    from plugin.setup.settings import fetch_interval_for, load
    with addon.session() as s:
        gs = load(s)
        gs.fetch_interval_minutes = 5
        assert fetch_interval_for(gs, "imap.gmail.com") == 10
        assert fetch_interval_for(gs, "mail.example.com") == 5
    with app.app_context():
        assert dispatch(addon, wait=True) == 0  # not due again yet


def test_deactivating_stops_fetching_within_one_tick_and_reactivating_resumes(
        mini, dovecot, mail_user):
    app, host, addon = mini
    complete_settings(addon)
    make_mailbox(addon, host.add_person("R", "r@acme.test").get_id(), dovecot, mail_user)
    dovecot.deliver(mail_user, raw_mail("a@cand.test", mail_user.email))
    addon.set_active(False)
    with app.app_context():
        assert dispatch(addon, wait=True) == 0
    assert _count(addon) == 0
    addon.set_active(True)
    with app.app_context():
        assert dispatch(addon, wait=True) == 1
    assert _count(addon) == 1


def test_outbound_only_mode_polls_no_mailbox(mini, dovecot, mail_user):
    app, host, addon = mini
    complete_settings(addon, outbound_only=True)
    make_mailbox(addon, host.add_person("R", "r@acme.test").get_id(), dovecot, mail_user)
    dovecot.deliver(mail_user, raw_mail("a@cand.test", mail_user.email))
    with app.app_context():
        assert dispatch(addon, wait=True) == 0
    assert _count(addon) == 0


def test_nothing_is_polled_before_global_settings_are_saved(mini, dovecot, mail_user):
    app, host, addon = mini
    make_mailbox(addon, host.add_person("R", "r@acme.test").get_id(), dovecot, mail_user)
    with app.app_context():
        assert dispatch(addon, wait=True) == 0


def test_one_failing_mailbox_never_stops_the_others(mini, dovecot, mail_user):
    app, host, addon = mini
    complete_settings(addon)
    owner = host.add_person("R", "r@acme.test").get_id()
    good = make_mailbox(addon, owner, dovecot, mail_user)
    broken_user = dovecot.add_user(f"broken{id(addon) % 99999}", "right")
    bad = make_mailbox(addon, owner, dovecot, broken_user,
                       in_password=addon.secrets.encrypt("wrong"))
    dovecot.deliver(mail_user, raw_mail("a@cand.test", mail_user.email))
    with app.app_context():
        assert dispatch(addon, wait=True) == 2
    with addon.session() as s:
        assert s.get(Mailbox, good).last_success_at is not None
        b = s.get(Mailbox, bad)
        assert b.last_error_kind == "auth_failed" and b.next_fetch_at is not None
    assert _count(addon) == 1


def test_embedded_scheduler_starts_once_and_stops(tmp_path):
    from flask import Flask

    from plugin import IntegratedEmail
    from plugin.jobs import start_scheduler_if_embedded
    from tests.conftest import TEST_KEY
    from tests.hosts.mini_host import MiniHost

    app = Flask("t", instance_path=str(tmp_path))
    app.config.update(IE_DATABASE_URL=f"sqlite:///{tmp_path}/s.sqlite", IE_SECRET_KEYS=TEST_KEY,
                      IE_SCHEDULER="embedded")
    addon = IntegratedEmail(app, host=MiniHost())
    assert addon.scheduler is None  # an app object that serves nothing runs no scheduler
    app.test_client().get("/nothing-here")  # the first request starts it
    try:
        assert addon.scheduler.running
        assert start_scheduler_if_embedded(addon) is addon.scheduler
        assert addon.start_scheduler() is addon.scheduler
        assert {j.id for j in addon.scheduler.get_jobs()} == {"integrated_email.dispatch_fetch",
                                                               "integrated_email.send_outbox"}
    finally:
        sched = addon.scheduler
        addon.stop_scheduler()
    assert not sched.running and addon.scheduler is None
    dispatcher_for(addon).shutdown()


def _leased_to_w1(mini, dovecot, mail_user):
    """A set-up add-on and a mailbox with one new message, claimed by worker "w1"."""
    _app, host, addon = mini
    complete_settings(addon)
    mbid = make_mailbox(addon, host.add_person("R", "r@acme.test").get_id(), dovecot,
                        mail_user)
    dovecot.deliver(mail_user, raw_mail("a@cand.test", mail_user.email))
    now = datetime.now(timezone.utc)
    assert leases.claim_due(addon.engine, "w1", 1, now, timedelta(seconds=60)) == [mbid]
    return addon, mbid


def test_a_sync_whose_lease_passed_to_another_worker_writes_no_status(mini, dovecot, mail_user):
    from sqlalchemy import update

    from plugin.models import FetchCursor
    from plugin.fetching.sync import sync_mailbox

    addon, mbid = _leased_to_w1(mini, dovecot, mail_user)
    # w1's lease ran out while it synced, and w2 took the mailbox over.
    with addon.engine.begin() as conn:
        conn.execute(update(Mailbox).where(Mailbox.id == mbid).values(lease_owner="w2"))
    result = sync_mailbox(addon, mbid,
                          on_finish=lambda mb: leases.give_back(mb, "w1", 0.1))
    assert result.stored == 1 and result.settled  # the mail itself is safely stored
    with addon.session() as s:
        mb = s.get(Mailbox, mbid)
        assert mb.lease_owner == "w2" and mb.last_success_at is None
        # ... and w1 moved no folder cursor behind w2's back.
        assert all(c.uidvalidity is None for c in s.scalars(select(FetchCursor)))


def test_the_sweep_of_unlinked_mail_runs_while_the_lease_is_held(mini, dovecot, mail_user):
    from plugin.fetching.sync import sync_mailbox

    addon, mbid = _leased_to_w1(mini, dovecot, mail_user)

    def failing_hook(*_args) -> None:
        raise RuntimeError("linking failed")  # this batch's mail waits for the sweep

    owners = []

    def sweep() -> None:
        with addon.session() as s:
            owners.append(s.get(Mailbox, mbid).lease_owner)

    result = sync_mailbox(addon, mbid, on_batch=failing_hook, sweep=sweep,
                          on_finish=lambda mb: leases.give_back(mb, "w1", 0.1))
    assert result.unlinked and owners == ["w1"]
    with addon.session() as s:
        assert s.get(Mailbox, mbid).lease_owner is None  # given back after the sweep
