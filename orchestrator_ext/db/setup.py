"""Where the database is, and getting it ready: shared by the server and the CLI commands."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from .embedded import EmbeddedPostgres
from .engine import migrate, provision_app_role, warn_if_rls_bypassed


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
    #: where runs keep their state (checkpoints, memory, knowledge); None: not provisioned
    runs_url: str | None = None


def prepare_database(where: DatabaseLocation, *, revision: str | None = "head") -> PreparedDatabase:
    """Start the embedded server if no URL is configured, migrate to ``revision`` (None: don't),
    and provision the server's role."""
    if where.database_url:
        admin_url = where.database_admin_url or where.database_url
        if revision is not None:
            migrate(admin_url, revision)
        username = make_url(where.database_url).username
        if where.database_admin_url and username:
            provision_app_role(admin_url, username)
        prepared = PreparedDatabase(admin_url, where.database_url, None)
    else:
        embedded = EmbeddedPostgres(where.data_dir / "pgdata", app_role=where.app_role)
        embedded.start()
        admin_url = embedded.admin_url()
        if revision is not None:
            migrate(admin_url, revision)
        provision_app_role(admin_url, where.app_role)
        runs_url = embedded.provision_runs_database()
        prepared = PreparedDatabase(admin_url, embedded.role_url(where.app_role), embedded, runs_url)
    warn_if_rls_bypassed(prepared.app_url)
    return prepared
