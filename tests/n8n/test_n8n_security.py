"""What n8n's account could do to the platform, and what its workflows may reach.

In team mode the platform (root) writes into the data folder n8n's account
owns: the log it hands n8n, the kept port, the ownership of what is there. The
account may plant links there between two starts, or swap a folder for a link
while root walks it: root must write and chown only the files it means to.
n8n's workflows must not reach the machine: no shell or disk nodes, no
environment variables, whatever n8n's defaults are.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator_ext.n8n import account, process, provision
from orchestrator_ext.n8n.install import Installation
from tests.engine.conftest import wait_final, who
from tests.n8n.conftest import N8n
from tests.n8n.test_n8n_runs import add_instance, execute, n8n_workflow
from tests.n8n.test_n8n_spec import n8n_spec

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def fake_node(tmp_path: Path) -> Installation:
    """An "installation" whose node only says it ran: start() is exercised up to the process, in milliseconds."""
    found = Installation(tmp_path / "install")
    found.node_bin.mkdir(parents=True)
    found.node.write_text("#!/bin/sh\necho n8n-started\n")
    found.node.chmod(0o755)
    return found


def test_a_log_planted_as_a_link_is_refused_and_its_target_not_made(fake_node: Installation, tmp_path: Path) -> None:
    data_dir, target = tmp_path / "data", tmp_path / "etc-cron.d" / "x"
    data_dir.mkdir()
    target.parent.mkdir()
    (data_dir / "n8n.log").symlink_to(target)
    with pytest.raises(process.N8nFileError, match="link"):
        process.start(fake_node, data_dir, die_with_us=False)
    assert not target.exists()


def test_a_log_hard_linked_to_another_file_is_refused_and_that_file_unchanged(
    fake_node: Installation, tmp_path: Path
) -> None:
    data_dir, other = tmp_path / "data", tmp_path / "passwd"
    data_dir.mkdir()
    other.write_text("root:x:0:0\n")
    os.link(other, data_dir / "n8n.log")
    with pytest.raises(process.N8nFileError, match="hard link"):
        process.start(fake_node, data_dir, die_with_us=False)
    assert other.read_text() == "root:x:0:0\n"


def test_a_log_planted_as_a_fifo_is_refused_without_waiting(fake_node: Installation, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.mkfifo(data_dir / "n8n.log")  # opening it for writing would wait for a reader forever
    with pytest.raises(process.N8nFileError, match="FIFO"):
        process.start(fake_node, data_dir, die_with_us=False)


def test_the_log_is_appended_and_private(fake_node: Installation, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "n8n.log").write_text("earlier\n")
    (data_dir / "n8n.log").chmod(0o644)
    started = process.start(fake_node, data_dir, die_with_us=False)
    assert started.process.wait(timeout=10) == 0
    assert (data_dir / "n8n.log").read_text() == "earlier\nn8n-started\n"
    assert (data_dir / "n8n.log").stat().st_mode & 0o777 == 0o600


def test_a_port_file_planted_as_a_link_is_not_written_through(tmp_path: Path) -> None:
    data_dir, target = tmp_path / "data", tmp_path / "shadow"
    data_dir.mkdir()
    (data_dir / "port").symlink_to(target)
    with pytest.raises(process.N8nFileError):
        process.kept_port(data_dir)
    assert not target.exists()
    (data_dir / "port").unlink()
    assert process.kept_port(data_dir) == process.kept_port(data_dir) > 0


def test_an_owner_file_planted_as_a_link_is_not_read(tmp_path: Path) -> None:
    """The owner's login is read from n8n's folder (the account's, in the team mode): a link there must not
    make root read another JSON file and send its ``email``/``password`` to n8n's login."""
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"email": "root@example.org", "password": "not n8n's"}))
    data = tmp_path / "data"
    data.mkdir()
    (data / provision.OWNER_FILE).symlink_to(elsewhere)
    with pytest.raises(process.N8nFileError, match="link"):
        provision.load_owner(data)
    (data / provision.OWNER_FILE).unlink()
    made = provision.load_owner(data)  # none there: made, private, and read back the same
    assert provision.load_owner(data) == made
    assert (data / provision.OWNER_FILE).stat().st_mode & 0o777 == 0o600


def test_n8n_is_told_to_refuse_shell_disk_and_environment(n8n_installation: Installation, tmp_path: Path) -> None:
    os.environ["ORCHESTRATOR_TEST_PLATFORM_SECRET"] = "s3cret"
    try:
        env = process.n8n_environment(n8n_installation, tmp_path, 5678)
    finally:
        del os.environ["ORCHESTRATOR_TEST_PLATFORM_SECRET"]
    assert "s3cret" not in json.dumps(env)  # nothing of the platform's environment is passed on
    assert env["N8N_BLOCK_ENV_ACCESS_IN_NODE"] == "true"
    assert env["N8N_BLOCK_FILE_ACCESS_TO_N8N_FILES"] == "true"
    assert Path(env["N8N_RESTRICT_FILE_ACCESS_TO"]).parent == tmp_path
    excluded = json.loads(env["NODES_EXCLUDE"])
    for node in ("executeCommand", "readWriteFile", "readBinaryFile", "readBinaryFiles", "writeBinaryFile"):
        assert f"n8n-nodes-base.{node}" in excluded
    # the names are the pinned n8n's own (a renamed node would silently stay allowed)
    nodes_base = n8n_installation.n8n.parents[2] / "n8n-nodes-base" / "dist" / "known" / "nodes.json"
    known = json.loads(nodes_base.read_text())
    assert {name.removeprefix("n8n-nodes-base.") for name in excluded} <= set(known)


