"""The team mode end to end: a real JupyterHub (``hub_config/jupyterhub_config.py``), real proxy,
real Orchestrator service and real LocalProcessSpawner servers under per-user system accounts.

Two people sign up and log in on the hub's pages, start servers, and call the API from their own
kernels with their kernels' own tokens (through ``orchestrator_ext.client``). What one creates the
other cannot see or change; a kernel cannot reach the database, the keys or another home; tokens
that are forged, expired or not a user's are refused; the lockout, the tiers and a block or removal
in the hub take effect at once. The tests run in file order and share one hub and two servers.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from orchestrator_ext.hub.spawner import system_name
from tests.hub.conftest import needs_root
from tests.hub.kernels import Kernel, Result, run_async
from tests.hub.team_hub import API, PASSWORD, Person, TeamHub

pytestmark = [needs_root, pytest.mark.timeout(600)]


@dataclass
class Team:
    hub: TeamHub
    ada: Person
    bob: Person
    servers: dict[str, str]
    #: the hub's answer to a spawn of a profile above the tier, and whether ada had an account before
    refused_spawn: tuple[int, str]
    account_before_refusal: bool
    account_after_refusal: bool


def _has_account(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(system_name(name))
    except KeyError:
        return False
    return True


@pytest.fixture(scope="module")
def team(team_hub: TeamHub) -> Team:
    hub = team_hub
    suffix = secrets.token_hex(2)
    ada, bob = hub.person(f"ada-{suffix}"), hub.person(f"bob-{suffix}")
    before = _has_account(ada.name)
    refused = hub.start_server(ada, profile="gpu")
    after = _has_account(ada.name)
    for person in (ada, bob):
        started = hub.start_server(person, profile="cpu-small")
        assert started.status_code in (201, 202), started.text
    servers = {person.name: hub.wait_ready(person) for person in (ada, bob)}
    return Team(hub, ada, bob, servers, (refused.status_code, refused.text), before, after)


def run(team: Team, person: Person, *cells: str) -> list[Result]:
    """Run cells in a fresh kernel of ``person``'s server (the same kernel for all of them)."""

    async def go() -> list[Result]:
        kernel = await Kernel(team.servers[person.name], person.token).start()
        try:
            return [await kernel.run(cell) for cell in cells]
        finally:
            await kernel.close()

    return run_async(go)


def out(result: Result) -> str:
    assert result.ok, f"{result.error}\n{''.join(result.traceback)[-3000:]}"
    return result.stdout.strip()


# ---- tiers ---------------------------------------------------------------------------------


def test_a_profile_above_the_tier_is_refused_before_anything_is_made(team: Team) -> None:
    status, body = team.refused_spawn
    assert status == 403
    message = json.loads(body)["message"]
    assert "'gpu'" in message
    assert "gpu-small" in message
    assert "your organizations are on: free" in message
    # the refusal came first: no system account was made for it (the next, allowed spawn made it)
    assert not team.account_before_refusal
    assert not team.account_after_refusal
    assert _has_account(team.ada.name)


# ---- identity: each kernel acts as its user ---------------------------------------------------


def test_each_kernel_reaches_the_api_as_its_own_user(team: Team) -> None:
    code = (
        "import os, pwd\n"
        "from orchestrator_ext.client import Client\n"
        "client = Client()\n"
        "print(pwd.getpwuid(os.getuid()).pw_name, client.connection.source, client.me()['username'])"
    )
    for person in (team.ada, team.bob):
        account, source, username = out(run(team, person, code)[0]).split()
        assert account == system_name(person.name)
        assert source == "hub"  # found from the hub's description of the service: nothing typed by hand
        assert username == person.name


def test_what_a_creates_b_can_neither_see_nor_change(team: Team) -> None:
    created = out(
        run(
            team,
            team.ada,
            "from orchestrator_ext.client import Client\n"
            "print(Client().create_agent('Ada private agent', 'notebook', description='mine')['id'])",
        )[0]
    )
    probe = (
        "import json\n"
        "from orchestrator_ext.client import ApiError, Client\n"
        "client = Client()\n"
        "seen = {}\n"
        "for name, call in [('get', lambda: client.agent(AGENT)),\n"
        "                   ('update', lambda: client.update_agent(AGENT, name='Bob was here')),\n"
        "                   ('delete', lambda: client.delete_agent(AGENT))]:\n"
        "    try:\n"
        "        call()\n"
        "        seen[name] = 'allowed'\n"
        "    except ApiError as exc:\n"
        "        seen[name] = [exc.status, exc.detail]\n"
        "seen['listed'] = AGENT in [a['id'] for a in client.agents()]\n"
        "print(json.dumps(seen))"
    ).replace("AGENT", repr(created))
    seen = json.loads(out(run(team, team.bob, probe)[0]))
    for action in ("get", "update", "delete"):
        assert seen[action][0] == 404, seen  # another tenant's agent does not exist for bob
    assert seen["listed"] is False
    # nothing changed for ada
    mine = team.hub.get(f"{API}/agents/{created}", team.ada.token)
    assert mine.status_code == 200
    assert mine.json()["name"] == "Ada private agent"


