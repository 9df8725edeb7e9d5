"""Each organization's runs keep their state (LangGraph checkpoints, Agno memory, knowledge) in a database
of their own, under a role of their own, and get only its URL (orchestrator_ext/engine/runs_state.py).

A real embedded PostgreSQL listening, besides its private data directory, in a socket folder runs under
other accounts may enter (as the team mode sets it up). Real runs: a worker with ``run_accounts=uid:65534``
(the Kubernetes mode; the team mode's accounts differ only in number) runs a LangGraph human approval that
waits, is approved through the API and resumes from its checkpoint, while a run of another organization
tries to open the first one's database with its own URL and looks for its password everywhere a run can.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator_ext.db.embedded import PASSWORDS_FILE, EmbeddedPostgres
from orchestrator_ext.engine.accounts import runs_root
from orchestrator_ext.engine.runs_state import RunsDatabases, RunsServer, database_name
from orchestrator_ext.engine.settings import EngineSettings
from orchestrator_ext.security.crypto import KeyRing, generate_key
from tests.conftest import TEST_KEYS, Api
from tests.engine.conftest import wait_final, who
from tests.engine.conftest import worker_settings as worker_settings
from tests.engine.conftest import workers as workers
from tests.engine.test_framework_runs import wait_status
from tests.engine.test_run_accounts import as_root
from tests.langgraph_specs import APPROVAL
from tests.logs import captured_logs
from tests.runtimes.test_langgraph_api import start

pytestmark = pytest.mark.timeout(300)
ATTRIBUTES = "rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication, rolcanlogin, rolpassword"


@pytest.fixture(scope="module")
def runs_pg() -> Iterator[EmbeddedPostgres]:
    """An embedded server with a second socket folder every account may enter (0755)."""
    root = Path(tempfile.mkdtemp(prefix="orch-runs-state-"))
    root.chmod(0o755)
    server = EmbeddedPostgres(root / "pgdata", runs_socket_dir=root / "sock")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def orchestrator_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog on the "orchestrator" logger itself, where the worker logs."""
    with captured_logs(caplog, "orchestrator", logging.DEBUG) as captured:
        yield captured


@pytest.fixture
def server(runs_pg: EmbeddedPostgres) -> RunsServer:
    return RunsServer(runs_pg.admin_url("postgres"), runs_pg.runs_host)


def test_each_organization_gets_a_role_and_a_database_of_its_own(runs_pg: EmbeddedPostgres, server: RunsServer) -> None:
    keys = KeyRing.parse(TEST_KEYS)
    databases = RunsDatabases(server, keys)
    org_a, org_b = str(uuid.uuid4()), str(uuid.uuid4())
    url_a, url_b = databases.provision(org_a), databases.provision(org_b)
    name_a, name_b = database_name(org_a), database_name(org_b)
    assert runs_pg.runs_host in url_a  # by the runs' socket folder, not the private one
    assert runs_pg.socket_dir not in url_a
    with psycopg.connect(url_a, autocommit=True) as conn:
        assert (conn.info.user, conn.info.dbname) == (name_a, name_a)
        conn.execute("CREATE TABLE notes (secret text)")
        conn.execute("INSERT INTO notes VALUES ('of a')")
        conn.execute("CREATE SCHEMA ai")  # Agno's schema: the frameworks' own names work unchanged
        assert conn.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchone() == ("vector",)
        # nothing of another organization's database is in this one's catalog
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'notes'").fetchone() == (1,)
    # B's role on A's database: refused at the door; B's own database has no trace of A's tables
    with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects connection"):
        psycopg.connect(url_b.replace(f"/{name_b}?", f"/{name_a}?")).close()
    with psycopg.connect(url_b) as conn:
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = 'notes'").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SET ROLE "{name_a}"')
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(url_a.replace(databases.password(org_a), databases.password(org_b))).close()
    with psycopg.connect(server.admin_url) as conn:
        for name in (name_a, name_b):
            row = conn.execute(f"SELECT {ATTRIBUTES} FROM pg_authid WHERE rolname = %s", (name,)).fetchone()
            assert row is not None
            assert row[:6] == (False, False, False, False, False, True)
            assert row[6].startswith("SCRAM-SHA-256$")  # a verifier: the password never reached the server
        privileges = conn.execute("SELECT datacl::text FROM pg_database WHERE datname = %s", (name_a,)).fetchone()
        assert privileges is not None
        assert "=Tc/" not in privileges[0].replace(f"{name_a}=", "")  # PUBLIC has no CONNECT
    # stored nowhere: derived from the key ring, so another worker with the same keys gives the same URL
    assert databases.password(org_a) not in (Path(runs_pg.pgdata).parent / PASSWORDS_FILE).read_text()
    assert RunsDatabases(server, keys).provision(org_a) == url_a
    with psycopg.connect(url_a) as conn:
        assert conn.execute("SELECT secret FROM notes").fetchall() == [("of a",)]
    # a worker on a rotated key ring derives the same password: it does not lock out the workers on the old one
    rotated = RunsDatabases(server, KeyRing.parse(f"k2:{generate_key()},{TEST_KEYS}"))
    assert rotated.provision(org_a) == url_a
    psycopg.connect(url_a).close()
    # the role reaches its own database and no other: not the platform's, not the server's maintenance one
    for other in ("orchestrator", "postgres", "template1"):
        with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects connection"):
            psycopg.connect(re.sub(rf"/{name_a}\?", f"/{other}?", url_a)).close()


