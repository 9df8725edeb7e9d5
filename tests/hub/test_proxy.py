"""The hub's proxy in team mode: its API where ORCHESTRATOR_HUB_PROXY_API_PORT says (so a second hub on
the machine can start), and no token of a request's query string in the hub's log."""

from __future__ import annotations

import secrets

import pytest
import requests

from orchestrator_ext.hub.proxy import scrub
from tests.hub.conftest import needs_root
from tests.hub.team_hub import TeamHub


@needs_root
@pytest.mark.timeout(300)
def test_a_token_in_a_refused_request_never_reaches_the_hub_log(team_hub: TeamHub) -> None:
    hub = team_hub
    secret = secrets.token_hex(16)
    missing = f"no-such-{secrets.token_hex(3)}"
    for path, expected in ((f"/hub/api/{missing}", 404), (f"/services/orchestrator/{missing}", 403)):
        answer = requests.get(f"{hub.url}{path}?token={secret}", timeout=30, verify=hub.ssl_verify)
        assert answer.status_code in (expected, 302, 401, 404), answer.status_code
    log = hub.log()
    assert secret not in log
    # the proxy did log the refusals, with the query's names and without its values
    assert f"/hub/api/{missing}?token=[secret]" in log


@needs_root
@pytest.mark.timeout(300)
def test_the_proxy_api_listens_where_the_setting_says(team_hub: TeamHub) -> None:
    try:
        answer = requests.get(f"http://127.0.0.1:{team_hub.proxy_api_port}/api/routes", timeout=10)
    except requests.ConnectionError:
        pytest.fail("nothing listens on ORCHESTRATOR_HUB_PROXY_API_PORT")
    assert answer.status_code == 403  # the proxy's API, which wants the hub's token


def test_query_values_are_scrubbed_names_kept() -> None:
    line = "404 GET /user/ada/api?token=abc&next=%2Fhub%2F#top (127.0.0.1) 2.1ms"
    assert scrub(line) == "404 GET /user/ada/api?token=[secret]&next=[secret]#top (127.0.0.1) 2.1ms"
    assert scrub("GET /hub/home (127.0.0.1)") == "GET /hub/home (127.0.0.1)"
