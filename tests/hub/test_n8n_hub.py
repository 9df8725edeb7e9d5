"""n8n's editor under JupyterHub: an organization's members open their instance's editor through the
Orchestrator service, behind the hub's login; nobody else reaches it.

A real team hub (tests/hub/team_hub.py) and a real n8n run by ``jupyter orchestrator n8n serve --org X
--service-prefix /services/orchestrator/`` as the operator runs it (as root: n8n under an account of its
own). People log in on the hub's page and follow its OAuth redirects to the service, as a browser does.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from orchestrator_runtimes.forkserver import die_with_parent

from orchestrator_ext.db.embedded import PASSWORDS_FILE
from orchestrator_ext.n8n import account
from orchestrator_ext.n8n.install import installation
from tests.hub.conftest import needs_root
from tests.hub.isolation_probe import api, ok, start_run
from tests.hub.team_hub import API, Person, TeamHub
from tests.personal_server import free_port

pytestmark = [needs_root, pytest.mark.timeout(600)]

EDITOR = "/services/orchestrator/orchestrator/n8n"
GREET = json.loads((Path(__file__).parents[1] / "n8n" / "workflows" / "greet.json").read_text())
SERVICE_PREFIX = "--service-prefix=/services/orchestrator/"
N8N_READY_S = 240.0


@dataclass
class Instance:
    """An organization's n8n as ``serve`` runs it, and the people on either side."""

    member: Person
    outsider: Person
    org_id: str
    outsider_org: str
    data_dir: Path

    def secrets(self) -> list[str]:
        """What must never reach a browser: the owner's password (the API key is sealed in the database)."""
        return [json.loads((self.data_dir / "owner.json").read_text())["password"]]


def personal_org(hub: TeamHub, person: Person) -> str:
    listed = hub.get(f"{API}/organizations", person.token)
    assert listed.status_code == 200, listed.text
    return str(next(org["id"] for org in listed.json()["items"] if org["personal"]))


