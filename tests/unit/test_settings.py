"""The settings the server shares with its commands (``orchestrator_ext.settings``), as the app sees them."""

from __future__ import annotations

import pytest
from jupyter_core.application import JupyterApp
from traitlets.config import Config

from orchestrator_ext.app import OrchestratorApp
from orchestrator_ext.cli import MigrateCommand
from orchestrator_ext.settings import OrchestratorSettings


def test_the_shared_settings_win_over_jupyter_apps_traits_of_the_same_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # JupyterApp has a data_dir of its own (Jupyter's data directory): ours must be the one the app reads
    assert "data_dir" in JupyterApp.class_traits()
    monkeypatch.setenv("ORCHESTRATOR_DATA_DIR", "/srv/orchestrator-data")
    monkeypatch.setenv("ORCHESTRATOR_DATABASE_URL", "")
    app = OrchestratorApp()
    assert app.data_dir == "/srv/orchestrator-data"
    assert app.database_location().data_dir.as_posix() == "/srv/orchestrator-data"
    assert app.database_url == ""  # a blank line of a .env file counts as unset


def test_a_command_reads_the_settings_of_its_parent_app() -> None:
    config = Config()
    config.OrchestratorApp.database_url = "postgresql://app@db/orchestrator"
    config.OrchestratorApp.worker_slots = 7
    app = OrchestratorApp(config=config)
    command = MigrateCommand(parent=app)
    assert isinstance(command.orchestrator, OrchestratorSettings)
    assert command.orchestrator.database_location().database_url == "postgresql://app@db/orchestrator"
    assert command.orchestrator.worker_settings().slots == 7
    # the settings are configured under the app's name, as the docs and .env.example say
    assert {"database_url", "data_dir", "encryption_keys", "worker_slots"} <= set(
        OrchestratorApp.class_traits(config=True)
    )
