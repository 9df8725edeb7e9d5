"""Engines, sessions and the start-up steps: migrate, provision the app role.

The server talks to PostgreSQL through one async engine (psycopg 3, pooled).
Migrations and role provisioning run once at start-up on a short-lived
synchronous connection with the *admin* URL (the owner of the tables).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from .reads import ReadPool

log = logging.getLogger("orchestrator.db")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlalchemy_url(url: str) -> str:
    """Accept ``postgresql://`` URLs and select the psycopg 3 driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername != "postgresql+psycopg":
        raise ValueError(f"only PostgreSQL URLs are supported, got {parsed.drivername!r}")
    return parsed.render_as_string(hide_password=False)


def alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(admin_url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent): upgrade to a newer one, downgrade to an older one."""
    engine = create_engine(sqlalchemy_url(admin_url), poolclass=None)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            if _is_older(config, connection, revision):
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)
    finally:
        engine.dispose()


def _is_older(config: Any, connection: Any, revision: str) -> bool:
    """Whether ``revision`` is below the database's current revision (so reaching it is a downgrade)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    current = MigrationContext.configure(connection).get_current_revision()
    if current is None or revision == "head":
        return False
    if revision == "base":
        return True
    script = ScriptDirectory.from_config(config)
    target = script.get_revision(revision)
    below = {rev.revision for rev in script.walk_revisions(base="base", head=current)}
    return target is not None and target.revision != current and target.revision in below


def provision_app_role(admin_url: str, role: str) -> None:
    """Create the application's login role if missing: no superuser, no BYPASSRLS, DML only.

    Identifiers are quoted by the dialect; the existence check binds the name.
    """
    engine = create_engine(sqlalchemy_url(admin_url))
    quote = engine.dialect.identifier_preparer.quote
    try:
        with engine.begin() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
            if exists is None:
                conn.execute(text(f"CREATE ROLE {quote(role)} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"))
        with engine.begin() as conn:
            database = conn.execute(text("SELECT current_database()")).scalar_one()
            grants = [
                # only the roles granted it may connect: not organizations' runs' roles, nor n8n's
                f"REVOKE CONNECT, TEMPORARY ON DATABASE {quote(database)} FROM PUBLIC",
                f"GRANT CONNECT ON DATABASE {quote(database)} TO {quote(role)}",
                f"GRANT USAGE ON SCHEMA public TO {quote(role)}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quote(role)}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quote(role)}",
            ]
            if conn.execute(text("SELECT to_regclass('alembic_version')")).scalar_one() is not None:
                grants.append(f"REVOKE ALL ON TABLE alembic_version FROM {quote(role)}")
            for statement in grants:
                conn.execute(text(statement))
    except ProgrammingError as exc:
        if not isinstance(exc.orig, psycopg.errors.DuplicateObject):
            raise
        # another process created the role between our check and our CREATE: it exists now
        provision_app_role(admin_url, role)
    finally:
        engine.dispose()


def warn_if_rls_bypassed(url: str) -> bool:
    """True (and a warning) when the application role would ignore row-level security."""
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
            ).scalar_one()
    finally:
        engine.dispose()
    if row:
        log.warning(
            "the database role of OrchestratorApp.database_url is a superuser or has BYPASSRLS: "
            "row-level security is not enforced; give the server a plain role "
            "and put the owner in OrchestratorApp.database_admin_url"
        )
    return bool(row)


@dataclass(frozen=True)
class PoolSettings:
    size: int = 10
    max_overflow: int = 10
    timeout: float = 10.0
    recycle: int = 1800
    statement_timeout_ms: int = 30_000


class Database:
    """The async engine and its session factory; one per server process."""

    def __init__(self, url: str, pool: PoolSettings) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool.size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.timeout,
            pool_recycle=pool.recycle,
            # Optimistic disconnect handling: no ping round trip per checkout. When the
            # database restarts, the first statement on a dead connection fails (503,
            # retryable) and SQLAlchemy invalidates the whole pool, so later requests
            # get fresh connections.
            pool_pre_ping=False,
            # error messages must not carry the bound values (inputs, search strings) into logs
            hide_parameters=True,
            connect_args={"options": f"-c statement_timeout={pool.statement_timeout_ms} -c timezone=UTC"},
        )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self.reads = ReadPool(
            url, size=max(2, pool.size), statement_timeout_ms=pool.statement_timeout_ms, timeout=pool.timeout
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def pool_status(self) -> dict[str, int]:
        pool = self.engine.pool
        reads = self.reads.status()
        return {
            "size": int(getattr(pool, "size", lambda: 0)()),
            "checked_out": int(getattr(pool, "checkedout", lambda: 0)()),
            # SQLAlchemy counts overflow from -pool_size; only connections above the pool matter here
            "overflow": max(0, int(getattr(pool, "overflow", lambda: 0)())),
            "checked_in": int(getattr(pool, "checkedin", lambda: 0)()),
            # the fast read path's own connections
            "reads_open": reads["size"],
            "reads_idle": reads["available"],
        }

    async def dispose(self) -> None:
        await self.reads.close()
        await self.engine.dispose()