# ---- isolation: what a kernel cannot reach ------------------------------------------------------


def _service_pid(hub: TeamHub) -> int:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if "jupyter-orchestrator" in cmdline and str(hub.team_dir) in cmdline:
            return int(proc.pid)
    raise AssertionError("the Orchestrator service is not running")


def test_a_kernel_cannot_reach_the_database_the_keys_or_another_home(team: Team) -> None:
    hub = team.hub
    pgdata = hub.team_dir / "service" / "data" / "pgdata"
    socket_dir = (pgdata / "postmaster.pid").read_text().splitlines()[4]
    assert Path(socket_dir) == pgdata, "the PostgreSQL socket must sit inside the private pgdata"
    targets = {
        "postgres": socket_dir,
        "keys": str(hub.team_dir / "service" / "data" / "keys.json"),
        "service_dir": str(hub.team_dir / "service"),
        "service_environ": f"/proc/{_service_pid(hub)}/environ",
        "hub_database": str(hub.team_dir / "hub" / "jupyterhub.sqlite"),
        "hub_cookie_secret": str(hub.team_dir / "hub" / "jupyterhub_cookie_secret"),
        "other_home": str(hub.team_dir / "home" / system_name(team.bob.name)),
    }
    code = f"""
import json, os, socket
import psycopg
T = {json.dumps(targets)}
seen = {{}}
def attempt(name, action):
    try:
        action()
        seen[name] = "reached"
    except Exception as exc:
        seen[name] = type(exc).__name__ + ": " + str(exc)[:200]
def unix_socket():
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(os.path.join(T["postgres"], ".s.PGSQL.5432"))
attempt("postgres_socket", unix_socket)
attempt("postgres_psql", lambda: psycopg.connect(host=T["postgres"], user="postgres", dbname="orchestrator").close())
attempt("keys", lambda: open(T["keys"]).read())
attempt("service_dir", lambda: os.listdir(T["service_dir"]))
attempt("service_environ", lambda: open(T["service_environ"], "rb").read())
attempt("hub_database", lambda: open(T["hub_database"], "rb").read())
attempt("hub_cookie_secret", lambda: open(T["hub_cookie_secret"], "rb").read())
attempt("other_home", lambda: os.listdir(T["other_home"]))
seen["secrets_in_env"] = sorted(k for k in os.environ if k.startswith("ORCHESTRATOR_") and k != "ORCHESTRATOR_PROFILE")
print(json.dumps(seen))
"""
    seen = json.loads(out(run(team, team.ada, code)[0]))
    assert seen.pop("secrets_in_env") == []
    for name, outcome in seen.items():
        assert outcome != "reached", f"a kernel reached {name}"
        assert "Permission denied" in outcome or "PermissionError" in outcome, (name, outcome)


def test_the_service_serves_the_api_and_nothing_else(team: Team) -> None:
    token = team.ada.token
    hub = team.hub
    for path in ("/services/orchestrator/api/kernels", "/services/orchestrator/api/contents"):
        assert hub.get(path, token).status_code == 403, path
    started = hub.get("/services/orchestrator/api/kernels", token)
    assert started.status_code == 403
    post = __import__("requests").post(
        f"{hub.url}/services/orchestrator/api/kernels", headers=team.ada.headers, json={}, timeout=30
    )
    assert post.status_code == 403  # no kernel (and so no shell) beside the database credentials
    assert hub.get(f"{API}/users/me", token).status_code == 200


# ---- bad input ----------------------------------------------------------------------------------


def test_tokens_that_are_not_a_users_are_refused_and_change_nothing(team: Team) -> None:
    hub = team.hub
    agents_before = hub.get(f"{API}/agents", team.ada.token).json()["items"]
    forged = hub.get(f"{API}/users/me", secrets.token_hex(16))
    assert forged.status_code == 403
    assert forged.headers["Content-Type"].startswith("application/problem+json")
    intruder = hub.get(f"{API}/users/me", hub.service_tokens["intruder"])
    assert intruder.status_code == 403
    assert "does not act for a user" in intruder.json()["detail"]
    assert hub.get(f"{API}/agents", hub.service_tokens["bystander"]).status_code == 403
    short = team.ada.session.post(
        f"{hub.url}/hub/api/users/{team.ada.name}/tokens",
        json={"note": "short-lived", "expires_in": 1},
        headers={"X-XSRFToken": team.ada.session.cookies.get("_xsrf", "")},
        timeout=30,
    ).json()["token"]
    time.sleep(2.5)
    assert hub.get(f"{API}/users/me", short).status_code == 403  # expired
    assert hub.hub_api("GET", "/user", secrets.token_hex(16)).status_code == 403
    assert hub.get(f"{API}/agents", team.ada.token).json()["items"] == agents_before