def serve(hub: TeamHub, org_id: str, data_dir: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """``jupyter orchestrator n8n serve`` for the organization, as the operator runs it beside the hub: as root,
    with the service's data folder (its embedded PostgreSQL and key ring, another account's: n8n's database is
    made as that account) and n8n under an account of its own."""
    data_dir.mkdir()
    env = {
        "PATH": f"{hub.env_prefix / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "ORCHESTRATOR_DATA_DIR": str(hub.team_dir / "service" / "data"),
        "ORCHESTRATOR_RUNS_SOCKET_DIR": str(hub.team_dir / "runs-db"),
        "ORCHESTRATOR_N8N_HOME": str(installation().home),
    }
    options = [f"--org={org_id}", f"--port={free_port()}", f"--data={data_dir}"]
    process = subprocess.Popen(
        [str(hub.env_prefix / "bin" / "jupyter"), "orchestrator", "n8n", "serve", *options, SERVICE_PREFIX],
        env=env,
        cwd=str(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=functools.partial(die_with_parent, signal.SIGTERM),
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    return process, lines


def wait_served(process: subprocess.Popen[str], lines: list[str]) -> None:
    deadline = time.monotonic() + N8N_READY_S
    while time.monotonic() < deadline:
        if any(" at http://127.0.0.1:" in line for line in lines):
            return
        if process.poll() is not None:
            break
        time.sleep(0.5)
    raise AssertionError("n8n serve did not come up:\n" + "".join(lines)[-4000:])


@pytest.fixture(scope="module")
def instance(team_hub: TeamHub) -> Iterator[Instance]:
    suffix = secrets.token_hex(2)
    member, outsider = team_hub.person(f"n8n-ada-{suffix}"), team_hub.person(f"n8n-bob-{suffix}")
    org_id, outsider_org = personal_org(team_hub, member), personal_org(team_hub, outsider)
    data_dir = team_hub.team_dir / f"n8n-{suffix}"
    process, lines = serve(team_hub, org_id, data_dir)
    try:
        wait_served(process, lines)
        served = next(line for line in lines if " at http://127.0.0.1:" in line)
        assert f"as {account.PREFIX}" in served, (
            served
        )  # n8n under an account of its own: not root's, nor the service's
        passwords = team_hub.team_dir / "service" / "data" / PASSWORDS_FILE  # n8n's role's password added as its owner
        assert passwords.stat().st_uid == pwd.getpwnam(team_hub.service_user).pw_uid
        yield Instance(member, outsider, org_id, outsider_org, data_dir)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def no_leak(response: requests.Response, instance: Instance) -> None:
    """No n8n cookie, credential or key in anything the browser got (redirects included)."""
    for step in [*response.history, response]:
        assert "n8n-auth" not in step.headers.get("Set-Cookie", "")
        for secret in instance.secrets():
            assert secret not in step.text
            assert secret not in str(step.headers)


def test_a_member_edits_their_organizations_n8n_behind_the_hub_login(team_hub: TeamHub, instance: Instance) -> None:
    browser = instance.member.session
    base = f"{team_hub.url}{EDITOR}/{instance.org_id}/"
    page = browser.get(base, timeout=60)  # the hub's OAuth redirects, then n8n's page through the service
    assert page.status_code == 200, page.text[-2000:]
    assert f"{EDITOR}/{instance.org_id}/" in page.text  # n8n's page asks for its assets under the service's path
    no_leak(page, instance)
    asset = next(part.split('"')[0] for part in page.text.split('src="')[1:] if part.startswith(EDITOR))
    assert browser.get(f"{team_hub.url}{asset}", timeout=60).status_code == 200
    editor = {"browser-id": "the-browsers-own", "Origin": team_hub.url}
    me = browser.get(f"{base}rest/login", headers=editor, timeout=60)  # logged in to n8n without a login of theirs
    assert me.status_code == 200, me.text
    assert me.json()["data"]["role"] == "global:owner"
    made = browser.post(
        f"{base}rest/workflows",
        json={"name": f"drawn in the hub {secrets.token_hex(3)}", "nodes": [], "connections": {}, "settings": {}},
        headers=editor,
        timeout=60,
    )
    assert made.status_code == 200, made.text
    no_leak(made, instance)
    listed = browser.get(f"{base}rest/workflows", headers=editor, timeout=60)
    assert made.json()["data"]["id"] in {item["id"] for item in listed.json()["data"]}
    # a write from another site's page (its Origin) is not the editor's: jupyter's XSRF check refuses it
    forged = browser.post(
        f"{base}rest/workflows",
        json={"name": "forged", "nodes": [], "connections": {}},
        headers={"browser-id": "x", "Origin": "http://evil.example"},
        timeout=60,
    )
    assert forged.status_code == 403


def test_another_organizations_user_and_strangers_never_reach_it(team_hub: TeamHub, instance: Instance) -> None:
    base = f"{team_hub.url}{EDITOR}/{instance.org_id}/"
    outsider = instance.outsider
    assert outsider.session.get(base, timeout=60).status_code == 404  # their browser, logged in to the hub
    assert outsider.session.get(f"{base}rest/workflows", timeout=60).status_code == 404
    assert requests.get(base, headers=outsider.headers, timeout=60).status_code == 404  # their API token
    own = outsider.session.get(f"{team_hub.url}{EDITOR}/{instance.outsider_org}/", timeout=60)
    assert own.status_code == 409  # their organization has no instance: said so, nothing proxied
    assert "n8n serve" in own.text
    stranger = requests.get(base, allow_redirects=False, timeout=60)
    assert stranger.status_code == 302  # to the hub's login, never to n8n
    assert "/hub/" in stranger.headers["Location"]
    assert requests.get(f"{base}rest/workflows", allow_redirects=False, timeout=60).status_code in (302, 403)
    assert (
        requests.get(f"{team_hub.url}{EDITOR}/not-an-org/", headers=instance.member.headers, timeout=60).status_code
        == 404
    )


def test_an_organizations_n8n_run_starts_its_instance_on_demand(team_hub: TeamHub) -> None:
    """No ``serve``: the hub's n8n service starts the organization's instance for its first n8n agent, and the run,
    which waits for it, succeeds; its editor is served to the organization's members."""
    person = team_hub.person(f"n8n-cy-{secrets.token_hex(2)}")
    org_id = personal_org(team_hub, person)
    flow = {"id": "flow", "type": "n8n_workflow", "config": {"workflow": GREET}}
    spec = {"nodes": [flow], "integrations": ["n8n"], "timeout_seconds": N8N_READY_S + 60}
    run = start_run(team_hub, person, "n8n", spec, {"name": "Ada"})
    deadline = time.monotonic() + N8N_READY_S + 120
    while (found := ok(api(team_hub, person, "GET", f"executions/{run['id']}")))["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, f"the n8n run did not end:\n{team_hub.log()[-6000:]}"
        time.sleep(0.5)
    assert found["status"] == "succeeded", found
    assert found["outputs"]["output"] == {"greeting": "Hello, Ada!", "letters": 3}
    listed = ok(api(team_hub, person, "GET", "integrations"))["items"]
    n8n = next(item for item in listed if item["name"] == "n8n")
    assert n8n["config"].get("managed"), n8n
    assert "refused" not in n8n["config"], n8n
    page = person.session.get(f"{team_hub.url}{EDITOR}/{org_id}/", timeout=60)
    assert page.status_code == 200, page.text[-2000:]
    assert f"{EDITOR}/{org_id}/" in page.text
