"""The curl examples of docs/api.md and the README, executed against a real ``jupyter orchestrator``.

Each document's ``bash`` blocks run in order in one bash process (a reader
follows them in one terminal, so later blocks use variables set by earlier
ones), with ``ORCH_URL`` and ``TOKEN`` set to the test server's. A block must
exit 0 and print only JSON that is not an error. ``console`` blocks (starting
a server, the hub) are shown, not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.personal_server import PersonalServer, running_server, wait_postgres_stopped

ROOT = Path(__file__).resolve().parent.parent
# ```bash blocks print JSON; ```bash text blocks print anything (logs, files), but must still succeed
BASH_BLOCK = re.compile(r"^```bash( text)?\n(.*?)^```\s*$", re.MULTILINE | re.DOTALL)
BLOCK_TIMEOUT_S = 300  # a document's blocks together; the framework guides run real agents
FRAMEWORK_GUIDES = ["docs/frameworks/langgraph.md", "docs/frameworks/crewai.md", "docs/frameworks/agno.md"]


def bash_blocks(document: Path) -> list[str]:
    return [block for _, block in BASH_BLOCK.findall(document.read_text())]


def json_printing(document: Path) -> list[bool]:
    """For each bash block, whether it must print JSON (a plain ``bash`` block) or anything (``bash text``)."""
    return [not text for text, _ in BASH_BLOCK.findall(document.read_text())]


def json_values(text: str) -> list[Any]:
    """Every JSON value in ``text``, one after the other (curl prints them back to back)."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return values
        value, position = decoder.raw_decode(text, position)
        values.append(value)


def is_problem(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("status"), int) and value["status"] >= 400


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PersonalServer]:
    yield from running_server(tmp_path_factory, "docs")


def run_blocks(blocks: list[str], server: PersonalServer, workdir: Path) -> list[str]:
    """Run the blocks in one bash process; return each block's standard output."""
    script = ["set -euo pipefail"]
    for number, block in enumerate(blocks):
        script.append(f"echo {number} > .block")
        script.append(f"{{\n{block}\n}} > .out-{number}")
    env = {
        **os.environ,
        "ORCH_URL": server.api_url,
        "TOKEN": server.token,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )
    if done.returncode != 0:
        failed = int((workdir / ".block").read_text())
        output = (workdir / f".out-{failed}").read_text()
        pytest.fail(
            f"block {failed} exited {done.returncode}:\n{blocks[failed]}\n--- stdout:\n{output}\n"
            f"--- stderr:\n{done.stderr}\n--- server log:\n{server.output()[-3000:]}"
        )
    return [(workdir / f".out-{number}").read_text() for number in range(len(blocks))]


@pytest.fixture(scope="module")
def bash_available() -> None:
    for tool in ("bash", "curl", "awk"):
        if shutil.which(tool) is None:
            pytest.fail(f"the documentation examples need {tool}: install it (e.g. apt-get install {tool})")


@pytest.mark.usefixtures("bash_available")
@pytest.mark.parametrize("document", ["docs/api.md", "docs/executions.md", "README.md"])
def test_examples_run(document: str, server: PersonalServer, tmp_path: Path) -> None:
    blocks = bash_blocks(ROOT / document)
    assert blocks, f"{document} has no bash examples"
    outputs = run_blocks(blocks, server, tmp_path)
    for block, output, must_be_json in zip(blocks, outputs, json_printing(ROOT / document), strict=True):
        assert output.strip(), f"this example prints nothing:\n{block}"
        if not must_be_json:
            continue
        try:
            values = json_values(output)
        except json.JSONDecodeError as exc:
            pytest.fail(f"not JSON ({exc}):\n{block}\n--- output:\n{output}")
        assert values, f"this example prints nothing:\n{block}"
        assert not [v for v in values if is_problem(v)], f"an error response:\n{block}\n--- output:\n{output}"


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PersonalServer]:
    """A personal server with its local model (the framework guides run real agents on it)."""
    yield from running_server(tmp_path_factory, "frameworks", local_model=True)


@pytest.mark.usefixtures("bash_available")
@pytest.mark.parametrize("document", FRAMEWORK_GUIDES)
def test_framework_guides_run(document: str, model_server: PersonalServer, tmp_path: Path) -> None:
    test_examples_run(document, model_server, tmp_path)


def test_api_examples_cover_every_resource() -> None:
    examples = "\n".join(bash_blocks(ROOT / "docs/api.md"))
    for needle in (
        'Authorization: token $TOKEN"',
        "?token=$TOKEN",
        "X-XSRFToken",
        "/health",
        "/users/me",
        "/organizations",
        "/admin/organizations",
        "/agents",
        "/workflows",
        "/execute",
        "Idempotency-Key:",
        "/executions",
        "/integrations",
        "/openapi.json",
    ):
        assert needle in examples, f"docs/api.md has no example with {needle!r}"


def test_the_server_stops_with_its_database(server: PersonalServer) -> None:
    assert server.stop(signal.SIGTERM) == 0
    assert wait_postgres_stopped(server.pgdata) == [], "the embedded PostgreSQL is left running"
    assert "embedded PostgreSQL stopped" in server.output()
