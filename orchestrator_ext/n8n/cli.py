"""``jupyter orchestrator n8n install|serve``: put n8n on this machine, and run it for the platform."""

from __future__ import annotations

import getpass
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from traitlets import Bool, Int, Unicode

from ..cli import OrchestratorCommand
from ..db.embedded import PASSWORDS_FILE
from ..db.engine import sqlalchemy_url
from ..db.setup import PreparedDatabase, prepare_database
from ..engine.accounts import RunAccount
from ..settings import OrchestratorSettings
from . import account, database, integration, process, provision
from .install import N8N_VERSION, Installation, InstallError, install, installation


class _N8nSubcommand(OrchestratorCommand):
    """``jupyter orchestrator n8n <command>``: its parent is :class:`N8nCommand`, whose parent has the settings."""

    @property
    def orchestrator(self) -> OrchestratorSettings:
        parent = self.parent
        while parent is not None and not isinstance(parent, OrchestratorSettings):
            parent = parent.parent
        if parent is None:  # pragma: no cover - always launched as a subcommand
            raise RuntimeError("run this as `jupyter orchestrator n8n <command>`")
        return parent


class N8nInstallCommand(_N8nSubcommand):
    name = "jupyter-orchestrator-n8n-install"
    description = f"Install n8n {N8N_VERSION} and the Node it needs from the npm registry (cached, idempotent)."
    force = Bool(False, help="Install again even when the pinned versions are there.").tag(config=True)
    flags = {"force": ({"N8nInstallCommand": {"force": True}}, "Install again.")}  # noqa: RUF012

    def start(self) -> None:
        try:
            install(say=lambda line: print(line, flush=True), force=self.force)
        except InstallError as exc:
            print(f"n8n install failed: {exc}", file=sys.stderr)
            self.exit(1)


