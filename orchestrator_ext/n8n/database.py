"""n8n on the platform's PostgreSQL: a database and a password-authenticated role of its own.

n8n keeps its workflows, credentials (encrypted with its own key, in its data
folder) and executions in a database. Instead of a SQLite file, the platform
gives it a database on its PostgreSQL (``orchestrator_n8n``, owned by the role
``orchestrator_n8n``), made with the server's administrator URL:

- the role is a plain login role (no superuser, no role or database creation,
  no row-security bypass) whose password is generated once and kept with the
  other roles' passwords (``postgres-passwords.json``, mode 0600, beside the
  key ring); PostgreSQL receives only its SCRAM-SHA-256 verifier, computed here;
- nobody else may connect to n8n's database (``CONNECT`` revoked from
  ``PUBLIC``); n8n's role may not connect to the platform's database either
  (its ``CONNECT`` is granted to the application's role alone:
  :func:`orchestrator_ext.db.engine.provision_app_role`).

n8n (node-postgres) reaches the embedded server by its socket folder, given as
the host.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from ..db.embedded import PASSWORDS_FILE, PLAIN_ROLE, libpq_url, load_or_create_passwords, set_login_role, superuser_url

N8N_ROLE = "orchestrator_n8n"
N8N_DATABASE = "orchestrator_n8n"


@dataclass(frozen=True)
class N8nDatabase:
    """Where n8n's database is, and the role n8n logs in as."""

    host: str
    port: int
    database: str
    user: str
    password: str

    def environment(self) -> dict[str, str]:
        """n8n's settings for it (n8n reads only its environment)."""
        return {
            "DB_TYPE": "postgresdb",
            "DB_POSTGRESDB_HOST": self.host,
            "DB_POSTGRESDB_PORT": str(self.port),
            "DB_POSTGRESDB_DATABASE": self.database,
            "DB_POSTGRESDB_USER": self.user,
            "DB_POSTGRESDB_PASSWORD": self.password,
            "DB_POSTGRESDB_SCHEMA": "public",
            "DB_POSTGRESDB_POOL_SIZE": "4",
        }

    def url(self) -> str:
        """A libpq URL of n8n's role on its database (to check what the role may do)."""
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=self.port, dbname=self.database, user=self.user, password=self.password
        )


def provision(admin_url: str, passwords_file: Path, role: str = N8N_ROLE, database: str = N8N_DATABASE) -> N8nDatabase:
    """Create (or keep) n8n's role and database on the server ``admin_url`` names; how n8n reaches them."""
    password = load_or_create_passwords(passwords_file, (role,))[role]
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        set_login_role(conn, role, password, PLAIN_ROLE, enforce=False)
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role)))
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
        host, port = conn.info.host, conn.info.port
    return N8nDatabase(host, int(port), database, role, password)


def name_for(org: str) -> str:
    """The database and role of the instance ``jupyter orchestrator n8n serve --org ORG`` runs (one per
    organization); ``orchestrator_n8n`` for the owner's personal one (``org`` empty)."""
    if not org:
        return N8N_DATABASE
    cleaned = re.sub(r"[^a-z0-9_]+", "_", org.lower()).strip("_")[:32]
    digest = hashlib.sha256(org.encode()).hexdigest()[:6]  # two slugs that clean alike stay apart
    return f"{N8N_DATABASE}_{cleaned}_{digest}"


def for_embedded(orchestrator_data_dir: Path, database: str = N8N_DATABASE) -> N8nDatabase | None:
    """n8n's database (and role of the same name) on the personal mode's embedded server (running: it holds
    ``postmaster.pid``), else None."""
    if not (orchestrator_data_dir / "pgdata" / "postmaster.pid").is_file():
        return None
    admin = superuser_url(orchestrator_data_dir, "postgres")
    return provision(admin, orchestrator_data_dir / PASSWORDS_FILE, role=database, database=database)
