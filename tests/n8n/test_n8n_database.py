"""n8n keeps its data on the platform's PostgreSQL: a database and a password-authenticated role of its own.

The personal-mode test (test_personal_mode.py) runs n8n on it end to end and
checks n8n's rows there with :func:`n8n_rows`; the tests here check what the
role may and may not do, without starting n8n.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from orchestrator_ext.db.embedded import PASSWORDS_FILE, superuser_url
from orchestrator_ext.n8n.database import N8N_DATABASE, N8N_ROLE, N8nDatabase, provision
from tests.conftest import PgCluster, TestDatabase


def n8n_rows(data_dir: Path) -> list[str]:
    """The names of the workflows n8n keeps on the personal server's PostgreSQL, read as n8n's role."""
    admin = psycopg.conninfo.conninfo_to_dict(superuser_url(data_dir, N8N_DATABASE))
    password = json.loads((data_dir / PASSWORDS_FILE).read_text())[N8N_ROLE]
    n8n = N8nDatabase(str(admin["host"]), int(admin.get("port") or 5432), N8N_DATABASE, N8N_ROLE, password)
    with psycopg.connect(n8n.url(), connect_timeout=10) as conn:
        return [str(row[0]) for row in conn.execute("SELECT name FROM workflow_entity")]


@pytest.fixture
def n8n_db(pg_cluster: PgCluster) -> N8nDatabase:
    name = f"n8n_{uuid.uuid4().hex[:8]}"
    return provision(pg_cluster.admin_url(), pg_cluster.server.passwords_file, role=name, database=name)


def test_the_role_logs_in_with_its_password_and_owns_its_database(n8n_db: N8nDatabase) -> None:
    with psycopg.connect(n8n_db.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE workflow_entity (id text PRIMARY KEY, name text)")  # what n8n's migrations do
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (n8n_db.database,))
        assert owner.fetchone() == (n8n_db.user,)
        super_or_creator = conn.execute(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert super_or_creator == (False,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(n8n_db.url().replace(n8n_db.password, "wrong"), connect_timeout=5).close()
    assert n8n_db.environment()["DB_TYPE"] == "postgresdb"
    assert n8n_db.environment()["DB_POSTGRESDB_HOST"] == n8n_db.host  # the socket folder, as node-postgres takes it


def test_it_sees_nothing_of_the_platform_and_the_platform_not_its_database(
    n8n_db: N8nDatabase, pg_cluster: PgCluster, database: TestDatabase
) -> None:
    as_n8n = psycopg.conninfo.make_conninfo(n8n_db.url(), dbname=database.name)
    # the platform's database grants CONNECT to its application role alone: n8n's is refused at the door
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(as_n8n, connect_timeout=5).close()
    with pytest.raises(psycopg.OperationalError, match="permission denied"):
        psycopg.connect(pg_cluster.app_url(n8n_db.database), connect_timeout=5).close()


def test_provisioning_again_keeps_the_password(n8n_db: N8nDatabase, pg_cluster: PgCluster) -> None:
    """Each start of n8n provisions again: the same role, database and password (kept 0600 beside the keys)."""
    again = provision(pg_cluster.admin_url(), pg_cluster.server.passwords_file, role=n8n_db.user, database=n8n_db.user)
    assert again == n8n_db
    assert json.loads(pg_cluster.server.passwords_file.read_text())[n8n_db.user] == n8n_db.password
    assert pg_cluster.server.passwords_file.stat().st_mode & 0o077 == 0
    assert (N8N_ROLE, N8N_DATABASE) == ("orchestrator_n8n", "orchestrator_n8n")


def test_each_organizations_instance_has_a_database_of_its_own() -> None:
    from orchestrator_ext.n8n.database import name_for

    assert name_for("") == N8N_DATABASE
    team, other = name_for("my-team"), name_for("My Team")
    assert team.startswith("orchestrator_n8n_my_team_")
    assert team != other  # they clean alike, the digest keeps them apart
    assert len(name_for("x" * 200)) <= 63  # PostgreSQL's identifiers
