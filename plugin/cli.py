"""``flask integrated-email ...``: the add-on's command-line group."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from plugin.crypto import SecretKeyError


@click.group("integrated-email", help="Integrated Email add-on commands.")
def cli_group() -> None:
    """Integrated Email: migrations, keys, activation and the fetch worker."""
    pass


@cli_group.command("migrate")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@with_appcontext
def migrate_cmd(revision: str) -> None:
    """Create or upgrade the add-on's tables."""
    from plugin.current import get_addon
    get_addon().migrate(revision)
    click.echo(f"Integrated Email tables are at revision {revision}.")


@cli_group.command("downgrade")
@click.argument("revision", default="base")
@with_appcontext
def downgrade_cmd(revision: str) -> None:
    """Step the add-on's tables back (base removes them all)."""
    from plugin.current import get_addon
    get_addon().downgrade(revision)
    click.echo(f"Integrated Email tables are at revision {revision}.")


@cli_group.command("rotate-keys")
@with_appcontext
def rotate_keys_cmd() -> None:
    """Re-encrypt every stored secret under the first key of IE_SECRET_KEYS."""
    from plugin.current import get_addon
    from plugin.setup.secrets import rotate_all
    try:
        done, total = rotate_all(get_addon())
    except SecretKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Re-encrypted {done} of {total} stored secrets under the first key.")


@cli_group.command("activate")
@with_appcontext
def activate_cmd() -> None:
    """Activate the add-on (what the host's plugin page does)."""
    from plugin.current import get_addon
    get_addon().set_active(True)
    click.echo("Integrated Email is active.")


@cli_group.command("worker")
@click.option("--threads", type=int, default=None, help="Mailboxes synced at once "
              "(default IE_WORKER_THREADS).")
@with_appcontext
def worker_cmd(threads: int | None) -> None:
    """Run the fetch dispatcher in this process until stopped (production set-up).

    Run web processes with IE_SCHEDULER=off and one or more of these, on any
    number of machines, against the same PostgreSQL database.
    """
    from plugin.current import get_addon
    from plugin.jobs.worker import run_worker
    run_worker(get_addon(), threads)


@cli_group.command("move-blobs")
@click.option("--to", "to", type=click.Choice(["database", "directory"]), required=True)
@click.option("--delete-source/--keep-source", default=False, show_default=True,
              help="Remove each source blob once its copy is verified.")
@with_appcontext
def move_blobs_cmd(to: str, delete_source: bool) -> None:
    """Move raw message bytes into another store (resumable; every hash verified).

    Set IE_BLOB_STORE to the new kind afterwards."""
    from flask import current_app

    from plugin.blobs import blob_store
    from plugin.blobs.housekeeping import move_blobs
    source_kind = "directory" if to == "database" else "database"
    source = blob_store(current_app.config, source_kind)
    target = blob_store(current_app.config, to)
    result = move_blobs(source, target, delete_source=delete_source)
    click.echo(f"Moved {result.moved} blobs to the {to} store; {result.skipped} were "
               "there already. Every hash verified.")


@cli_group.command("storage-report")
@with_appcontext
def storage_report_cmd() -> None:
    """Print the raw-message storage used per mailbox."""
    from flask import current_app

    from plugin.blobs import blob_store
    from plugin.current import get_addon
    from plugin.blobs.housekeeping import storage_report
    rows = storage_report(get_addon().engine, blob_store(current_app.config))
    click.echo(f"{'mailbox':40} {'messages':>9} {'raw MB':>9} {'stored MB':>10}")
    for email, count, size, held in rows:
        click.echo(f"{email:40} {count:9d} {size / 1e6:9.2f} {held / 1e6:10.2f}")


@cli_group.command("collect-blobs")
@with_appcontext
def collect_blobs_cmd() -> None:
    """Apply IE_RAW_RETENTION_DAYS and delete raw bytes no row uses any more."""
    from flask import current_app

    from plugin.blobs import blob_store
    from plugin.current import get_addon
    from plugin.blobs.housekeeping import apply_retention, collect_garbage
    engine, store = get_addon().engine, blob_store(current_app.config)
    dropped = apply_retention(engine, store, current_app.config.get("IE_RAW_RETENTION_DAYS"))
    removed = collect_garbage(engine, store)
    click.echo(f"Removed {dropped + removed} unused blobs.")


@cli_group.command("redact-notes")
@with_appcontext
def redact_notes_cmd() -> None:
    """Make brief every host note whose subject and text sharing does not let all of
    the record's viewers read (before migration 0009 every note carried them)."""
    from sqlalchemy.orm import Session

    from plugin.current import get_addon
    from plugin.linking.notes import enforce
    addon = get_addon()
    with Session(addon.engine) as s:
        done = enforce(s, addon.host)
        s.commit()
    click.echo(f"Made {done.briefed} host notes brief; every other note may stay as it is.")
    if done.left:
        raise click.ClickException(
            f"{done.left} notes still carry a subject sharing does not allow: this host "
            "cannot delete notes (plugin.host.HostAdapterV2.delete_note). Remove them in "
            "the host, or add delete_note and run this again.")