@pytest.fixture
def n8n_account() -> Iterator[tuple[str, Path]]:
    """A name for an n8n account and a data folder others may pass through; the account removed after."""
    name = f"{account.PREFIX}{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="orch-n8n-sec-"))
    root.chmod(0o755)
    try:
        yield name, root
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="making the n8n account needs root (as the team mode's service)")
def test_a_folder_swapped_for_a_link_while_root_gives_the_files_away_leaves_the_target_alone(
    n8n_account: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    name, root = n8n_account
    data_dir, outside = root / "n8n", root / "etc"
    (data_dir / "sub").mkdir(parents=True)
    (data_dir / "sub" / "file").write_text("n8n's")
    outside.mkdir()
    (outside / "file").write_text("root's")
    swapped: list[bool] = []

    def swap_first(chown: Any) -> Any:
        """os.chown / os.lchown, the folder swapped for a link to ``outside`` just before 'file' is changed."""

        def changed(path: Any, *args: Any, **kwargs: Any) -> Any:
            if os.path.basename(str(path)) == "file" and not swapped:
                swapped.append(True)
                (data_dir / "sub").rename(data_dir / "moved")
                (data_dir / "sub").symlink_to(outside)
            return chown(path, *args, **kwargs)

        return changed

    monkeypatch.setattr(os, "chown", swap_first(os.chown))
    monkeypatch.setattr(os, "lchown", swap_first(os.lchown))
    runs_as = account.prepare(name, data_dir)
    monkeypatch.undo()
    assert swapped
    assert (outside / "file").stat().st_uid == 0  # not given to n8n's account through the link
    assert (outside / "file").read_text() == "root's"
    assert (data_dir / "moved" / "file").stat().st_uid == runs_as.uid  # the folder's own file was
    assert data_dir.stat().st_uid == pwd.getpwnam(name).pw_uid


# n8n's own answers to a workflow that reads the environment, runs a command or reads a file
ENV_DENIED = "access to env vars denied"
UNKNOWN_NODE = "Unrecognized node type"


def reaching(node: dict[str, Any]) -> dict[str, Any]:
    """A Webhook → ``node`` workflow (answered by the last node), as n8n exports it."""
    return {
        "name": f"reach-{node['type'].rsplit('.', 1)[-1]}",
        "nodes": [
            {
                "parameters": {"httpMethod": "POST", "path": "reach", "responseMode": "lastNode", "options": {}},
                "name": "Webhook",
                "type": "n8n-nodes-base.webhook",
                "typeVersion": 2,
                "position": [0, 0],
                "webhookId": str(uuid.uuid4()),
            },
            {**node, "name": "Reach", "position": [220, 0]},
        ],
        "connections": {"Webhook": {"main": [[{"node": "Reach", "type": "main", "index": 0}]]}},
        "settings": {"executionOrder": "v1"},
    }


@pytest.mark.parametrize(
    ("node", "refusal"),
    [
        (
            {
                "type": "n8n-nodes-base.code",
                "typeVersion": 2,
                "parameters": {"jsCode": "return [{json: {path: $env.PATH}}];"},
            },
            ENV_DENIED,
        ),
        (
            {
                "type": "n8n-nodes-base.set",
                "typeVersion": 3.4,
                "parameters": {
                    "assignments": {
                        "assignments": [{"id": "p", "name": "path", "value": "={{ $env.PATH }}", "type": "string"}]
                    },
                    "options": {},
                },
            },
            ENV_DENIED,
        ),
        ({"type": "n8n-nodes-base.executeCommand", "typeVersion": 1, "parameters": {"command": "env"}}, UNKNOWN_NODE),
        (
            {"type": "n8n-nodes-base.readWriteFile", "typeVersion": 1, "parameters": {"fileSelector": "/etc/passwd"}},
            UNKNOWN_NODE,
        ),
    ],
    ids=["code-env", "expression-env", "execute-command", "read-file"],
)
async def test_a_workflow_cannot_read_the_environment_run_commands_or_read_files(
    api: Any, create_agent: Any, create_workflow: Any, workers: Any, n8n: N8n, node: dict[str, Any], refusal: str
) -> None:
    user = who()
    await add_instance(api, user, n8n)
    workflow_id = await n8n_workflow(api, create_agent, create_workflow, user, n8n_spec(reaching(node)))
    async with workers():
        run = await wait_final(api, user, await execute(api, user, workflow_id, {}), within=90)
    assert run["status"] == "failed", run
    assert refusal in json.dumps(run["error"]), run["error"]
    said = json.dumps(run)
    assert os.environ["PATH"] not in said
    assert "root:x:0:0" not in said
