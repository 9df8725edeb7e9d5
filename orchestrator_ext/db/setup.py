"""Where the database is, and getting it ready: shared by the server and the CLI commands.

A process that starts while the database is away (its postmaster restarting,
an external server rebooting) waits for it, retrying with a growing pause and
saying so in its log, rather than crashing: :func:`prepare_database`.
"""

from __future__ import annotations

import logging
import os
import subprocess  # nosec B404 - only its exceptions (pg_ctl's, through the wheel)
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psycopg
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from .embedded import EmbeddedPostgres
from .engine import migrate, provision_app_role, warn_if_rls_bypassed

log = logging.getLogger("orchestrator.db")
T = TypeVar("T")
#: how long a starting process waits for its database before it gives up, in seconds
PATIENCE_SECONDS = 300.0
#: a socket folder the embedded server listens in besides its data directory: the team mode's runs, under
#: accounts of their own, reach their runs' databases there (hub_config/team.py sets it)
RUNS_SOCKET_ENV = "ORCHESTRATOR_RUNS_SOCKET_DIR"
MAX_PAUSE_SECONDS = 10.0
#: SQLSTATE classes that say "not now" rather than "not you": the server is starting, stopping or restarting
TRANSIENT_STATES = ("57P", "08")
#: what a server that answers says when it refuses us for good: a wrong password or name, no entry in pg_hba.conf
REFUSALS = ("password authentication failed", "does not exist", "no pg_hba.conf entry", "permission denied")


@dataclass(frozen=True)
class DatabaseLocation:
    """The configured database: an external URL pair, or the embedded server under ``data_dir``."""

    database_url: str
    database_admin_url: str
    data_dir: Path
    app_role: str


@dataclass
class PreparedDatabase:
    admin_url: str
    app_url: str
    embedded: EmbeddedPostgres | None
    #: where runs keep their state (checkpoints, memory, knowledge): the URL of a server on which each
    #: organization gets a database and role of its own (orchestrator_ext.engine.runs_state), and the
    #: socket folder runs reach it by; None: not the embedded server's
    runs_admin_url: str | None = None
    runs_host: str | None = None


def transient(exc: BaseException) -> bool:
    """Whether a failure to reach the database may pass by itself: no server answering (yet), a server
    starting or shutting down, ``pg_ctl`` failing while a dead server's processes linger. A refused
    password or a missing database is not: waiting would not change it."""
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    if isinstance(exc, psycopg.OperationalError):
        if any(refusal in str(exc) for refusal in REFUSALS):  # a connection refused says so only in words
            return False
        state = exc.sqlstate or ""
        return not state or state.startswith(TRANSIENT_STATES)
    return isinstance(exc, (subprocess.SubprocessError, ConnectionError, TimeoutError))


def with_patience(step: Callable[[], T], what: str, patience: float = PATIENCE_SECONDS) -> T:
    """``step()``, tried again while it fails for a :func:`transient` reason, for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    pause, tries = 0.5, 1
    while True:
        try:
            return step()
        except Exception as exc:
            if not transient(exc) or time.monotonic() + pause > deadline:
                raise
            log.warning(
                "%s: the database is not reachable yet (%s: %s); try %d, again in %.1f s",
                what,
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                tries,
                pause,
            )
        time.sleep(pause)
        pause, tries = min(MAX_PAUSE_SECONDS, pause * 2), tries + 1


def prepare_database(
    where: DatabaseLocation, *, revision: str | None = "head", patience: float = PATIENCE_SECONDS
) -> PreparedDatabase:
    """Start the embedded server if no URL is configured, migrate to ``revision`` (None: don't),
    and provision the server's role; while the database is away, wait for it (``patience`` seconds)."""
    return with_patience(lambda: _prepare(where, revision), "preparing the database", patience)


def _prepare(where: DatabaseLocation, revision: str | None) -> PreparedDatabase:
    if where.database_url:
        admin_url = where.database_admin_url or where.database_url
        if revision is not None:
            migrate(admin_url, revision)
        username = make_url(where.database_url).username
        if where.database_admin_url and username:
            provision_app_role(admin_url, username)
        prepared = PreparedDatabase(admin_url, where.database_url, None)
    else:
        runs_socket = Path(os.environ[RUNS_SOCKET_ENV]) if os.environ.get(RUNS_SOCKET_ENV) else None
        embedded = EmbeddedPostgres(where.data_dir / "pgdata", app_role=where.app_role, runs_socket_dir=runs_socket)
        embedded.start()
        try:
            admin_url = embedded.admin_url()
            if revision is not None:
                migrate(admin_url, revision)
            provision_app_role(admin_url, where.app_role)
        except BaseException:
            embedded.stop()  # the next try (or nobody) holds it
            raise
        prepared = PreparedDatabase(
            admin_url, embedded.role_url(where.app_role), embedded, embedded.admin_url("postgres"), embedded.runs_host
        )
    try:
        warn_if_rls_bypassed(prepared.app_url)
    except BaseException:
        if prepared.embedded is not None:
            prepared.embedded.stop()
        raise
    return prepared
