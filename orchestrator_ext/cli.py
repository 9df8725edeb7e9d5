"""``jupyter orchestrator <command>``: operator commands beside the server.

``jupyter orchestrator`` alone starts the server (personal mode); these
subcommands share its configuration (the ``OrchestratorApp`` traits and their
environment variables) through their parent application.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jupyter_core.application import JupyterApp
from sqlalchemy import create_engine
from traitlets import Bool, Unicode

from .db.engine import sqlalchemy_url
from .db.setup import prepare_database
from .security.crypto import KeyRing, generate_key
from .services.keys import reencrypt_all, remaining
from .services.tiers import set_tier
from .settings import OrchestratorSettings


class OrchestratorCommand(JupyterApp):
    """A subcommand reads the server's settings from its parent OrchestratorApp.

    It knows the parent only as :class:`OrchestratorSettings` (the traits they share), so this
    module does not import the app that lists the subcommands.
    """

    @property
    def orchestrator(self) -> OrchestratorSettings:
        parent = self.parent
        if not isinstance(parent, OrchestratorSettings):  # pragma: no cover - always launched as a subcommand
            raise RuntimeError("run this as `jupyter orchestrator <command>`")
        return parent


class MigrateCommand(OrchestratorCommand):
    name = "jupyter-orchestrator-migrate"
    description = "Apply the database migrations (the server also does this at start-up)."
    revision = Unicode("head", help="Alembic revision to migrate to (e.g. head, or 0001 to go back).").tag(config=True)
    aliases = {"revision": "MigrateCommand.revision"}  # noqa: RUF012

    def start(self) -> None:
        prepared = prepare_database(self.orchestrator.database_location(), revision=self.revision)
        try:
            print(f"database migrated to {self.revision}")
        finally:
            if prepared.embedded is not None:
                prepared.embedded.stop()


class RotateKeysCommand(OrchestratorCommand):
    name = "jupyter-orchestrator-rotate-keys"
    description = "Re-encrypt personal data and secrets with the primary encryption key."
    generate = Bool(
        False,
        help="""Personal mode (generated keys.json): add a new random key as the primary first.
        With ORCHESTRATOR_ENCRYPTION_KEYS, put the new key first yourself instead.""",
    ).tag(config=True)
    prune = Bool(False, help="Afterwards, drop the older keys from keys.json (personal mode).").tag(config=True)
    flags = {  # noqa: RUF012
        "generate": ({"RotateKeysCommand": {"generate": True}}, "Add a new primary key to keys.json first."),
        "prune": ({"RotateKeysCommand": {"prune": True}}, "Drop the old keys from keys.json afterwards."),
    }

    def start(self) -> None:
        app = self.orchestrator
        keys_file = Path(app.data_dir) / "keys.json"
        if (self.generate or self.prune) and app.encryption_keys:
            raise SystemExit("--generate/--prune manage keys.json; with ORCHESTRATOR_ENCRYPTION_KEYS edit the ring.")
        ring = app.keyring()
        if self.generate:
            key_id = f"k{len(ring.keys) + 1}"
            ring = KeyRing(keys={key_id: _decode(generate_key()), **ring.keys}, primary=key_id)
            _write_keys(keys_file, ring)
        prepared = prepare_database(app.database_location())
        engine = create_engine(sqlalchemy_url(prepared.admin_url))
        try:
            report = reencrypt_all(engine, ring)
            left = remaining(engine, ring)
        finally:
            engine.dispose()
            if prepared.embedded is not None:
                prepared.embedded.stop()
        if self.prune and left:
            raise SystemExit(f"{left} values are still under older keys (written during the rotation): run again.")
        if self.prune:
            _write_keys(keys_file, KeyRing(keys={ring.primary: ring.keys[ring.primary]}, primary=ring.primary))
        print(f"primary key {ring.primary}: {report}")


class SetTierCommand(OrchestratorCommand):
    name = "jupyter-orchestrator-set-tier"
    description = "Move an organization to any resource tier (operators; owners only reach the self-service tiers)."
    org = Unicode(help="The organization's id.").tag(config=True)
    tier = Unicode(help="The tier's name (free, team, gpu-small, gpu-large, enterprise, ...).").tag(config=True)
    aliases = {"org": "SetTierCommand.org", "tier": "SetTierCommand.tier"}  # noqa: RUF012

    def start(self) -> None:
        if not self.org or not self.tier:
            raise SystemExit("usage: jupyter orchestrator set-tier --org=<organization id> --tier=<tier name>")
        prepared = prepare_database(self.orchestrator.database_location())
        engine = create_engine(sqlalchemy_url(prepared.admin_url))
        try:
            message = set_tier(engine, self.org, self.tier)
        finally:
            engine.dispose()
            if prepared.embedded is not None:
                prepared.embedded.stop()
        print(message)


def _decode(encoded: str) -> bytes:
    return KeyRing.parse(f"x:{encoded}").keys["x"]


def _write_keys(path: Path, ring: KeyRing) -> None:
    data: dict[str, Any] = {"keys": ring.serialize()}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    tmp.replace(path)
