"""A real JupyterHub in team mode for the tests: ``jupyterhub -f hub_config/jupyterhub_config.py`` as
root on free loopback ports, with the PyPI configurable-http-proxy, the Orchestrator service, the
dashboard service, the idle culler and the TeamSpawner; people sign up and log in through the hub's
own pages, as a browser would."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from orchestrator_ext.hub.spawner import system_name
from tests.personal_server import free_port

REPOSITORY = Path(__file__).resolve().parents[2]
TEAM_CONFIG = REPOSITORY / "hub_config" / "jupyterhub_config.py"
TEST_CONFIG = Path(__file__).with_name("jupyterhub_test_config.py")
SERVICE_USER = "orch-test-svc"
PASSWORD = "correct-horse-battery-9"
START_TIMEOUT_S = 120.0
API = "/services/orchestrator/orchestrator/api/v1"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class Person:
    """A hub user logged in through the hub's login page: a browser session and an API token."""

    name: str
    session: requests.Session
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}


@dataclass
class TeamHub:
    url: str
    process: subprocess.Popen[bytes]
    team_dir: Path
    env_prefix: Path
    log_path: Path
    admin: str
    service_tokens: dict[str, str]
    service_user: str
    ssl_verify: Any = True
    #: sign-ups wait for an admin's approval (ORCHESTRATOR_HUB_APPROVAL, on by default)
    approval: bool = True
    people: dict[str, Person] = field(default_factory=dict)
    accounts: set[str] = field(default_factory=set)
    #: what the hub started (proxy, services), kept while it lives: stopped even if the hub dies first
    spawned: dict[int, psutil.Process] = field(default_factory=dict)
    #: the loopback ports of the hub's API and of the Orchestrator and dashboard services (behind the proxy)
    hub_port: int = 0
    service_port: int = 0
    dashboard_port: int = 0
    #: the proxy's REST API (ORCHESTRATOR_HUB_PROXY_API_PORT)
    proxy_api_port: int = 0

    def remember_children(self) -> None:
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.spawned.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass

    @property
    def api_url(self) -> str:
        return f"{self.url}{API}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {token}"} if token else {}
        return requests.get(f"{self.url}{path}", headers=headers, timeout=30, verify=self.ssl_verify, **kwargs)

    def hub_api(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {token}"},
            timeout=60,
            verify=self.ssl_verify,
            **kwargs,
        )

    # ---- people -----------------------------------------------------------------------

    def browser(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would replace the hub's certificate
        session.verify = self.ssl_verify
        return session

    def sign_up(self, name: str, password: str = PASSWORD) -> requests.Response:
        session = self.browser()
        session.get(f"{self.url}/hub/signup", timeout=30)
        return session.post(
            f"{self.url}/hub/signup",
            data={
                "username": name,
                "signup_password": password,
                "signup_password_confirmation": password,
                "_xsrf": session.cookies.get("_xsrf", ""),
            },
            timeout=30,
        )

    def log_in(self, name: str, password: str = PASSWORD) -> tuple[requests.Session, requests.Response]:
        session = self.browser()
        session.get(f"{self.url}/hub/login", timeout=30)
        response = session.post(
            f"{self.url}/hub/login",
            data={"username": name, "password": password, "_xsrf": session.cookies.get("_xsrf", "")},
            allow_redirects=False,
            timeout=30,
        )
        return session, response

    def token_for(self, session: requests.Session, name: str) -> str:
        """An API token of ``name``, made from their logged-in browser session (as the hub's token page does)."""
        made = session.post(
            f"{self.url}/hub/api/users/{name}/tokens",
            json={"note": "tests", "expires_in": 3600},
            headers={"X-XSRFToken": session.cookies.get("_xsrf", "")},
            timeout=30,
        )
        assert made.status_code == 201, made.text
        return str(made.json()["token"])

    def approve(self, name: str) -> requests.Response:
        """The hub's admin approves ``name``'s sign-up with the authorization page's button (a POST
        with the page's XSRF token); the hub's answer."""
        admin = self.people.get(self.admin) or self.person(self.admin)
        page = admin.session.get(f"{self.url}/hub/authorize", timeout=30)
        assert page.status_code == 200, page.text[-2000:]
        return admin.session.post(
            f"{self.url}/hub/authorize/{name}",
            data={"_xsrf": admin.session.cookies.get("_xsrf", "")},
            allow_redirects=False,
            timeout=30,
        )

    def person(self, name: str) -> Person:
        """Sign ``name`` up (the admin exists from the start: no sign-up), have the admin approve them
        (unless approval is off), log in on the hub's page, and make an API token from that session."""
        if name != self.admin:
            assert self.sign_up(name).status_code == 200
        if self.approval and name != self.admin:
            _, refused = self.log_in(name)
            assert refused.status_code == 200, "logged in before an admin approved the sign-up"
            assert self.approve(name).status_code == 302
        session, response = self.log_in(name)
        assert response.status_code == 302, response.text[-2000:]
        self.people[name] = Person(name, session, self.token_for(session, name))
        self.accounts.add(system_name(name))
        return self.people[name]

    # ---- servers ----------------------------------------------------------------------

    def start_server(self, person: Person, **options: Any) -> requests.Response:
        return self.hub_api("POST", f"/users/{person.name}/server", person.token, json=options)

    def wait_ready(self, person: Person, timeout: float = START_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.hub_api("GET", f"/users/{person.name}", person.token).json()
            server = model.get("servers", {}).get("", {})
            if server.get("ready"):
                return f"{self.url}{server['url'].rstrip('/')}"
            if not model.get("pending") and not server:
                raise RuntimeError(f"{person.name}'s server stopped:\n{self.log()[-6000:]}")
            time.sleep(0.3)
        raise RuntimeError(f"{person.name}'s server is not ready after {timeout:.0f} s:\n{self.log()[-6000:]}")


def _wait_up(hub: TeamHub) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        hub.remember_children()
        if hub.process.poll() is not None:
            raise RuntimeError(f"the hub exited with {hub.process.returncode}:\n{hub.log()[-8000:]}")
        try:
            if hub.get(f"{API}/health").status_code == 200 and hub.get("/services/dashboard/").status_code in (
                200,
                302,
            ):
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the hub and its services are not up after {START_TIMEOUT_S:.0f} s:\n{hub.log()[-8000:]}")


def start_hub(
    env_prefix: Path,
    *,
    extra_env: Mapping[str, str] | None = None,
    scheme: str = "http",
    internal_scheme: str = "http",
    ssl_verify: Any = True,
    service_user: str = SERVICE_USER,
) -> TeamHub:
    """Start the team-mode hub (as root) on free loopback ports and wait for its services.

    ``scheme="https"`` with ORCHESTRATOR_HUB_SSL_CERT/KEY in ``extra_env``; ``ssl_verify`` is what
    requests checks the hub's certificate with (a CA bundle's path). Hubs running at the same time
    need service accounts of their own (``service_user``)."""
    _reclaim_if_stale(service_user)
    team_dir = Path(tempfile.mkdtemp(prefix="orch-hub-", dir="/tmp"))  # short: PostgreSQL's socket lives in it
    port, hub_port, proxy_api, service_port, dashboard_port = (free_port() for _ in range(5))
    admin = f"admin-{secrets.token_hex(3)}"
    tokens = {"intruder": secrets.token_hex(16), "bystander": secrets.token_hex(16)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRATOR_", "JUPYTERHUB_", "OAUTH_"))}
    # a root shell's PATH, without the hub's environment: as README's /opt/orchestrator/bin/jupyterhub runs
    env["PATH"] = SYSTEM_PATH
    env.update(
        ORCHESTRATOR_TEST_TEAM_CONFIG=str(TEAM_CONFIG),
        ORCHESTRATOR_TEST_INTRUDER_TOKEN=tokens["intruder"],
        ORCHESTRATOR_TEST_BYSTANDER_TOKEN=tokens["bystander"],
        ORCHESTRATOR_TEAM_DIR=str(team_dir),
        ORCHESTRATOR_TEAM_ENV=str(env_prefix),
        ORCHESTRATOR_TEAM_HOMES=str(team_dir / "home"),
        ORCHESTRATOR_SERVICE_USER=service_user,
        ORCHESTRATOR_SERVICE_PORT=str(service_port),
        ORCHESTRATOR_DASHBOARD_PORT=str(dashboard_port),
        ORCHESTRATOR_HUB_PROXY_API_PORT=str(proxy_api),
        # the first admin is made at start with this password; the second name must be approved
        ORCHESTRATOR_HUB_ADMINS=f"{admin},{admin}-2",
        ORCHESTRATOR_HUB_ADMIN_PASSWORD=PASSWORD,
        ORCHESTRATOR_HUB_LOGIN_ATTEMPTS="3",
        ORCHESTRATOR_HUB_LOCKOUT_SECONDS="600",
    )
    env.update(extra_env or {})
    log_path = team_dir / "hub.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterhub",
                "-f",
                str(TEST_CONFIG),
                f"--JupyterHub.bind_url={scheme}://127.0.0.1:{port}",
                f"--JupyterHub.hub_bind_url={internal_scheme}://127.0.0.1:{hub_port}",
            ],
            cwd=team_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (team_dir / "home").mkdir(exist_ok=True)
    hub = TeamHub(f"{scheme}://127.0.0.1:{port}", process, team_dir, env_prefix, log_path, admin, tokens, service_user)
    hub.ssl_verify = ssl_verify
    hub.approval = env.get("ORCHESTRATOR_HUB_APPROVAL", "true") == "true"
    hub.hub_port, hub.service_port, hub.dashboard_port = hub_port, service_port, dashboard_port
    hub.proxy_api_port = proxy_api
    try:
        _wait_up(hub)
    except BaseException:
        stop_hub(hub)
        raise
    return hub


def stop_hub(hub: TeamHub, timeout: float = 60.0) -> None:
    """Stop the hub (it stops the services and users' servers), then anything it left, then its accounts."""
    hub.remember_children()
    if hub.process.poll() is None:
        hub.process.send_signal(signal.SIGTERM)
        try:
            hub.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            hub.process.kill()
            hub.process.wait()
    _, alive = psutil.wait_procs([p for p in hub.spawned.values() if p.is_running()], timeout=10)
    for leftover in alive:
        leftover.terminate()
    _, alive = psutil.wait_procs(alive, timeout=10)
    for leftover in alive:
        leftover.kill()
    pgdata = hub.team_dir / "service" / "data" / "pgdata"
    for proc in psutil.process_iter(["cmdline"]):
        if str(pgdata) in (proc.info.get("cmdline") or []):
            proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
    stragglers = _processes_using(hub.team_dir)
    for straggler in stragglers:
        straggler.terminate()
    _, alive = psutil.wait_procs(stragglers, timeout=10)
    for leftover in alive:
        leftover.kill()
    # and the accounts the worker made for organizations' runs, and the service's, when theirs are homes
    # in this team directory: a hub that could not start beside another one's must not remove that one's
    ours = {entry.pw_name for entry in pwd.getpwall() if entry.pw_dir.startswith(f"{hub.team_dir}/")}
    for account in sorted(hub.accounts | ours):
        _remove_account(account)
    shutil.rmtree(hub.team_dir, ignore_errors=True)


def _reclaim_if_stale(service_user: str) -> None:
    """A test session killed mid-hub (a CI job's time out, a session's end) leaves its service account with
    its home in that hub's team directory, and the next hub refuses the account. Where nothing runs from
    that directory any more, remove what that hub left (its accounts and the directory), as ``stop_hub``
    would have; a hub that is still running keeps its account, and this one then fails with the hub's own
    message."""
    try:
        home = Path(pwd.getpwnam(service_user).pw_dir)
    except KeyError:
        return
    team_dir = home.parent
    if not team_dir.name.startswith("orch-hub-") or team_dir.parent != Path("/tmp") or _processes_using(team_dir):
        return
    for entry in pwd.getpwall():
        if entry.pw_dir == str(team_dir) or entry.pw_dir.startswith(f"{team_dir}/"):
            _remove_account(entry.pw_name)
    shutil.rmtree(team_dir, ignore_errors=True)


def _processes_using(folder: Path) -> list[psutil.Process]:
    """Processes whose command line or environment names ``folder`` (the service's workers, kernels)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            texts = [*(proc.info.get("cmdline") or []), *proc.environ().values()]
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if proc.pid != os.getpid() and any(str(folder) in text for text in texts):
            found.append(proc)
    return found


def _remove_account(name: str) -> None:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return
    if entry.pw_uid < 1000:  # only the accounts these tests made
        return
    for proc in psutil.process_iter(["username"]):
        if proc.info.get("username") == name:
            proc.kill()
    subprocess.run(["userdel", name], check=False, capture_output=True)