def test_repeated_wrong_passwords_lock_the_account(team_hub: TeamHub) -> None:
    hub = team_hub
    carl, dora = f"carl-{secrets.token_hex(2)}", f"dora-{secrets.token_hex(2)}"
    for name in (carl, dora):
        assert hub.sign_up(name).status_code == 200
        assert hub.approve(name).status_code == 302
    for _ in range(3):  # ORCHESTRATOR_HUB_LOGIN_ATTEMPTS
        _, failed = hub.log_in(carl, "not-the-password")
        assert failed.status_code == 200
        assert "Invalid username or password" in failed.text
    _, locked = hub.log_in(carl, PASSWORD)
    assert locked.status_code == 200  # the right password, refused while locked out: no session
    assert "jupyterhub-session-id" not in locked.cookies
    assert "jupyterhub-hub-login" not in locked.cookies
    _, other = hub.log_in(dora, PASSWORD)
    assert other.status_code == 302  # others are not affected


def test_weak_passwords_are_refused_at_sign_up(team_hub: TeamHub) -> None:
    hub = team_hub
    admin = hub.people.get(hub.admin) or hub.person(hub.admin)
    for name, password in ((f"eve-{secrets.token_hex(2)}", "short"), (f"fay-{secrets.token_hex(2)}", "password123")):
        page = hub.sign_up(name, password)
        assert page.status_code == 200
        # no account was made: nothing for the admin to approve
        assert name not in admin.session.get(f"{hub.url}/hub/authorize", timeout=30).text, f"{name} was created"


def test_a_user_changes_their_password(team_hub: TeamHub) -> None:
    hub = team_hub
    name, new = f"gus-{secrets.token_hex(2)}", "another-long-passphrase-7"
    assert hub.sign_up(name).status_code == 200
    assert hub.approve(name).status_code == 302
    session, _ = hub.log_in(name)
    page = session.post(
        f"{hub.url}/hub/change-password",
        data={
            "old_password": PASSWORD,
            "new_password": new,
            "new_password_confirmation": new,
            "_xsrf": session.cookies.get("_xsrf", ""),
        },
        timeout=30,
    )
    assert "changed successfully" in page.text
    assert hub.log_in(name, PASSWORD)[1].status_code == 200
    assert hub.log_in(name, new)[1].status_code == 302


def test_the_idle_culler_runs_as_a_hub_service(team: Team) -> None:
    hub = team.hub
    admin = hub.people.get(hub.admin) or hub.person(hub.admin)
    services = hub.hub_api("GET", "/services", admin.token).json()
    assert services["idle-culler"]["pid"] > 0
    assert set(services) >= {"orchestrator", "dashboard", "idle-culler"}
    assert services["orchestrator"]["display"]
    assert services["dashboard"]["display"]


# ---- the hub decides: blocked, then removed ------------------------------------------------------


def test_a_blocked_then_removed_user_loses_api_access_at_once(team: Team) -> None:
    hub, ada = team.hub, team.ada
    admin = hub.people.get(hub.admin) or hub.person(hub.admin)
    kernel_token = out(run(team, ada, "import os; print(os.environ['JUPYTERHUB_API_TOKEN'])")[0])
    assert hub.get(f"{API}/users/me", kernel_token).status_code == 200

    assert hub.hub_api("POST", "/groups/blocked", admin.token).status_code in (201, 409)
    added = hub.hub_api("POST", "/groups/blocked/users", admin.token, json={"users": [ada.name]})
    assert added.status_code == 200
    refused = hub.get(f"{API}/users/me", kernel_token)  # no wait: the service asks the hub every time
    assert refused.status_code == 403
    assert "blocked" in refused.json()["detail"]
    assert hub.get(f"{API}/agents", ada.token).status_code == 403
    assert hub.get(f"{API}/users/me", team.bob.token).status_code == 200

    removed = hub.hub_api("DELETE", "/groups/blocked/users", admin.token, json={"users": [ada.name]})
    assert removed.status_code == 200
    assert hub.get(f"{API}/users/me", kernel_token).status_code == 200  # unblocked

    deleted = hub.hub_api("DELETE", f"/users/{ada.name}", admin.token)
    assert deleted.status_code == 204, deleted.text
    for token in (kernel_token, ada.token):
        assert hub.get(f"{API}/users/me", token).status_code == 403
    assert hub.get(f"{API}/users/me", team.bob.token).status_code == 200
