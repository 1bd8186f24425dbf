"""A throw-away PostgreSQL database per test run.

Why: the add-on must work on PostgreSQL as well as SQLite, so integration tests get a
real, empty database. Prefer the machine's server on 127.0.0.1:5432; otherwise start a
private cluster from Debian's binaries. Never skip: a missing server is a lab failure.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field

import psycopg

from .servers import HOST, free_port


def _admin_conn(port: int):
    """Connect to the maintenance DB as postgres, falling back to root (trust auth)."""
    errors = []
    for user in ("postgres", "root"):
        try:
            conn = psycopg.connect(host=HOST, port=port, user=user, dbname="postgres",
                                   autocommit=True, connect_timeout=3)
            return conn, user
        except psycopg.OperationalError as e:
            errors.append(f"{user}: {e}")
    raise ConnectionError("; ".join(errors))


@dataclass
class PgDatabase:
    port: int
    user: str
    name: str
    cluster_dir: str | None = None  # set when we started a private cluster
    _owner: str = field(default="postgres", repr=False)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@{HOST}:{self.port}/{self.name}"

    def drop(self) -> None:
        try:
            conn, _ = _admin_conn(self.port)
            with conn:
                # Terminate leftovers (pools, app threads) or DROP DATABASE fails "in use".
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (self.name,))
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
        finally:
            if self.cluster_dir:
                _pg_ctl(self.cluster_dir, self._owner, "stop", "-m", "fast")
                shutil.rmtree(self.cluster_dir, ignore_errors=True)


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"no PostgreSQL at {HOST}:5432 and no {name} binary: run `make test`")
    return found[-1]


def _as(owner: str, argv: list[str]) -> list[str]:
    # initdb/postgres refuse to run as root.
    return ["runuser", "-u", owner, "--", *argv] if os.geteuid() == 0 else argv


def _pg_ctl(datadir: str, owner: str, *args: str) -> None:
    subprocess.run(_as(owner, [_bin("pg_ctl"), "-D", f"{datadir}/data", "-w", *args]),
                   check=True, capture_output=True, timeout=60)


def _start_private_cluster() -> tuple[int, str, str]:
    owner = "postgres"
    d = tempfile.mkdtemp(prefix="lab-pg-")
    if os.geteuid() == 0:
        shutil.chown(d, owner, owner)
    subprocess.run(_as(owner, [_bin("initdb"), "-D", f"{d}/data", "-U", "postgres",
                               "--auth=trust", "-E", "UTF8", "--no-sync"]),
                   check=True, capture_output=True, timeout=120)
    port = free_port()
    _pg_ctl(d, owner, "-l", f"{d}/log", "-o",
            f"-c listen_addresses={HOST} -p {port} -k {d} -c fsync=off", "start")
    return port, d, owner


def create_database(port: int = 5432) -> PgDatabase:
    """Create a uniquely named database; raise (never skip) if no server can be had."""
    cluster = None
    owner = "postgres"
    try:
        conn, user = _admin_conn(port)
    except ConnectionError as first:
        try:
            port, cluster, owner = _start_private_cluster()
            conn, user = _admin_conn(port)
        except Exception as e:
            raise RuntimeError(f"PostgreSQL unavailable at {HOST}:5432 ({first}) and a "
                               f"private cluster failed too ({e}); run `make test`") from e
    name = f"ie_lab_{uuid.uuid4().hex[:12]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}" ENCODING \'UTF8\' TEMPLATE template0')
    return PgDatabase(port, user, name, cluster, owner)
