"""``jupyter orchestrator n8n install|serve``: put n8n on this machine, and run it for the platform."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import pwd
import signal
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from traitlets import Bool, Int, Unicode

from ..cli import OrchestratorCommand
from ..db.embedded import PASSWORDS_FILE
from ..db.engine import sqlalchemy_url
from ..db.setup import RUNS_SOCKET_ENV, prepare_database
from ..engine.accounts import RunAccount
from ..observability import logging as ologging
from ..security.crypto import KeyRing
from ..settings import OrchestratorSettings
from . import account, attach, database, integration, process, provision, team
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


@dataclass(frozen=True)
class _Platform:
    """The platform's database as ``serve`` reaches it, n8n's database on it, and the key ring."""

    admin_url: str
    db: database.N8nDatabase
    #: the socket folder other accounts reach the embedded server by (n8n's own account), None: TCP or none
    runs_host: str | None
    keyring: KeyRing


class _OnPlatform(_N8nSubcommand):
    """A command that runs n8n for the platform: as root beside the hub's service, it makes n8n's databases as the
    embedded server's account (:mod:`.attach`)."""

    #: how its messages start
    say = "n8n"
    prepare_as = Unicode(
        "auto",
        help="The account that makes n8n's database on the embedded PostgreSQL: 'auto' (where serve runs as root "
        "beside an embedded server of another account, the hub's service's: that account, in a child process), "
        "'none' (this process), or an account name.",
    ).tag(config=True)

    def _embedded_owner(self) -> pwd.struct_passwd | None:
        """The account to make n8n's database as (:mod:`.attach`): ``--prepare-as``, or with ``auto`` the
        embedded server's owner where this process is root and it is another account's; None: this process."""
        wanted = self.prepare_as.strip() or "auto"
        if wanted == "none" or self.orchestrator.database_url:
            return None
        if wanted != "auto":
            try:
                return pwd.getpwnam(wanted)
            except KeyError:
                print(f"{self.say}: no account '{wanted}' (--prepare-as)", file=sys.stderr)
                self.exit(2)
                raise
        return attach.owner_of(Path(self.orchestrator.data_dir))

    def _keyring(self, kept: str) -> KeyRing:
        """The operator's key ring where set, else the one kept in the data folder (the child read it): never one
        made here, in another account's folder."""
        if self.orchestrator.encryption_keys:
            return self.orchestrator.keyring()
        if not kept:
            print(f"{self.say}: no key ring in {self.orchestrator.data_dir} (keys.json) nor set", file=sys.stderr)
            self.exit(1)
        return KeyRing.parse(kept)


class N8nServeCommand(_OnPlatform):
    name = "jupyter-orchestrator-n8n-serve"
    description = "Run n8n headless on the loopback, its owner and API key made, the key kept as an integration."
    say = "n8n serve"
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
        "prepare-as": "N8nServeCommand.prepare_as",
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
        name = database.name_for(self.org)  # one instance per organization: a database and role of its own each
        owner = self._embedded_owner()
        if owner is not None:  # root beside the hub's service's embedded server: made as that account
            try:
                attached = attach.attach_as(owner, Path(self.orchestrator.data_dir), [name])
            except attach.AttachError as exc:
                print(f"n8n serve: {exc}", file=sys.stderr)
                self.exit(1)
                raise  # exit raises; for the type checker
            keyring = self._keyring(attached.keys)
            runs_host = os.environ.get(RUNS_SOCKET_ENV)
            self._serve(found, data_dir, _Platform(attached.admin_url, attached.databases[name], runs_host, keyring))
            return
        prepared = prepare_database(self.orchestrator.database_location())
        try:
            keys_dir = Path(self.orchestrator.data_dir)
            embedded = prepared.embedded
            passwords = embedded.passwords_file if embedded is not None else keys_dir / PASSWORDS_FILE
            db = database.provision(prepared.admin_url, passwords, role=name, database=name)
            runs_host = embedded.runs_host if embedded is not None else None
            self._serve(found, data_dir, _Platform(prepared.admin_url, db, runs_host, self.orchestrator.keyring()))
        finally:
            if prepared.embedded is not None:
                prepared.embedded.stop()

    def _serve(self, found: Installation, data_dir: Path, platform: _Platform) -> None:
        """n8n on its own database and role on the platform's PostgreSQL, until a signal or its end."""
        db, runs_as = self._account(platform.db, platform.runs_host, platform.db.database, data_dir, found)
        editor_path = self._editor_path(platform.admin_url)
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
                where = self._register(platform, running.base_url, api_key, editor)
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
        self, db: database.N8nDatabase, runs_host: str | None, name: str, data_dir: Path, found: Installation
    ) -> tuple[database.N8nDatabase, RunAccount | None]:
        """The account n8n runs as (None: this process's) and how it reaches its database: in team mode one of
        its own, which reaches nothing of the platform's (account.py)."""
        wanted = account.chosen(self.account, name)
        if wanted is None:
            return db, None
        try:
            db = account.reachable(db, runs_host)
            return db, account.prepare(wanted, data_dir, (found.node, found.n8n))
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

    def _register(self, platform: _Platform, base_url: str, api_key: str, editor: tuple[str, str, str] | None) -> str:
        org_id = self._org_id(platform.admin_url)
        engine = create_engine(sqlalchemy_url(platform.admin_url))
        try:
            integration.save(engine, platform.keyring, org_id, base_url, api_key, editor=editor)
        finally:
            engine.dispose()
        return f"the '{integration.INTEGRATION_NAME}' integration of organization {org_id} (encrypted)"


