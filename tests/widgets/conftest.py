"""Fixtures of the widget tests: a real ``jupyter orchestrator`` (personal mode, JupyterLab and Voila
beside the API, a worker running workflows) and the client a kernel of it would use.

Fixtures:
- ``server``: the running server these tests share (``url``, ``token``, ``call(method, path, body)``).
- ``client``: an :class:`orchestrator_ext.client.Client` of that server.
- ``write_notebook(name, source)``: a one-cell notebook in the server's root directory.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer, start_personal_server, wait_postgres_stopped

#: JupyterLab's news pop-up would cover the page corner: its setting, as Lab stores it
NOTIFICATIONS = "lab/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"


@pytest.fixture(scope="session")
def server_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("widgets")
    settings = root / "jupyter-config" / NOTIFICATIONS
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return root


@pytest.fixture(scope="session")
def server(server_root: Path) -> Iterator[PersonalServer]:
    running = start_personal_server(server_root, server_root / "data")
    try:
        yield running
    finally:
        running.stop(signal.SIGTERM)
        wait_postgres_stopped(running.pgdata)


@pytest.fixture(scope="session")
def client(server: PersonalServer) -> Client:
    return Client(server.url, server.token)


@pytest.fixture
def write_notebook(server_root: Path) -> Callable[[str, str], str]:
    def write(name: str, source: str) -> str:
        notebook: Any = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_code_cell(source)]
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, server_root / name)
        return name

    return write
