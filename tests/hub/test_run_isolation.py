"""The attack of issue 13, automated: in the team mode a run of one organization reaches nothing of the
platform and nothing of another organization's runs.

A real team-mode hub (``hub_config/jupyterhub_config.py``: the API service unprivileged, the worker
service forking runs down to each organization's account). Two people sign up, each in an organization
of their own. A gives a model integration a secret, runs a LangGraph workflow (so A's fork server is
warm) and then a slow notebook that holds the secret in its kernel. While it runs, B's runs, a
notebook, a LangGraph ``code`` node and an Agno code-first team, try each thing a run must not do:
open PostgreSQL's socket and data directory, read ``keys.json``, list the service's and the hub's
folders and the runs' folder, read ``/proc/<pid>/environ``, ``mem`` and ``cwd`` of the service, the
worker, A's fork server and A's kernel, open A's work directory and connection file, signal and
ptrace A's kernel, and plant a ``python3`` kernelspec in every Jupyter path. Each attempt must fail
with the refusal the kernel gives (EACCES, EPERM), not merely not crash. A's next run is then
untouched by what B planted, and A's secret appears nowhere in what B's runs saw. B's framework runs
reach their own organization's runs' database and are refused A's, whose password is in nothing they can
read; A's LangGraph human approval waits in A's runs' database and resumes once answered.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil
import pytest

from orchestrator_ext.db.embedded import PASSWORDS_FILE, SUPERUSER
from orchestrator_ext.engine.accounts import account_name
from orchestrator_ext.engine.runs_state import RunsDatabases, RunsServer, database_name
from tests.hub.conftest import needs_root
from tests.hub.isolation_probe import (
    AGNO_PROBE,
    LANGGRAPH_PROBE,
    NOTEBOOK_PROBE,
    RUN_TIMEOUT_S,
    api,
    code_graph,
    logs,
    notebook,
    ok,
    process,
    reported,
    start_run,
    wait_final,
)
from tests.hub.team_hub import Person, TeamHub, _remove_account
from tests.langgraph_specs import APPROVAL

pytestmark = [needs_root, pytest.mark.timeout(600)]

SECRET_A = "sk-a-" + secrets.token_hex(20)
MARKER = f"/tmp/orch-planted-{secrets.token_hex(6)}"  # what a planted kernelspec would touch
#: the refusals a run may get: "Permission denied" and "Operation not permitted"
REFUSED = {"EACCES", "EPERM"}


@dataclass
class Tenants:
    hub: TeamHub
    a: Person
    b: Person
    #: A's slow notebook run, running while B's runs try their attacks
    slow: dict[str, Any]
    #: what the slow run reported about itself: its kernel's pid, directory and connection file
    a_kernel: dict[str, Any]
    accounts: dict[str, str]


@pytest.fixture(scope="module")
def tenants(team_hub: TeamHub) -> Any:
    hub = team_hub
    suffix = secrets.token_hex(2)
    a, b = hub.person(f"ra-{suffix}"), hub.person(f"rb-{suffix}")
    integration = {"name": "a-model", "kind": "openai-compatible", "secret": SECRET_A}
    integration["config"] = {"base_url": "http://127.0.0.1:9/v1", "model": "m"}
    ok(api(hub, a, "POST", "integrations", integration), 201)
    warm = wait_final(hub, a, start_run(hub, a, "langgraph", code_graph("def run(values):\n    return 'warm'")))
    accounts = {"a": account_name(warm["org_id"])}
    try:
        assert warm["status"] == "succeeded", warm
        slow_spec = {
            "notebook": {"content": notebook(SLOW_REPORT, "import time\ntime.sleep(300)")},
            "integrations": ["a-model"],
        }
        slow = start_run(hub, a, "notebook", slow_spec)
        a_kernel = reported(hub, a, slow, "KERNEL ")
        yield Tenants(hub, a, b, slow, a_kernel, accounts)
    finally:
        for name in accounts.values():
            _remove_account(name)


SLOW_REPORT = (
    "import json, os\ntry:\n    from ipykernel.connect import get_connection_file\n"
    "    connection = get_connection_file()\n"
    "except RuntimeError:  # the zygote engine: a forked child, no kernel application nor connection file\n"
    "    connection = None\n"
    "print('KERNEL ' + json.dumps({'pid': os.getpid(), 'cwd': os.getcwd(), 'connection': connection,"
    " 'secret_here': 'ORCHESTRATOR_INTEGRATIONS' in os.environ}))"
)


def zygote_log(zygote: psutil.Process) -> str:
    """The zygote's log, in the worker's own folder. A zygote has no connection file: the worker asks it for
    forks over a socket pair, so this is the nearest thing a run could aim at."""
    return os.readlink(f"/proc/{zygote.pid}/fd/2")


@pytest.fixture(scope="module")
def targets(tenants: Tenants) -> dict[str, Any]:
    """What B's runs aim at: the platform's files and processes, and A's running kernel."""
    team = tenants.hub.team_dir
    service_user, runs_dir = tenants.hub.service_user, f"--OrchestratorApp.run_dir={team / 'runs'}"
    service = process(
        lambda cmd, user: (
            user == service_user and "scheduler" not in cmd and any("jupyter-orchestrator" in c for c in cmd)
        )
    )
    worker = process(lambda cmd, user: "worker" in cmd and runs_dir in cmd)
    a_forks = process(lambda cmd, user: user == tenants.accounts["a"] and "orchestrator_runtimes.forkserver" in cmd)
    # the notebook zygote A's slow run was forked from (the kernel engine has none: A's kernel stands in)
    a_zygote = psutil.Process(tenants.a_kernel["pid"]).parent() if tenants.a_kernel["connection"] is None else None
    pgdata = team / "service" / "data" / "pgdata"
    return {
        "pg_socket": str(pgdata / ".s.PGSQL.5432"),
        "pgdata": str(pgdata),
        "keys": str(team / "service" / "data" / "keys.json"),
        "service_dir": str(team / "service"),
        "service_jupyter": str(team / "service" / "jupyter" / "data"),
        "hub_dir": str(team / "hub"),
        "runs_dir": str(team / "runs"),
        "a_workdir": tenants.a_kernel["cwd"],
        "a_connection": tenants.a_kernel["connection"] or zygote_log(a_zygote),  # type: ignore[arg-type]
        "a_runs_db": database_name(tenants.slow["org_id"]),
        "pids": {
            "service": service.pid,
            "worker": worker.pid,
            "a_forkserver": a_forks.pid,
            "a_kernel": tenants.a_kernel["pid"],
            "a_zygote": a_zygote.pid if a_zygote is not None else tenants.a_kernel["pid"],
        },
    }


