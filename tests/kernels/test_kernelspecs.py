"""The framework kernels' specs: shipped in the wheel, written by ``kernels install``, started for real."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from orchestrator_kernels.frameworks import FRAMEWORKS
from orchestrator_kernels.kernelspec import SHARED_KERNELS, install, kernel_json

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_every_kernelspec_as_the_code_writes_it() -> None:
    shipped = {path.parent.name: json.loads(path.read_text()) for path in SHARED_KERNELS.glob("*/kernel.json")}
    assert shipped == {f.kernel_name: kernel_json(f) for f in FRAMEWORKS.values()}
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"kernels/share/jupyter/kernels" = "share/jupyter/kernels"' in pyproject


def test_display_names_are_the_ones_people_see() -> None:
    names = sorted(f.display_name for f in FRAMEWORKS.values())
    assert names == ["Orchestrator · Agno", "Orchestrator · CrewAI", "Orchestrator · LangGraph"]


def test_install_writes_the_installed_frameworks_and_skips_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(type(FRAMEWORKS["agno"]), "installed", lambda self: self.key != "agno")
    written, skipped = install(prefix=str(tmp_path))
    assert [f.key for f in skipped] == ["agno"]
    manager = KernelSpecManager(kernel_dirs=[str(tmp_path / "share" / "jupyter" / "kernels")])
    specs = manager.find_kernel_specs()
    assert sorted(name for name in specs if name.startswith("orchestrator")) == [
        "orchestrator-crewai",
        "orchestrator-langgraph",
    ]
    spec = manager.get_kernel_spec("orchestrator-langgraph")
    assert spec.display_name == "Orchestrator · LangGraph"
    assert spec.argv == ["python", "-m", "orchestrator_kernels", "--framework=langgraph", "-f", "{connection_file}"]
    assert spec.env["CREWAI_DISABLE_TELEMETRY"] == "true"
    assert len(written) == 2


def test_install_all_writes_even_missing_frameworks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(FRAMEWORKS["agno"]), "installed", lambda self: False)
    written, skipped = install(["agno"], prefix=str(tmp_path), every=True)
    assert skipped == []
    assert Path(written[0], "kernel.json").is_file()


def test_unknown_framework_is_named() -> None:
    with pytest.raises(ValueError, match="no framework kernel 'haystack'"):
        install(["haystack"], prefix=sys.prefix)


def test_the_kernels_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator_kernels.kernelspec import KernelsCommand, KernelsInstallCommand

    command = KernelsInstallCommand()
    command.initialize([f"--prefix={tmp_path}", "agno"])
    command.start()
    assert "installed orchestrator-agno in" in capsys.readouterr().out
    assert (tmp_path / "share" / "jupyter" / "kernels" / "orchestrator-agno" / "kernel.json").is_file()

    both = KernelsInstallCommand()
    both.initialize(["--user", "--sys-prefix"])
    with pytest.raises(SystemExit, match="at most one of --user, --sys-prefix and --prefix"):
        both.start()

    listing = KernelsCommand()
    listing.initialize([])
    with pytest.raises(SystemExit):
        listing.start()
    assert "orchestrator-langgraph   Orchestrator · LangGraph: LangGraph installed" in capsys.readouterr().err