# what the other organization's run does: its own database works; every other organization's is refused;
# every process's command line, and every environment it can read, as text
PROBE = r"""def run(values):
    import json, os, psycopg
    from urllib.parse import urlsplit
    url = os.environ["ORCHESTRATOR_RUNS_DATABASE_URL"]
    own = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'orch_runs_%'")]
        conn.execute("CREATE TABLE IF NOT EXISTS mine (n int)")
    others = {}
    for name in names:
        if name != own:
            try:
                psycopg.connect(url.replace("/" + own + "?", "/" + name + "?")).close()
                others[name] = "allowed"
            except psycopg.OperationalError as exc:
                others[name] = " ".join(str(exc).split())
    seen = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as handle:
                    seen.append(handle.read().decode(errors="replace"))
            except OSError:
                pass
    return json.dumps({"own": own, "others": others, "seen": "\n".join(seen)})
"""


@as_root
async def test_runs_under_another_account_wait_resume_and_reach_only_their_own_database(
    api: Api,
    workers: Any,
    create_agent: Any,
    create_workflow: Any,
    server: RunsServer,
    orchestrator_log: pytest.LogCaptureFixture,
) -> None:
    a, b = who("a"), who("b")
    waiting_run = await start(api, create_agent, create_workflow, a, APPROVAL, {"what": "v2"})
    root = runs_root(Path(tempfile.mkdtemp(prefix="orch-runs-", dir="/tmp")))
    try:
        settings = {"run_accounts": "uid:65534", "state_server": server, "workdir_root": root}
        async with workers(**settings, runner_pool_size=1, kernel_pool_size=0, preload=("langgraph",)):
            waiting = await wait_status(api, a, waiting_run, {"waiting"}, within=120)
            assert waiting["waiting_for"]["question"] == "Ship v2?"
            reply = await api("POST", "executions", waiting_run, "resume", user=a, body={"answer": {"ok": True}})
            assert reply.status == 202, reply.text
            done = await wait_final(api, a, waiting_run, within=120)
            probe_run = await start(api, create_agent, create_workflow, b, probe_spec(), {})
            probed = await wait_final(api, b, probe_run, within=120)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert done["status"] == "succeeded", done["error"]
    assert done["outputs"]["output"] == "shipped"
    org_a, org_b = done["org_id"], probed["org_id"]
    keys = RunsDatabases(server, KeyRing.parse(TEST_KEYS))
    with psycopg.connect(keys.provision(org_a)) as conn:  # A's checkpoints are in A's own database
        assert conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (waiting_run,)).fetchone()[0] > 0
    assert probed["status"] == "succeeded", probed["error"]
    report = json.loads(probed["outputs"]["output"])
    assert report["own"] == database_name(org_b)
    own, name_a = database_name(org_b), database_name(org_a)
    refusal = f'pg_hba.conf rejects connection for host "[local]", user "{own}", database "{name_a}"'
    assert refusal in report["others"][name_a]
    assert all("pg_hba.conf rejects connection" in outcome for outcome in report["others"].values()), report
    password_a = keys.password(org_a)
    assert password_a not in report["seen"]  # no command line, no environment B's run can read
    assert f"runs' database {database_name(org_a)} ready" in orchestrator_log.text  # the worker's log...
    assert password_a not in orchestrator_log.text  # ...has neither password
    assert keys.password(org_b) not in orchestrator_log.text