@pytest.fixture(scope="module")
def b_runs(tenants: Tenants, targets: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any], str]]:
    """B's three runs (while A's slow run goes on): for each, the execution, what its probe saw, its log."""
    hub, b = tenants.hub, tenants.b
    given = f"TARGETS = {json.dumps(targets)}\nMARKER = {MARKER!r}\n"
    module = f"b_probe_{secrets.token_hex(3)}"
    code = hub.team_dir / "code" / f"{module}.py"
    code.write_text(given + AGNO_PROBE)
    code.chmod(0o644)
    found: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {}
    run = start_run(hub, b, "notebook", {"notebook": {"content": notebook(given + NOTEBOOK_PROBE)}})
    seen = reported(hub, b, run)
    found["notebook"] = (wait_final(hub, b, run), seen, logs(hub, b, run))
    run = wait_final(hub, b, start_run(hub, b, "langgraph", code_graph(given + LANGGRAPH_PROBE)))
    assert run["status"] == "succeeded", run
    found["langgraph"] = (run, json.loads(run["outputs"]["output"]), logs(hub, b, run))
    run = start_run(hub, b, "agno", {"options": {"callable": f"{module}:build"}}, {"message": "hello"})
    seen = reported(hub, b, run)
    found["agno"] = (wait_final(hub, b, run), seen, logs(hub, b, run))
    tenants.accounts["b"] = account_name(run["org_id"])
    return found