class N8nServeCommand(_N8nSubcommand):
    name = "jupyter-orchestrator-n8n-serve"
    description = "Run n8n headless on the loopback, its owner and API key made, the key kept as an integration."
    port = Int(5678, help="Port n8n listens on (loopback only).").tag(config=True)
    data = Unicode(help="n8n's data folder. Default: <orchestrator data_dir>/n8n.").tag(config=True)
    org = Unicode(
        help="The organization (id or slug) whose 'n8n' integration gets the instance. "
        "Default: the owner's personal one."
    ).tag(config=True)
    register = Bool(True, help="Save the instance as the organization's 'n8n' integration.").tag(config=True)
    account = Unicode(
        "auto",
        help="The system account n8n runs as: 'auto' (one of its own, orch-n8n-..., when started as root: the "
        "team mode), 'none' (this process's), or an account name.",
    ).tag(config=True)
    service_prefix = Unicode(
        help="Team mode: the URL prefix of the hub's Orchestrator service (e.g. /services/orchestrator/). n8n's "
        "editor is then served by that service at <prefix>orchestrator/n8n/<organization id>/ to the "
        "organization's members, the service logging in as the instance's owner (kept sealed with the integration).",
    ).tag(config=True)
    aliases = {  # noqa: RUF012
        "service-prefix": "N8nServeCommand.service_prefix",
        "port": "N8nServeCommand.port",
        "data": "N8nServeCommand.data",
        "org": "N8nServeCommand.org",
        "account": "N8nServeCommand.account",
    }
    flags = {  # noqa: RUF012
        "no-register": ({"N8nServeCommand": {"register": False}}, "Do not save the instance as an integration."),
    }

    def start(self) -> None:
        found = installation()
        if not found.ready():
            print("n8n is not installed: run `jupyter orchestrator n8n install` first", file=sys.stderr)
            self.exit(1)
        data_dir = Path(self.data) if self.data else Path(self.orchestrator.data_dir) / "n8n"
        prepared = prepare_database(self.orchestrator.database_location())
        try:
            self._serve(found, data_dir, prepared)
        finally:
            if prepared.embedded is not None:
                prepared.embedded.stop()

    def _serve(self, found: Installation, data_dir: Path, prepared: PreparedDatabase) -> None:
        """n8n on its own database and role on the platform's PostgreSQL, until a signal or its end."""
        keys_dir = Path(self.orchestrator.data_dir)
        passwords = prepared.embedded.passwords_file if prepared.embedded is not None else keys_dir / PASSWORDS_FILE
        name = database.name_for(self.org)  # one instance per organization: a database and role of its own each
        db = database.provision(prepared.admin_url, passwords, role=name, database=name)
        db, runs_as = self._account(db, prepared, name, data_dir, (found.node, found.n8n))
        editor_path = self._editor_path(prepared.admin_url)
        running = process.start(found, data_dir, self.port, database=db, account=runs_as, editor_path=editor_path)
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            took = process.wait_ready(running)
            api_key = provision.provision(running.base_url, data_dir)
            where = "not saved (--no-register)"
            if self.register:
                editor = (editor_path, *provision.load_owner(data_dir).login) if editor_path else None
                where = self._register(prepared.admin_url, running.base_url, api_key, editor)
            print(
                f"n8n {N8N_VERSION} at {running.base_url} (ready in {took:.1f} s, database {db.database} as "
                f"{db.user}, as {runs_as.name if runs_as else 'this account'}); API key: {where}",
                flush=True,
            )
            while not stopping and running.process.poll() is None:
                time.sleep(0.5)
        finally:
            process.stop(running)
        self.exit(0 if stopping else 1)

    def _account(
        self,
        db: database.N8nDatabase,
        prepared: PreparedDatabase,
        name: str,
        data_dir: Path,
        programs: tuple[Path, ...],
    ) -> tuple[database.N8nDatabase, RunAccount | None]:
        """The account n8n runs as (None: this process's) and how it reaches its database: in team mode one of
        its own, which reaches nothing of the platform's (account.py)."""
        wanted = account.chosen(self.account, name)
        if wanted is None:
            return db, None
        try:
            db = account.reachable(db, prepared.embedded.runs_host if prepared.embedded is not None else None)
            return db, account.prepare(wanted, data_dir, programs)
        except account.N8nAccountError as exc:
            print(f"n8n serve: {exc}", file=sys.stderr)
            self.exit(1)
            raise  # exit raises; for the type checker

    def _org_id(self, admin_url: str) -> uuid.UUID:
        engine = create_engine(sqlalchemy_url(admin_url))
        try:
            owner = str(getattr(self.orchestrator, "owner", "") or getpass.getuser())
            return integration.find_org(engine, self.org, owner)
        finally:
            engine.dispose()

    def _editor_path(self, admin_url: str) -> str | None:
        """Where the hub's service serves the editor (n8n's pages ask for their URLs under it), or None."""
        if not self.service_prefix:
            return None
        if not self.register:
            print("n8n serve: --service-prefix needs the integration (not --no-register)", file=sys.stderr)
            self.exit(2)
        prefix = "/" + self.service_prefix.strip("/") + "/"
        return f"{prefix}orchestrator/n8n/{self._org_id(admin_url)}/"

    def _register(self, admin_url: str, base_url: str, api_key: str, editor: tuple[str, str, str] | None) -> str:
        org_id = self._org_id(admin_url)
        engine = create_engine(sqlalchemy_url(admin_url))
        try:
            integration.save(engine, self.orchestrator.keyring(), org_id, base_url, api_key, editor=editor)
        finally:
            engine.dispose()
        return f"the '{integration.INTEGRATION_NAME}' integration of organization {org_id} (encrypted)"


class N8nCommand(OrchestratorCommand):
    name = "jupyter-orchestrator-n8n"
    description = "n8n for the platform: `jupyter orchestrator n8n install`, `jupyter orchestrator n8n serve`."
    subcommands = {  # noqa: RUF012
        "install": (N8nInstallCommand, N8nInstallCommand.description),
        "serve": (N8nServeCommand, N8nServeCommand.description),
    }

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        print("usage: jupyter orchestrator n8n install | serve [--port 5678] [--org ID]", file=sys.stderr)
        self.exit(2)
