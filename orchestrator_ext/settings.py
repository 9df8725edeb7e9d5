"""What the server and its commands share: where the database is, the keys, the log format.

A mixin of traits, like :mod:`orchestrator_ext.engine.settings`: the extension
app inherits it (``c.OrchestratorApp.database_url`` keeps working), and the
operator commands (``jupyter orchestrator migrate``, ``worker``, ...) read it from
their parent application without importing the app, so ``cli`` and ``app``
depend on this module and not on each other.
"""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import CaselessStrEnum, Unicode, default

from .db.setup import DatabaseLocation
from .engine.settings import EngineSettings
from .security.crypto import KeyRing, load_or_create_keyring


def env_setting(name: str, fallback: str = "") -> str:
    """An environment setting; an empty value (a blank line of a .env file) counts as unset."""
    return os.environ.get(name) or fallback


class OrchestratorSettings(EngineSettings):
    """The settings a command needs without the server: the database, the key ring, the logs."""

    database_url = Unicode(
        help="""PostgreSQL URL the server connects with (e.g. postgresql://orchestrator_app:pw@db:5432/orchestrator).
        Empty: start the embedded PostgreSQL server under data_dir. Env: ORCHESTRATOR_DATABASE_URL.""",
    ).tag(config=True)

    database_admin_url = Unicode(
        help="""URL of the role that owns the tables, used for migrations and to grant the server's role
        its privileges. Empty: database_url. Env: ORCHESTRATOR_DATABASE_ADMIN_URL.""",
    ).tag(config=True)

    app_role = Unicode(
        "orchestrator_app",
        help="The non-superuser role the server uses on the embedded PostgreSQL (row-level security applies to it).",
    ).tag(config=True)

    data_dir = Unicode(
        help="Where the personal mode keeps its database and generated keys. Env: ORCHESTRATOR_DATA_DIR.",
    ).tag(config=True)

    encryption_keys = Unicode(
        help="""AES-256-GCM key ring, 'id:base64key[,id:base64key...]'; the first key encrypts, all decrypt.
        Empty: a key ring generated once and kept in data_dir/keys.json (mode 0600).
        Env: ORCHESTRATOR_ENCRYPTION_KEYS.""",
    ).tag(config=True)

    log_style = CaselessStrEnum(
        ["json", "text"], "json", help="Format of the orchestrator's own logs: JSON lines, or text for a terminal."
    ).tag(config=True)

    @default("database_url")
    def _default_database_url(self) -> str:
        return env_setting("ORCHESTRATOR_DATABASE_URL")

    @default("database_admin_url")
    def _default_database_admin_url(self) -> str:
        return env_setting("ORCHESTRATOR_DATABASE_ADMIN_URL")

    @default("runs_database_url")
    def _default_runs_database_url(self) -> str:
        return env_setting("ORCHESTRATOR_RUNS_DATABASE_URL")

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return env_setting("ORCHESTRATOR_DATA_DIR", str(Path(jupyter_data_dir()) / "orchestrator"))

    @default("encryption_keys")
    def _default_encryption_keys(self) -> str:
        return env_setting("ORCHESTRATOR_ENCRYPTION_KEYS")

    def database_location(self) -> DatabaseLocation:
        """Where the database is, as the migrations and the embedded server need it."""
        return DatabaseLocation(
            database_url=self.database_url,
            database_admin_url=self.database_admin_url,
            data_dir=Path(self.data_dir),
            app_role=self.app_role,
        )

    def keyring(self) -> KeyRing:
        """The configured key ring, or the one generated once for the personal mode."""
        if self.encryption_keys:
            return KeyRing.parse(self.encryption_keys)
        return load_or_create_keyring(Path(self.data_dir) / "keys.json")