class N8nInstancesCommand(_OnPlatform):
    name = "jupyter-orchestrator-n8n-instances"
    description = (
        "Team mode, as root (the hub's n8n service): start each organization's n8n when its n8n runs want one, each "
        "under an account of its own; stop idle ones."
    )
    say = "n8n instances"
    data = Unicode(
        help="The instances' folders are <data>/orgs/<database>: a folder their accounts may pass through. "
        "Default: <orchestrator data_dir>/n8n."
    ).tag(config=True)
    service_prefix = Unicode(
        help="The URL prefix of the hub's Orchestrator service (e.g. /services/orchestrator/): each instance's "
        "editor is served there, as with serve --service-prefix."
    ).tag(config=True)
    aliases = {  # noqa: RUF012
        "data": "N8nInstancesCommand.data",
        "service-prefix": "N8nInstancesCommand.service_prefix",
        "prepare-as": "N8nInstancesCommand.prepare_as",
    }

    def start(self) -> None:
        if not installation().ready():
            print("n8n is not installed: run `jupyter orchestrator n8n install` first", file=sys.stderr)
            self.exit(1)
        if os.geteuid() != 0:
            print(f"{self.say}: each instance runs under an account of its own: run this as root", file=sys.stderr)
            self.exit(2)
        ologging.configure(level=logging.INFO, fmt=self.orchestrator.log_style)
        orchestrator_dir = Path(self.orchestrator.data_dir)
        root = (Path(self.data) if self.data else orchestrator_dir / "n8n") / "orgs"
        prefix = "/" + self.service_prefix.strip("/") + "/" if self.service_prefix else ""
        owner = self._embedded_owner()
        if owner is not None:
            try:
                attached = attach.attach_as(owner, orchestrator_dir, [])
            except attach.AttachError as exc:
                print(f"{self.say}: {exc}", file=sys.stderr)
                self.exit(1)
                raise

            def made_as(name: str) -> database.N8nDatabase:
                return attach.attach_as(owner, orchestrator_dir, [name]).databases[name]

            self._run(root, attached.admin_url, self._keyring(attached.keys), made_as, prefix)
            return
        prepared = prepare_database(self.orchestrator.database_location())
        try:
            keyring = self.orchestrator.keyring()
            self._run(
                root, prepared.admin_url, keyring, lambda name: database.for_embedded(orchestrator_dir, name), prefix
            )
        finally:
            if prepared.embedded is not None:
                prepared.embedded.stop()

    def _run(
        self,
        root: Path,
        admin_url: str,
        keyring: KeyRing,
        make: Callable[[str], database.N8nDatabase | None],
        prefix: str,
    ) -> None:
        async def until_stopped() -> None:
            stop = asyncio.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(signum, stop.set)
            await team.serve_instances(root, admin_url, keyring, make, stop, editor_prefix=prefix)

        asyncio.run(until_stopped())


class N8nCommand(OrchestratorCommand):
    name = "jupyter-orchestrator-n8n"
    description = "n8n for the platform: `jupyter orchestrator n8n install`, `jupyter orchestrator n8n serve`."
    subcommands = {  # noqa: RUF012
        "install": (N8nInstallCommand, N8nInstallCommand.description),
        "serve": (N8nServeCommand, N8nServeCommand.description),
        "instances": (N8nInstancesCommand, N8nInstancesCommand.description),
    }

    def start(self) -> None:
        if self.subapp is not None:
            self.subapp.start()
            return
        print("usage: jupyter orchestrator n8n install | serve [--port 5678] [--org ID] | instances", file=sys.stderr)
        self.exit(2)
