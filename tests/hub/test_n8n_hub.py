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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from orchestrator_runtimes.forkserver import die_with_parent

from orchestrator_ext.n8n.install import installation
from tests.hub.conftest import needs_root
from tests.hub.team_hub import API, Person, TeamHub
from tests.personal_server import free_port

pytestmark = [needs_root, pytest.mark.timeout(600)]

EDITOR = "/services/orchestrator/orchestrator/n8n"
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
    """``jupyter orchestrator n8n serve`` for the organization, on the service's database and key ring.

    It runs as the service's account, from the hub's environment, with ``--account none`` (n8n as that account
    too): as root it cannot attach to the embedded PostgreSQL the service started (its files are the service's;
    root's embedded server is another account's), see docs/frameworks/n8n.md, *What is not there yet*."""
    account = pwd.getpwnam(hub.service_user)
    data_dir.mkdir()
    os.chown(data_dir, account.pw_uid, account.pw_gid)
    env = {
        "PATH": f"{hub.env_prefix / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(hub.team_dir / "service"),
        "ORCHESTRATOR_DATA_DIR": str(hub.team_dir / "service" / "data"),
        "ORCHESTRATOR_RUNS_SOCKET_DIR": str(hub.team_dir / "runs-db"),
        "ORCHESTRATOR_N8N_HOME": str(installation().home),
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_CONFIG_DIR": str(hub.team_dir / "service" / "jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(hub.team_dir / "service" / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(hub.team_dir / "service" / "jupyter" / "runtime"),
        "XDG_RUNTIME_DIR": str(hub.team_dir / "service" / "run"),
    }
    options = [f"--org={org_id}", f"--port={free_port()}", f"--data={data_dir}", "--account=none"]
    process = subprocess.Popen(
        [str(hub.env_prefix / "bin" / "jupyter"), "orchestrator", "n8n", "serve", *options, SERVICE_PREFIX],
        env=env,
        cwd=str(hub.team_dir / "service"),
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=functools.partial(die_with_parent, signal.SIGTERM),
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    return process, lines


def wait_served(process: subprocess.Popen[str], lines: list[str]) -> None:
    import time

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
