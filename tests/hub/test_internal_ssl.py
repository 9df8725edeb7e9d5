"""Internal TLS: the team-mode hub started with ORCHESTRATOR_HUB_INTERNAL_SSL=true (JupyterHub's
``internal_ssl``) and the npm configurable-http-proxy. Every connection behind the proxy is TLS with
certificates from the hub's own authorities: the hub's API, the Orchestrator service and the
dashboard answer only clients showing one, and everything still works end to end: the services
start (orchestrator_ext/hub/tls.py's two JupyterHub workarounds), the idle culler and the dashboard
reach the hub, a person signs up, the hub asks the API for their tiers (a profile above them is
refused), their server starts, and their kernel calls the API over the internal https address.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from orchestrator_ext.hub import tls
from orchestrator_ext.hub.spawner import system_name
from tests.hub.conftest import needs_root
from tests.hub.kernels import Kernel, Result, run_async
from tests.hub.team_hub import API, Person, TeamHub, start_hub, stop_hub
from tests.hub.test_tls import self_signed
from tests.hub.userenv import ensure_npm_proxy

pytestmark = [needs_root, pytest.mark.timeout(600)]  # the first test may build the users' environment

SERVICE_USER = "orch-issl-svc"  # the folder's other hubs run meanwhile, with accounts of their own


@dataclass
class Team:
    hub: TeamHub
    ada: Person
    server: str
    #: the spawn page ada saw, and the hub's answer to her spawn of a profile above her tier
    spawn_page: str
    refused_spawn: tuple[int, str]

    @property
    def store(self) -> Path:
        """The hub's internal CAs and certificates (root's)."""
        return self.hub.team_dir / "hub" / "internal-ssl"

    @property
    def all_cas(self) -> str:
        """Every internal authority (the hub's own bundle)."""
        return str(self.store / "hub-ca_trust.crt")

    @property
    def hubs_own_cert(self) -> tuple[str, str]:
        """The hub's client certificate and key, which every part behind the proxy accepts."""
        own = self.store / "hub-internal"
        return str(own / "hub-internal.crt"), str(own / "hub-internal.key")


@pytest.fixture(scope="module")
def team(team_env: Path) -> Iterator[Team]:
    proxy = ensure_npm_proxy()
    if proxy is None:
        pytest.skip("internal TLS needs the npm configurable-http-proxy, and npm is not installed")
    hub = start_hub(
        team_env,
        extra_env={"ORCHESTRATOR_HUB_INTERNAL_SSL": "true", "ORCHESTRATOR_HUB_PROXY_COMMAND": str(proxy)},
        internal_scheme="https",
        service_user=SERVICE_USER,
    )
    try:
        ada = hub.person(f"ada-{secrets.token_hex(2)}")
        spawn_page = ada.session.get(f"{hub.url}/hub/spawn", timeout=60).text
        refused = hub.start_server(ada, profile="gpu")
        started = hub.start_server(ada, profile="cpu-small")
        assert started.status_code in (201, 202), f"{started.text}\n{hub.log()[-6000:]}"
        yield Team(hub, ada, hub.wait_ready(ada), spawn_page, (refused.status_code, refused.text))
    finally:
        stop_hub(hub)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def owner(path: Path) -> str:
    import pwd

    return pwd.getpwuid(path.stat().st_uid).pw_name


def refused(url: str, **tls: object) -> bool:
    """Whether a GET of ``url`` fails at the connection (TLS or plain http), not with an HTTP answer."""
    try:
        requests.get(url, timeout=10, **tls)  # type: ignore[arg-type]
    except requests.exceptions.ConnectionError:  # SSLError included
        return True
    return False


# ---- the hub and its services ----------------------------------------------------------------------


def test_the_hub_and_its_services_come_up_over_internal_tls(team: Team) -> None:
    hub = team.hub
    assert hub.get(f"{API}/health").json()["status"] == "ok"  # through the public proxy (http here)
    admin = hub.people.get(hub.admin) or hub.person(hub.admin)
    services = hub.hub_api("GET", "/services", admin.token).json()
    assert services["orchestrator"]["url"] == f"https://127.0.0.1:{hub.service_port}"
    assert services["dashboard"]["url"] == f"https://127.0.0.1:{hub.dashboard_port}"
    # the services' keys left the hub's store for folders of their accounts' own
    service_certs = hub.team_dir / "certs" / "services" / "orchestrator"
    keys = list(service_certs.glob("*.key"))
    assert len(keys) == 1
    assert (owner(service_certs), mode(service_certs)) == (SERVICE_USER, 0o700)
    assert all((owner(f), mode(f)) == (SERVICE_USER, 0o600) for f in service_certs.iterdir())
    assert not (team.store / f"user-{SERVICE_USER}" / keys[0].name).exists()
    assert owner(hub.team_dir / "certs" / "services" / "dashboard") == "nobody"
    # the idle culler asked the hub's https API for the users (it cannot without the right certificate)
    deadline = time.monotonic() + 30
    while not any("200 GET /hub/api/users" in line and "(idle-culler@" in line for line in hub.log().splitlines()):
        assert time.monotonic() < deadline, f"the idle culler never reached the hub:\n{hub.log()[-6000:]}"
        time.sleep(0.5)


@pytest.mark.parametrize("port_of", ["hub_port", "service_port", "dashboard_port"])
def test_behind_the_proxy_only_clients_with_the_hubs_certificate_get_in(team: Team, port_of: str) -> None:
    port = getattr(team.hub, port_of)
    path = {"hub_port": "/hub/api/", "service_port": f"{API}/health", "dashboard_port": "/services/dashboard/"}
    url = f"https://127.0.0.1:{port}{path[port_of]}"
    # the hub's own certificate gets an answer, so the refusals below are about the client's certificate
    answer = requests.get(url, timeout=10, verify=team.all_cas, cert=team.hubs_own_cert, allow_redirects=False)
    assert answer.status_code in (200, 302)
    assert refused(url.replace("https://", "http://"))
    assert refused(url, verify=team.all_cas)  # no client certificate
    with tempfile.TemporaryDirectory() as folder:
        foreign = self_signed(Path(folder))  # a certificate for 127.0.0.1 that no hub authority signed
        assert refused(url, verify=team.all_cas, cert=tuple(map(str, foreign)))
    assert refused(url, cert=team.hubs_own_cert)  # and the client checks the server's: not a public CA's


def test_the_dashboard_logs_people_in_through_the_hubs_https_api(team: Team) -> None:
    """Its OAuth callback trades the code for a token at the hub's API, with the dashboard's certificate."""
    hub, session = team.hub, team.ada.session
    url = f"{hub.url}/services/dashboard/"
    for _ in range(10):
        answer = session.get(url, allow_redirects=False, timeout=30)
        assert answer.status_code == 302, answer.text[-2000:]
        url = urljoin(url, answer.headers["Location"])
        if "/hub/user-redirect/voila/render/" in url:
            return
    pytest.fail(f"the dashboard never sent ada on to her server:\n{hub.log()[-6000:]}")


# ---- profiles and tiers: the hub asks the API, with its certificate ------------------------------------


def test_the_hub_asks_the_api_for_the_tiers_over_internal_tls(team: Team) -> None:
    status, body = team.refused_spawn
    assert status == 403
    message = json.loads(body)["message"]
    # the API answered the hub: a failed question would say "unreachable" or "refused"
    assert "The server profile 'gpu' (GPU) needs an organization on one of the tiers gpu-large, gpu-small" in message
    assert "your organizations are on: free" in message
    # the spawn page asked too, and offered what the free tier allows
    assert 'value="cpu-small"' in team.spawn_page
    assert 'value="cpu-large"' not in team.spawn_page
    assert f"tiers of {team.ada.name} unknown" not in team.hub.log()


# ---- a user's server and kernel ---------------------------------------------------------------------------


def run(team: Team, *cells: str) -> list[Result]:
    async def go() -> list[Result]:
        kernel = await Kernel(team.server, team.ada.token).start()
        try:
            return [await kernel.run(cell) for cell in cells]
        finally:
            await kernel.close()

    return run_async(go)


def test_the_users_server_answers_through_the_proxy_with_its_certificates_private(team: Team) -> None:
    status = requests.get(f"{team.server}/api/status", headers=team.ada.headers, timeout=30)
    assert status.status_code == 200
    account = system_name(team.ada.name)
    folder = team.hub.team_dir / "certs" / "users" / account
    assert (owner(folder), mode(folder)) == (account, 0o700)
    assert all((owner(f), mode(f)) == (account, 0o600) for f in folder.iterdir())
    assert mode(folder.parent) == 0o711  # accounts pass through, list nothing
    assert owner(folder.parent) == "root"


def test_the_kernel_creates_and_lists_agents_over_internal_https(team: Team) -> None:
    code = (
        "import json, os\n"
        "from orchestrator_ext.client import Client\n"
        "client = Client()\n"
        "agent = client.create_agent('Over internal TLS', 'notebook')\n"
        "names = [a['name'] for a in client.agents()]\n"
        "print(json.dumps({'api': client.api_url, 'source': client.connection.source,\n"
        "    'me': client.me()['username'], 'names': names, 'cert': os.environ['JUPYTERHUB_SSL_CERTFILE']}))"
    )
    result = run(team, code)[0]
    assert result.ok, f"{result.error}\n{''.join(result.traceback)[-3000:]}\n{team.hub.log()[-4000:]}"
    seen = json.loads(result.stdout)
    assert seen["api"] == f"https://127.0.0.1:{team.hub.service_port}{API}"
    assert seen["source"] == "hub"
    assert seen["me"] == team.ada.name
    assert "Over internal TLS" in seen["names"]
    assert os.path.dirname(seen["cert"]) == str(team.hub.team_dir / "certs" / "users" / system_name(team.ada.name))


# ---- orchestrator_ext/hub/tls.py on its own (no hub) --------------------------------------------------------


def fake_store(folder: Path) -> dict[str, str]:
    """What ``Spawner.create_certs`` hands over: a key and certificate, and the CA bundle to trust."""
    cert, key = self_signed(folder)
    bundle = folder / "notebooks-ca_trust.crt"
    bundle.write_text(cert.read_text())
    return {"keyfile": str(key), "certfile": str(cert), "cafile": str(bundle)}


def test_certs_go_into_a_fresh_folder_of_the_accounts_whatever_was_there(tmp_path: Path) -> None:
    paths = fake_store(tmp_path)
    (tmp_path / "extra").mkdir()
    extra_cert, _ = self_signed(tmp_path / "extra")
    sentinel = tmp_path / "sentinel"
    sentinel.write_text("root's")
    folder = tmp_path / "certs" / "services" / "svc"
    folder.mkdir(parents=True)
    (folder / Path(paths["keyfile"]).name).symlink_to(sentinel)  # left there by the account, say
    moved = tls.install_certs(
        paths, folder, "nobody", also_trust=[extra_cert], copies={"orchestrator-ca.crt": extra_cert}
    )
    assert sentinel.read_text() == "root's"
    assert owner(sentinel) == "root"
    assert not Path(paths["keyfile"]).exists()  # moved, not copied
    assert {Path(p).parent for p in moved.values()} == {folder}
    assert (owner(folder), mode(folder)) == ("nobody", 0o700)
    assert all((owner(f), mode(f)) == ("nobody", 0o600) and not f.is_symlink() for f in folder.iterdir())
    assert Path(moved["cafile"]).read_text() == Path(paths["cafile"]).read_text() + extra_cert.read_text()
    assert (folder / "orchestrator-ca.crt").read_text() == extra_cert.read_text()


def test_certs_are_not_put_where_an_account_could_swap_the_folder(tmp_path: Path) -> None:
    paths = fake_store(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    with pytest.raises(PermissionError, match="folder of root's"):
        tls.install_certs(paths, shared / "svc", "nobody")
    assert Path(paths["keyfile"]).exists()


def test_a_services_certs_move_once_even_if_jupyterhub_moves_them_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from types import SimpleNamespace

    from jupyterhub.services.service import _ServiceSpawner

    store = tmp_path / "store"
    (store / "notebooks-ca").mkdir(parents=True)
    paths = fake_store(store)
    Path(store / "notebooks-ca" / "notebooks-ca.crt").write_text("the notebooks CA\n")

    async def create_certs(spawner: object) -> dict[str, str]:
        return dict(paths)

    monkeypatch.setattr(_ServiceSpawner, "create_certs", create_certs)
    monkeypatch.setattr(_ServiceSpawner, "move_certs", _ServiceSpawner.move_certs)
    monkeypatch.setattr(tls, "_SERVICE_CERTS", {})
    folder = tmp_path / "certs" / "services" / "svc"
    tls.give_services_their_certs({"svc": tls.ServiceCerts(folder, trust_servers=True)})
    tls.give_services_their_certs({"svc": tls.ServiceCerts(folder, trust_servers=True)})  # wraps nothing again

    def spawner(name: str, account: str) -> object:
        user = SimpleNamespace(name=account, url="/")
        return _ServiceSpawner(_service_name=name, user=user, internal_certs_location=str(store))

    svc = spawner("svc", "nobody")
    moved = run_async(lambda: svc.create_certs())  # type: ignore[attr-defined]
    assert Path(moved["keyfile"]).parent == folder
    assert Path(moved["cafile"]).read_text().endswith("the notebooks CA\n")  # users' servers get in too
    assert run_async(lambda: svc.move_certs(moved)) == moved  # type: ignore[attr-defined]
    # a service not named, or running as root, keeps the hub's paths (the culler reads them as root)
    paths.update(fake_store(store))
    assert run_async(lambda: spawner("culler", "nobody").create_certs()) == paths  # type: ignore[attr-defined]
    assert run_async(lambda: spawner("svc", "root").create_certs()) == paths  # type: ignore[attr-defined]


def test_start_service_gets_no_server_side_context(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyterhub.app import JupyterHub

    given: list[object] = []

    async def start_service(app: object, name: str, service: object, ssl_context: object = None) -> bool:
        given.append(ssl_context)
        return True

    monkeypatch.setattr(JupyterHub, "start_service", start_service)
    tls.let_start_service_make_its_client_context()
    tls.let_start_service_make_its_client_context()  # a second load of the configuration wraps nothing again
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    for context in (server, client, None):
        assert run_async(lambda context=context: JupyterHub.start_service(object(), "svc", object(), context))
    assert given == [None, client, None]  # only the server-side context is dropped: an upstream fix is untouched


def test_contexts_follow_what_the_hub_gives(tmp_path: Path) -> None:
    assert tls.hub_client_context({"internal_ssl": False}) is None
    assert tls.server_context({}) is None
    paths = fake_store(tmp_path)
    with pytest.raises(ValueError, match="CLIENT_CA"):
        tls.server_context({"JUPYTERHUB_SSL_KEYFILE": paths["keyfile"], "JUPYTERHUB_SSL_CERTFILE": paths["certfile"]})
    served = tls.server_context(
        {
            "JUPYTERHUB_SSL_KEYFILE": paths["keyfile"],
            "JUPYTERHUB_SSL_CERTFILE": paths["certfile"],
            "JUPYTERHUB_SSL_CLIENT_CA": paths["cafile"],
        }
    )
    assert served is not None
    assert served.verify_mode == ssl.CERT_REQUIRED
    settings = {
        "internal_ssl": True,
        "internal_ssl_key": paths["keyfile"],
        "internal_ssl_cert": paths["certfile"],
        "internal_ssl_ca": paths["cafile"],
    }
    client = tls.hub_client_context(settings)
    assert client is not None
    assert (client.verify_mode, client.check_hostname) == (ssl.CERT_REQUIRED, True)


def test_kernels_trust_the_services_ca_beside_the_hubs(tmp_path: Path) -> None:
    from orchestrator_ext.client import _hub_ssl

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (hub_ca, key), (services_ca, _) = self_signed(tmp_path / "a"), self_signed(tmp_path / "b")
    env = {"JUPYTERHUB_SSL_CLIENT_CA": str(hub_ca), "JUPYTERHUB_SSL_CERTFILE": str(hub_ca)}
    env["JUPYTERHUB_SSL_KEYFILE"] = str(key)
    assert _hub_ssl({}) is None
    assert len(_hub_ssl(env).get_ca_certs()) == 1  # type: ignore[union-attr]
    both = _hub_ssl({**env, "ORCHESTRATOR_SSL_CA": str(services_ca)})
    assert both is not None
    assert len(both.get_ca_certs()) == 2
    alone = _hub_ssl({"ORCHESTRATOR_SSL_CA": str(services_ca)})
    assert alone is not None
    assert len(alone.get_ca_certs()) == 1
