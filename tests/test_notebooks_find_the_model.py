"""The examples find the local model through the API, as a user's notebook does in the personal mode.

``jupyter orchestrator`` starts the local model on a free port; the notebook
is given no model URL, only the server (``ORCHESTRATOR_URL`` and its token, as
``orchestrator_ext.client`` finds a server that started the kernel), asks
``GET /models`` and runs its graph on that model.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import papermill
import pytest

from tests.personal_server import PersonalServer, start_personal_server, wait_postgres_stopped
from tests.test_notebooks import QUIET

ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PersonalServer]:
    root = tmp_path_factory.mktemp("find-the-model")
    started = start_personal_server(root, root / "data", local_model=True)
    try:
        yield started
    finally:
        started.stop(signal.SIGTERM)
        wait_postgres_stopped(started.pgdata)


def served_models(server: PersonalServer, timeout: float = 60.0) -> list[dict[str, str]]:
    """``GET /models`` once the server's model answers (it starts after the API does)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = server.call("GET", "/models")
        assert reply.status == 200, reply.body
        if reply.body["items"] or time.monotonic() > deadline:
            return reply.body["items"]  # type: ignore[no-any-return]
        time.sleep(0.2)


# agno_team.ipynb asks the same way (its run through test_notebooks.py takes the URL from the environment)
@pytest.mark.parametrize("name", ["langgraph_agent.ipynb"])
def test_the_notebook_asks_the_api_where_the_model_is(
    name: str, server: PersonalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [model] = served_models(server)
    assert model["name"] == "local-model"
    assert model["base_url"] != "http://127.0.0.1:8765/v1"  # a free port, not the old guess
    with urllib.request.urlopen(f"{model['base_url']}/models", timeout=10) as reply:  # nosec B310
        assert json.load(reply)["data"][0]["id"] == model["model"]

    monkeypatch.delenv("ORCHESTRATOR_MODEL_BASE_URL", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_URL", f"{server.url}/")
    monkeypatch.setenv("ORCHESTRATOR_TOKEN", server.token)
    for variable, value in QUIET.items():
        monkeypatch.setenv(variable, value)
    # this interpreter's python3 kernel, even where the account has a kernelspec of that name of its own
    monkeypatch.setenv("JUPYTER_PATH", str(Path(sys.prefix) / "share" / "jupyter"))
    executed = papermill.execute_notebook(
        str(ROOT.parent / "notebooks" / name),
        str(tmp_path / "out.ipynb"),
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=300,
    )
    printed = "".join(
        output.get("text", "") for cell in executed.cells for output in cell.get("outputs", []) if "text" in output
    )
    assert f"at {model['base_url']}" in printed  # the URL it asked for, then ran on (its own asserts passed)
