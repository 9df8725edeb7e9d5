"""The ``%orchestrator`` magics in this process's IPython against a real server (the text views)."""

from __future__ import annotations

import shutil
from pathlib import Path

import papermill
import pytest
from IPython.core.interactiveshell import InteractiveShell
from orchestrator_kernels import display as views
from orchestrator_kernels.startup import load

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer

from .conftest import server_root


@pytest.fixture
def shell(server: PersonalServer, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    monkeypatch.delenv("ORCHESTRATOR_KERNEL_FRAMEWORK", raising=False)
    monkeypatch.setattr(views, "execution_view", lambda run, client: None)  # the text view, whatever is installed
    ipython = InteractiveShell.instance()
    load(ipython)
    ipython.magics_manager.registry["OrchestratorMagics"]._client = Client(server.url, server.token)
    return ipython


def test_deploy_run_and_list_from_ipython(
    shell: InteractiveShell, server: PersonalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = server_root(server) / "simple_magic.ipynb"
    shutil.copy(Path(papermill.__file__).parent / "tests" / "notebooks" / "simple_execute.ipynb", notebook)
    deployed = shell.run_line_magic(
        "orchestrator", f'deploy --agent "In process" --path {notebook} --schedule @daily --input msg=\'"nightly"\''
    )
    assert "workflow 'In process' is now at version 1" in repr(deployed)
    assert "schedule 'deploy': @daily (UTC)" in repr(deployed)

    run = shell.run_line_magic("orchestrator", 'run "In process" msg=\'"hello"\' --timeout 120')
    assert run["status"] == "succeeded", run
    assert run.shown, "the live view already showed it"
    assert "status: succeeded" in capsys.readouterr().out

    queued = shell.run_line_magic("orchestrator", 'run "In process" --no-wait')
    assert queued["status"] in ("queued", "running")
    assert not queued.shown
    Client(server.url, server.token).wait(queued["id"], timeout=120)

    runs = shell.run_line_magic("orchestrator", 'runs --agent "In process" --limit 5')
    assert len(runs) == 2
    assert run["id"] in repr(runs)
    schedules = shell.run_line_magic("orchestrator", 'schedules --agent "In process"')
    assert "@daily (UTC)" in repr(schedules)


def test_magic_misuse_is_a_usage_error(shell: InteractiveShell) -> None:
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="only deploys"):
        shell.run_cell_magic("orchestrator", "runs", "x = 1")
    with pytest.raises(UsageError, match="argument command: invalid choice"):
        shell.run_line_magic("orchestrator", "explode")
    with pytest.raises(UsageError, match="is not key=value"):
        shell.run_line_magic("orchestrator", "run nobody 3")
    with pytest.raises(UsageError, match="no agent called 'nobody'"):
        shell.run_line_magic("orchestrator", "runs --agent nobody")
