"""Migrations apply to an empty database, are idempotent, and downgrade cleanly."""

from __future__ import annotations

import psycopg
from alembic import command
from sqlalchemy import create_engine

from orchestrator_ext.db.engine import alembic_config, migrate, sqlalchemy_url
from tests.conftest import PgCluster

HEAD = "0014"


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_upgrade_downgrade_upgrade(pg_cluster: PgCluster) -> None:
    url = pg_cluster.admin_url(pg_cluster.new_database())
    migrate(url)
    migrate(url)  # already at head: nothing to do
    assert {"agents", "workflow_versions", "workflow_executions", "integrations", "audit_events"} <= _tables(url)
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    engine.dispose()
    assert _tables(url) == {"alembic_version"}
    migrate(url)
    with psycopg.connect(url) as conn:
        tiers = conn.execute("SELECT name FROM resource_tiers ORDER BY name").fetchall()
    assert ("free",) in tiers


def test_models_match_migrations(pg_cluster: PgCluster) -> None:
    """Autogenerate finds nothing to add: the models and the migrations agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from orchestrator_ext.db.models import Base

    url = pg_cluster.admin_url(pg_cluster.new_database())
    migrate(url)
    engine = create_engine(sqlalchemy_url(url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def _revision(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])


def test_migrate_goes_back_to_an_older_revision_and_forward_again(pg_cluster: PgCluster) -> None:
    """``jupyter orchestrator migrate --revision <older>`` is the rollback of an upgrade: it downgrades."""
    url = pg_cluster.admin_url(pg_cluster.new_database())
    migrate(url)
    assert _revision(url) == HEAD
    assert "waiting_for" in _columns(url, "workflow_executions")
    assert "slug" in _columns(url, "organizations")
    migrate(url, "0006")
    assert _revision(url) == "0006"
    assert "slug" not in _columns(url, "organizations")
    assert "source" not in _columns(url, "organization_members")
    migrate(url, "0005")
    assert _revision(url) == "0005"
    assert "waiting_for" not in _columns(url, "workflow_executions")
    migrate(url, "0005")  # already there: nothing to do
    migrate(url)
    assert _revision(url) == HEAD
    assert "source" in _columns(url, "organization_members")


def _columns(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        ).fetchall()
    return {r[0] for r in rows}
