"""TLS: the team-mode hub started with ORCHESTRATOR_HUB_SSL_CERT/KEY (JupyterHub's ``ssl_cert`` and
``ssl_key``) answers over https only, with the certificate given, in front of the hub and the
Orchestrator service; people log in and reach the API through it. The certificate is self-signed,
made here with ``cryptography``."""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.hub.conftest import needs_root
from tests.hub.team_hub import API, TeamHub, start_hub, stop_hub
from tests.hub.userenv import ensure_npm_proxy

pytestmark = [needs_root, pytest.mark.timeout(600)]  # the first test builds the users' environment


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "orchestrator-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "hub.crt", folder / "hub.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture(scope="module")
def tls_hub(team_env: Path) -> Iterator[TeamHub]:
    proxy = ensure_npm_proxy()
    if proxy is None:
        pytest.skip("TLS needs the npm configurable-http-proxy, and npm is not installed")
    with tempfile.TemporaryDirectory(prefix="orch-tls-") as folder:
        cert, key = self_signed(Path(folder))
        hub = start_hub(
            team_env,
            extra_env={
                "ORCHESTRATOR_HUB_SSL_CERT": str(cert),
                "ORCHESTRATOR_HUB_SSL_KEY": str(key),
                "ORCHESTRATOR_HUB_PROXY_COMMAND": str(proxy),
            },
            scheme="https",
            ssl_verify=str(cert),
            service_user="orch-test-tls",  # the folder's other hub runs meanwhile
        )
        try:
            yield hub
        finally:
            stop_hub(hub)


def test_the_hub_answers_over_https_with_its_certificate(tls_hub: TeamHub) -> None:
    hub = tls_hub
    assert hub.url.startswith("https://")
    assert hub.get("/hub/api").status_code == 200
    assert hub.get(f"{API}/health").json()["status"] == "ok"
    # the certificate is the one configured: an unverified client sees it, a default one refuses it
    served = ssl.get_server_certificate(("127.0.0.1", int(hub.url.rsplit(":", 1)[1])))
    assert served.strip() == Path(str(hub.ssl_verify)).read_text().strip()
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{hub.url}/hub/api", timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):  # no plain http on the public port
        requests.get(hub.url.replace("https://", "http://") + "/hub/api", timeout=10)


def test_people_log_in_and_reach_the_api_over_https(tls_hub: TeamHub) -> None:
    hub = tls_hub
    person = hub.person(f"ivy-{secrets.token_hex(2)}")
    session_cookie = [c for c in person.session.cookies if c.name.startswith("jupyterhub-session")]
    assert session_cookie
    assert all(c.secure for c in session_cookie)
    me = hub.get(f"{API}/users/me", person.token)
    assert me.status_code == 200
    assert me.json()["username"] == person.name
