"""The example notebooks in notebooks/ run headless (papermill, a real kernel) against the real local model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import papermill
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the starters (*_starter.ipynb) run on their framework kernels against a server: tests/kernels/test_starters.py;
#: the builder's notebook (a widget for people) opens in a browser: tests/widgets/test_browser.py
NOTEBOOKS = sorted(
    path.name
    for path in (ROOT / "notebooks").glob("*.ipynb")
    if path.name not in ("dashboard.ipynb", "builder.ipynb") and not path.name.endswith("_starter.ipynb")
)
QUIET = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "AGNO_TELEMETRY": "false",
    "OTEL_SDK_DISABLED": "true",
}


def test_every_framework_has_an_example() -> None:
    for framework in ("langgraph", "crewai", "agno"):
        assert any(name.startswith(framework) for name in NOTEBOOKS), f"notebooks/ has no {framework} example"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_example_notebook_runs(
    name: str, local_model: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRATOR_MODEL_BASE_URL", local_model["config"]["base_url"])
    for variable, value in QUIET.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("HOME", str(tmp_path))
    executed = papermill.execute_notebook(
        str(ROOT / "notebooks" / name),
        str(tmp_path / name),
        cwd=str(tmp_path),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=300,
    )
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
