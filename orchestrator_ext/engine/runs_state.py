"""The runs' database, one per organization: where LangGraph checkpoints, Agno memory and knowledge live.

Runs keep state in PostgreSQL (a human approval waits in a checkpoint, an Agno
agent remembers across runs). Every organization gets, on the server the
platform administers (the embedded one, or ``runs_database_admin_url``):

- a **database of its own**, ``orch_runs_<12 hex digits of its id's hash>``,
  which only its role may connect to (``CONNECT`` revoked from ``PUBLIC``), with
  ``vector`` (pgvector) created in it and its ``public`` schema owned by the role.
  A database rather than a schema: the frameworks choose their schemas themselves
  (LangGraph ``public``, Agno ``ai``), so a code-first ``PostgresDb(db_url=...)``
  works unchanged, and PostgreSQL's catalogs are per database, so nothing of another
  organization's tables, not even their names, is visible;
- a **role of its own** of the same name: ``LOGIN``, no superuser, no
  ``CREATEDB``/``CREATEROLE``/``BYPASSRLS``, authenticated with SCRAM-SHA-256.
  Its password is derived (HMAC-SHA-256 of the organization's id) from the secret every
  worker that may provision already holds, the server's admin password (else the
  oldest key of the key ring, which ``rotate-keys`` keeps): it is stored nowhere,
  every worker computes the same one, a key rotation changes none of them (workers
  on the old and the new ring would otherwise reset each other's), and PostgreSQL
  receives only a verifier computed here. pg_hba.conf of the embedded server keeps
  the role (a member of ``orch_runs``) in its own database; the platform's database
  grants ``CONNECT`` to its application role alone.

A run gets its organization's URL in its job (over the worker's pipe or socket,
never a command line), and a fork server of the organization's own account gets it
in its environment; neither is readable by another account (the fork server is
non-dumpable). Provisioning happens once per organization and worker process.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import uuid
from base64 import urlsafe_b64encode
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import psycopg
from orchestrator_runtimes import RunError
from orchestrator_runtimes.runtime import ErrorKind
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ..db.embedded import PLAIN_ROLE, RUNS_GROUP, libpq_url, set_login_role
from ..security.crypto import KeyRing

log = logging.getLogger("orchestrator.engine")
#: the URL of an organization's runs' database, by its id (:meth:`RunsDatabases.url_for`)
StateFor = Callable[[str], Awaitable[str]]

PREFIX = "orch_runs_"
#: what an organization's role may not do beyond its own database (PostgreSQL's defaults made explicit)
ROLE = PLAIN_ROLE + " NOREPLICATION CONNECTION LIMIT 64"
#: serializes provisioning among the workers that share a server
LOCK = "orchestrator.runs_state.provision"
CONTEXT = b"orchestrator runs' database role\x00"


def database_name(org_id: uuid.UUID | str) -> str:
    """The database and role of an organization's runs: stable, and telling nothing of the organization."""
    return PREFIX + hashlib.sha256(str(org_id).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class RunsServer:
    """The server organizations' runs' databases are made on: ``admin_url`` may create roles and databases
    (the embedded server's superuser, or ``runs_database_admin_url``); ``host`` and ``port`` are where runs
    reach it (None: where ``admin_url`` does; for the embedded server in the team mode, the socket folder
    runs may enter)."""

    admin_url: str = field(repr=False)  # the superuser's password is in it
    host: str | None = None
    port: int | None = None


def embedded_runs(admin_url: str | None, host: str | None) -> RunsServer | None:
    """The embedded server as a :class:`RunsServer` (what :func:`~orchestrator_ext.db.setup.prepare_database`
    found: its superuser's URL and the socket folder runs reach), or None where there is none."""
    return RunsServer(admin_url, host) if admin_url else None


class RunsDatabases:
    """Gives each organization's runs the URL of their own database, made on first use."""

    def __init__(self, server: RunsServer, keyring: KeyRing | None) -> None:
        self.server = server
        admin_password = conninfo_to_dict(libpq_url(server.admin_url)).get("password")
        if admin_password:
            self._secret = hashlib.sha256(CONTEXT + str(admin_password).encode()).digest()
        elif keyring is not None:  # the oldest key: rotate-keys puts new ones before it
            self._secret = keyring.keys[list(keyring.keys)[-1]]
        else:  # no keys (a bare test worker): passwords valid while this process lives
            log.warning("no key ring: the runs' databases' passwords are reset by each worker that starts")
            self._secret = secrets.token_bytes(32)
        self._urls: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def password(self, org_id: uuid.UUID | str) -> str:
        digest = hmac.new(self._secret, CONTEXT + str(org_id).encode(), hashlib.sha256).digest()
        return urlsafe_b64encode(digest).decode().rstrip("=")

    async def url_for(self, org_id: uuid.UUID | str) -> str:
        """The URL of ``org_id``'s runs' database (its role, its password), provisioned on first use."""
        key = str(org_id)
        if key in self._urls:
            return self._urls[key]
        async with self._locks.setdefault(key, asyncio.Lock()):
            if key not in self._urls:
                self._urls[key] = await asyncio.to_thread(self.provision, key)
        return self._urls[key]

    def provision(self, org_id: str) -> str:
        """Create (or bring up to date) the organization's role and database; the URL its runs use."""
        name, password = database_name(org_id), self.password(org_id)
        admin = libpq_url(self.server.admin_url)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (LOCK,))
            set_login_role(conn, name, password, ROLE, enforce=True)
            role = sql.Identifier(name)
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(role))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(role))
            # the group pg_hba.conf keeps in their own databases (embedded server; elsewhere, a name to match)
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RUNS_GROUP,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(RUNS_GROUP)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(RUNS_GROUP), role))
            conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {} TO {}").format(role, role))
            host, port = conn.info.host, int(conn.info.port)
        with psycopg.connect(admin, dbname=name, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(role))
            try:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as exc:  # a managed server's admin that may not: knowledge then fails, the rest works
                log.warning("pgvector could not be created in %s: %s", name, str(exc).strip())
        log.info("runs' database %s ready", name)
        return role_url(name, password, self.server.host or host, self.server.port or port)


def role_url(name: str, password: str, host: str, port: int) -> str:
    """``postgresql://`` URL (what LangGraph, Agno and SQLAlchemy all take) of ``name`` on its own database,
    by a socket folder (``host`` a path) or an address."""
    credentials = f"{quote(name, safe='')}:{quote(password, safe='')}"
    if host.startswith("/"):
        return f"postgresql://{credentials}@/{name}?host={quote(host, safe='/')}&port={port}"
    address = f"[{host}]" if ":" in host else host
    return f"postgresql://{credentials}@{address}:{port}/{name}"


def provider(server: RunsServer | None, keyring: KeyRing | None) -> StateFor | None:
    """What a worker's runner pool asks for an organization's runs' database URL; None: no server to make
    them on (runs then get the one shared database the worker was given, or none)."""
    return RunsDatabases(server, keyring).url_for if server is not None else None


async def with_state(job: dict[str, Any], state: StateFor | None) -> dict[str, Any]:
    """The job with its organization's runs' database (in the job, never on a command line), where each
    organization has its own; else as the worker made it (one shared database, or none)."""
    if state is None or not job.get("org_id"):
        return job
    try:
        url = await state(str(job["org_id"]))
    except Exception as exc:  # the database, not the workflow: worth another attempt
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunError(ErrorKind.INTERNAL, f"the runs' database is not ready: {detail}", retryable=True) from exc
    return {**job, "state_url": url}
