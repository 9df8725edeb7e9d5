"""``jupyter orchestrator deploy`` from a terminal beside a personal server, on papermill's own notebooks.

The command finds the server as a kernel does (the only one running, with its token), deploys the
notebook as the next version of the agent's workflow and keeps one schedule, named ``deploy``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import papermill
import pytest

from tests.personal_server import PersonalServer

from .conftest import run_cli, server_root

PAPERMILL_NOTEBOOKS = Path(papermill.__file__).parent / "tests" / "notebooks"


def test_cli_deploys_new_versions_and_keeps_one_schedule(server: PersonalServer, kernel_path: Path) -> None:
    notebook = server_root(server) / "simple_execute.ipynb"
    shutil.copy(PAPERMILL_NOTEBOOKS / "simple_execute.ipynb", notebook)

    first = run_cli(server, kernel_path, "deploy", notebook.name, "--agent", "Nightly report")
    assert first.returncode == 0, first.stderr
    assert "created agent 'Nightly report'" in first.stdout
    assert "is now at version 1" in first.stdout
    assert "inputs (from the parameters cell): msg=null" in first.stdout

    second = run_cli(
        server, kernel_path, "deploy", str(notebook), "--agent", "Nightly report",
        "--schedule", "30 2 * * *", "--tz", "Asia/Tokyo", "--input", "msg=\"from cron\"",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "found agent 'Nightly report'" in second.stdout
    assert "is now at version 2" in second.stdout
    assert "schedule 'deploy': 30 2 * * * (Asia/Tokyo)" in second.stdout

    third = run_cli(
        server, kernel_path, "deploy", notebook.name, "--agent", "Nightly report", "--schedule", "0 3 * * *"
    )
    assert third.returncode == 0, third.stderr
    agents = server.call("GET", "/agents?q=Nightly").body["items"]
    workflows = server.call("GET", f"/agents/{agents[0]['id']}/workflows").body["items"]
    assert [(w["name"], w["version"]) for w in workflows] == [("Nightly report", 3)]
    schedules = server.call("GET", f"/workflows/{workflows[0]['id']}/schedules").body["items"]
    assert [(s["name"], s["cron"], s["timezone"]) for s in schedules] == [("deploy", "0 3 * * *", "UTC")]
    assert workflows[0]["spec"]["notebook"]["content"]["metadata"]["kernelspec"]["name"] == "python3"


def test_cli_reports_what_the_api_refused(server: PersonalServer, kernel_path: Path) -> None:
    notebook = server_root(server) / "simple_execute.ipynb"
    shutil.copy(PAPERMILL_NOTEBOOKS / "simple_execute.ipynb", notebook)
    # papermill's own test of a parameters cell that does not parse: the API names the field at fault
    broken = server_root(server) / "complex_parameters.ipynb"
    shutil.copy(PAPERMILL_NOTEBOOKS / "complex_parameters.ipynb", broken)
    refused = run_cli(server, kernel_path, "deploy", broken.name, "--agent", "Broken parameters")
    assert refused.returncode == 1
    assert "deploy failed: 422" in refused.stderr
    assert "spec.notebook.content: the parameters cell is not valid Python" in refused.stderr
    bad_cron = run_cli(server, kernel_path, "deploy", notebook.name, "--agent", "Cron typo", "--schedule", "61 * * * *")
    assert bad_cron.returncode == 1
    assert "version 1 of the workflow 'Cron typo' was saved, but the schedule was refused: 422" in bad_cron.stderr
    assert "cron" in bad_cron.stderr
    assert "Cron typo" in {a["name"] for a in server.call("GET", "/agents").body["items"]}, "deployed, not scheduled"


def test_cli_usage_and_a_missing_notebook(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator_ext.deploy import DeployCommand

    for argv, said in (
        (["--agent", "Ghost"], "usage: jupyter orchestrator deploy NOTEBOOK --agent NAME"),
        ([str(tmp_path / "nowhere.ipynb"), "--agent", "Ghost", "--url", "http://127.0.0.1:9", "--token", "t"],
         "no notebook at"),
    ):  # fmt: skip
        command = DeployCommand()
        command.initialize(argv)
        with pytest.raises(SystemExit) as exited:
            command.start()
        assert exited.value.code != 0
        captured = capsys.readouterr()
        assert said in captured.err + captured.out + str(exited.value)