KINDS = ["notebook", "langgraph", "agno"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_executes_as_its_organizations_account_with_no_other_group(
    tenants: Tenants, b_runs: dict[str, Any], kind: str
) -> None:
    execution, seen, _ = b_runs[kind]
    account = pwd.getpwnam(account_name(execution["org_id"]))
    assert account.pw_shell.endswith("nologin")
    assert (seen["uid"], seen["gid"], seen["groups"]) == (account.pw_uid, account.pw_gid, [])
    assert account.pw_name != tenants.accounts["a"]
    assert seen["uid"] not in (0, pwd.getpwnam(tenants.hub.service_user).pw_uid)
    # nothing of the service's environment, and no Jupyter path another account's runs could write
    assert not {name for name in seen["environ"] if name.startswith(("JUPYTERHUB_", "ORCHESTRATOR_DATA"))}
    assert "JUPYTER_PATH" not in seen["environ"]
    assert "JUPYTER_DATA_DIR" not in seen["environ"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_database_the_keys_and_the_services_folders_are_refused(b_runs: dict[str, Any], kind: str) -> None:
    _, seen, _ = b_runs[kind]
    for target in ("pg_socket", "pgdata", "keys", "service_dir", "hub_dir", "runs_dir"):
        assert seen[target] == "EACCES", (target, seen[target])


@pytest.mark.parametrize("kind", KINDS)
def test_no_process_of_the_platform_or_of_another_run_can_be_read(b_runs: dict[str, Any], kind: str) -> None:
    _, seen, _ = b_runs[kind]
    for name in ("service", "worker", "a_forkserver", "a_kernel", "a_zygote"):
        for what in ("environ", "mem", "cwd"):
            assert seen[f"{what}:{name}"] == "EACCES", (what, name, seen[f"{what}:{name}"])


@pytest.mark.parametrize("kind", KINDS)
def test_another_runs_folder_connection_file_signals_and_ptrace_are_refused(
    tenants: Tenants, b_runs: dict[str, Any], kind: str
) -> None:
    _, seen, _ = b_runs[kind]
    assert seen["a_workdir"] == "EACCES"
    assert seen["a_connection"] == "EACCES"
    assert seen["kill:a_kernel"] == "EPERM"
    assert seen["ptrace:a_kernel"] == "EPERM"
    # and A's run went on, untouched, the whole time
    assert ok(api(tenants.hub, tenants.a, "GET", f"executions/{tenants.slow['id']}"))["status"] == "running"
    assert psutil.pid_exists(tenants.a_kernel["pid"])


@pytest.mark.parametrize("kind", KINDS)
def test_no_kernelspec_can_be_planted_where_another_run_looks(b_runs: dict[str, Any], kind: str) -> None:
    _, seen, _ = b_runs[kind]
    planted = {key.split(":", 2)[2]: value for key, value in seen.items() if key.startswith("kernelspec:shared:")}
    assert len(planted) >= 3, planted  # the environment's, the system's and the service's Jupyter paths
    assert set(planted.values()) == {"EACCES"}, planted
    # its own home's is its own, private and thrown away with the run
    assert {value for key, value in seen.items() if key.startswith("kernelspec:own:")} <= {"allowed"}


def test_a_secret_given_to_one_organizations_runs_never_reaches_another(b_runs: dict[str, Any]) -> None:
    for kind, (execution, seen, log) in b_runs.items():
        assert SECRET_A not in json.dumps(execution), kind
        assert SECRET_A not in json.dumps(seen), kind
        assert SECRET_A not in log, kind


def test_the_other_organizations_next_run_is_untouched_by_what_was_planted(
    tenants: Tenants, b_runs: dict[str, Any]
) -> None:
    hub, a = tenants.hub, tenants.a
    assert tenants.a_kernel["secret_here"] is True  # A's run did receive A's secret
    ok(api(hub, a, "POST", f"executions/{tenants.slow['id']}/cancel"), 202)
    check = "import json, os, sys\nprint('NEXT ' + json.dumps({'exe': sys.executable, 'uid': os.getuid(), "
    check += f"'planted': os.path.exists({MARKER!r}), 'argv': sys.argv}}))"
    run = start_run(hub, a, "notebook", {"notebook": {"content": notebook(check)}})
    seen = reported(hub, a, run, "NEXT ")
    assert wait_final(hub, a, run)["status"] == "succeeded"
    assert seen["planted"] is False
    assert Path(seen["exe"]).parent == tenants.hub.env_prefix / "bin"
    assert seen["argv"][0].endswith("ipykernel_launcher.py")
    assert seen["uid"] == pwd.getpwnam(tenants.accounts["a"]).pw_uid
    assert ok(api(hub, a, "GET", f"executions/{tenants.slow['id']}"))["status"] == "cancelled"


def runs_password(tenants: Tenants, org_id: str) -> str:
    """The password of ``org_id``'s runs' database role, as the worker derives it from the embedded server's."""
    passwords = json.loads((tenants.hub.team_dir / "service" / "data" / PASSWORDS_FILE).read_text())
    admin = f"postgresql://{SUPERUSER}:{quote(passwords[SUPERUSER], safe='')}@/postgres"
    return RunsDatabases(RunsServer(admin), None).password(org_id)


@pytest.mark.parametrize("kind", ["langgraph", "agno"])
def test_a_run_reaches_its_organizations_runs_database_and_no_other(
    tenants: Tenants, b_runs: dict[str, Any], kind: str
) -> None:
    execution, seen, log = b_runs[kind]
    a_database = database_name(tenants.slow["org_id"])
    assert seen["runs_db"]["own"] == database_name(execution["org_id"])
    refusal = f'pg_hba.conf rejects connection for host "[local]", user "{seen["runs_db"]["own"]}"'
    assert f'{refusal}, database "{a_database}"' in seen["runs_db"]["a"], seen["runs_db"]
    password_a = runs_password(tenants, tenants.slow["org_id"])
    assert password_a not in json.dumps(seen)  # no environment, no command line B's runs could read
    assert password_a not in log
    assert password_a not in tenants.hub.log()
    assert runs_password(tenants, execution["org_id"]) not in seen["cmdlines"]  # B's own is not on one either


def test_a_langgraph_human_approval_waits_and_resumes_in_the_team_mode(tenants: Tenants) -> None:
    hub, a = tenants.hub, tenants.a
    run = start_run(hub, a, "langgraph", APPROVAL, {"what": "v2"})
    waiting = wait_final(hub, a, run)
    assert waiting["status"] == "waiting", waiting["error"]
    assert waiting["waiting_for"]["question"] == "Ship v2?"
    ok(api(hub, a, "POST", f"executions/{run['id']}/resume", {"answer": {"ok": True}}), 202)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while (done := wait_final(hub, a, run))["status"] == "waiting" and time.monotonic() < deadline:
        time.sleep(0.2)  # the answer is taken up by the next attempt
    assert done["status"] == "succeeded", done["error"]
    assert done["outputs"]["output"] == "shipped"