def probe_spec() -> dict[str, Any]:
    nodes = [
        {"id": "start", "type": "input"},
        {"id": "probe", "type": "code", "config": {"source": PROBE}},
    ]
    return {"nodes": nodes, "edges": [{"source": "start", "target": "probe"}]}


async def test_in_the_personal_mode_each_organizations_checkpoints_stay_in_its_own_database(
    api: Api, workers: Any, create_agent: Any, create_workflow: Any, server: RunsServer
) -> None:
    people = {who("a"): True, who("b"): False}
    runs = {user: await start(api, create_agent, create_workflow, user, APPROVAL, {"what": user}) for user in people}
    # one fork server for every organization (the worker's own account): each run gets its URL in its job
    async with workers(state_server=server, runner_pool_size=1, kernel_pool_size=0, preload=("langgraph",)):
        for user, run in runs.items():
            await wait_status(api, user, run, {"waiting"}, within=120)
            reply = await api("POST", "executions", run, "resume", user=user, body={"answer": {"ok": people[user]}})
            assert reply.status == 202, reply.text
        ended = {user: await wait_final(api, user, run, within=120) for user, run in runs.items()}
    assert [ended[user]["outputs"]["output"] for user in people] == ["shipped", "held"]
    databases = RunsDatabases(server, KeyRing.parse(TEST_KEYS))
    for user, execution in ended.items():
        with psycopg.connect(databases.provision(execution["org_id"])) as conn:
            threads = {row[0] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
        assert threads == {runs[user]}  # its own run's checkpoints, and nobody else's


def test_a_worker_whose_runs_cannot_reach_the_server_gives_them_none_and_says_why(
    tmp_path: Path, orchestrator_log: pytest.LogCaptureFixture
) -> None:
    private, shared = tmp_path / "pgdata", Path(tempfile.mkdtemp(prefix="orch-sock-", dir="/tmp"))
    private.mkdir(mode=0o700)
    shared.chmod(0o755)
    try:
        embedded = RunsServer("postgresql://postgres@/postgres", str(private))
        assert EngineSettings().worker_settings(embedded).state_server == embedded  # the personal mode: one account
        assert EngineSettings(run_accounts="uid:4242").worker_settings(embedded).state_server is None
        assert "closed to their accounts" in orchestrator_log.text
        opened = RunsServer("postgresql://postgres@/postgres", str(shared))
        assert EngineSettings(run_accounts="uid:4242").worker_settings(opened).state_server == opened
        admin = EngineSettings(runs_database_admin_url="postgresql://admin:pw@db:5432/postgres")
        assert admin.worker_settings(embedded).state_server == RunsServer(admin.runs_database_admin_url)
        shared_url = EngineSettings(runs_database_url="postgresql://runs:pw@db:5432/runs").worker_settings(embedded)
        assert (shared_url.state_server, shared_url.state_url) == (None, "postgresql://runs:pw@db:5432/runs")
    finally:
        shutil.rmtree(shared, ignore_errors=True)
