"""API fuzzing: schemathesis generates requests from the OpenAPI document; none may get a 500.

Runs the ``st`` CLI against a real ``jupyter orchestrator`` (personal mode), with
a fixed seed so a failure reproduces, and checks the server logged no unhandled error.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.personal_server import PersonalServer, running_server

SEED = "20261125"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PersonalServer]:
    yield from running_server(tmp_path_factory, "fuzz")


def test_no_generated_request_gets_a_server_error(server: PersonalServer, tmp_path: Path) -> None:
    st = shutil.which("st")
    assert st is not None, "schemathesis is part of the test extra"
    agent = server.call("POST", "/agents", {"name": "fuzzed", "framework": "langgraph"})
    assert agent.status == 201
    command = [
        st,
        "run",
        f"{server.api_url}/openapi.json",
        "--header",
        f"Authorization: token {server.token}",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25",
        "--seed",
        SEED,
        "--request-timeout",
        "10",
        "--no-color",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "unhandled error" not in server.output()
