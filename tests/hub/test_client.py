"""``orchestrator_ext.client``: how it finds the API and a token, the calls it makes, and its errors
(against a scripted server; the team-mode tests use it for real from users' kernels)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from orchestrator_ext.client import ApiError, Client, ClientError, discover
from tests.hub.fake_http import Answer, FakeServer, Seen, fake_server

API = "/orchestrator/api/v1"


@pytest.fixture
def server() -> Any:
    with fake_server() as fake:
        yield fake


def client_for(server: FakeServer) -> Client:
    return Client(environ={"ORCHESTRATOR_URL": f"{server.url}/", "ORCHESTRATOR_TOKEN": "secret"})


# ---- finding the API -------------------------------------------------------------------------


def test_an_explicit_url_and_token_win() -> None:
    found = discover({"ORCHESTRATOR_URL": "http://svc/services/orchestrator/", "ORCHESTRATOR_TOKEN": "t"})
    assert found.api_url == "http://svc/services/orchestrator/orchestrator/api/v1"
    assert (found.token, found.source) == ("t", "environment")
    # an API root given whole is kept; in a hub the server's token is used
    found = discover({"ORCHESTRATOR_URL": "http://svc/x/orchestrator/api/v1", "JUPYTERHUB_API_TOKEN": "hub"})
    assert (found.api_url, found.token) == ("http://svc/x/orchestrator/api/v1", "hub")


def test_a_url_without_a_token_or_not_http_is_refused_clearly() -> None:
    with pytest.raises(ClientError, match="ORCHESTRATOR_TOKEN"):
        discover({"ORCHESTRATOR_URL": "http://svc/"})
    with pytest.raises(ClientError, match="must be http"):
        discover({"ORCHESTRATOR_URL": "file:///etc/passwd", "ORCHESTRATOR_TOKEN": "t"})
    with pytest.raises(ClientError, match="must be http"):
        discover({"JUPYTERHUB_API_URL": "file:///etc", "JUPYTERHUB_API_TOKEN": "t"})


def test_in_a_hub_the_service_is_found_from_the_hubs_description(server: FakeServer) -> None:
    server.on(
        "GET",
        "/hub/api/services/orchestrator",
        Answer(body={"name": "orchestrator", "url": "http://127.0.0.1:8890", "prefix": "/services/orchestrator/"}),
    )
    env = {"JUPYTERHUB_API_URL": f"{server.url}/hub/api", "JUPYTERHUB_API_TOKEN": "server-token"}
    found = discover(env)
    assert found.api_url == "http://127.0.0.1:8890/services/orchestrator/orchestrator/api/v1"
    assert (found.token, found.source) == ("server-token", "hub")
    assert server.seen[0].headers["Authorization"] == "token server-token"


def test_a_hub_that_hides_the_service_says_which_scope_is_missing(server: FakeServer) -> None:
    server.on("GET", "/hub/api/services/orchestrator", Answer(403, {"status": 403, "message": "no"}))
    env = {"JUPYTERHUB_API_URL": f"{server.url}/hub/api", "JUPYTERHUB_API_TOKEN": "t"}
    with pytest.raises(ClientError, match=r"read:services!service=orchestrator"):
        discover(env)
    server.on("GET", "/hub/api/services/orchestrator", Answer(body={"name": "orchestrator", "url": None}))
    with pytest.raises(ClientError, match="ORCHESTRATOR_URL"):
        discover(env)


def test_an_unreachable_hub_is_a_client_error() -> None:
    env = {"JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api", "JUPYTERHUB_API_TOKEN": "t"}
    with pytest.raises(ClientError, match="Cannot reach"):
        discover(env, timeout=2)


def test_outside_a_hub_the_server_that_started_the_kernel_is_used(tmp_path: Path) -> None:
    info = {"url": "http://127.0.0.1:8888/", "token": "personal", "pid": os.getppid(), "base_url": "/"}
    (tmp_path / f"jpserver-{os.getppid()}.json").write_text(json.dumps(info))
    found = discover({"JUPYTER_RUNTIME_DIR": str(tmp_path)})
    assert (found.api_url, found.token, found.source) == (
        "http://127.0.0.1:8888/orchestrator/api/v1",
        "personal",
        "server",
    )


def test_no_server_at_all_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="ORCHESTRATOR_URL and ORCHESTRATOR_TOKEN"):
        discover({"JUPYTER_RUNTIME_DIR": str(tmp_path)})


def test_url_and_token_go_together() -> None:
    with pytest.raises(ClientError, match="both"):
        Client(url="http://svc/")
    assert Client(url="http://svc/", token="t").api_url == "http://svc/orchestrator/api/v1"


# ---- calls -------------------------------------------------------------------------------------


def test_calls_send_the_token_and_json(server: FakeServer) -> None:
    server.on("POST", f"{API}/agents", lambda seen: Answer(201, {"id": "a1", **seen.body}))
    client = client_for(server)
    agent = client.create_agent("Report", "notebook", tags=["x"])
    assert agent == {"id": "a1", "name": "Report", "framework": "notebook", "tags": ["x"]}
    request = server.seen[-1]
    assert request.headers["Authorization"] == "token secret"
    assert request.headers["Content-Type"] == "application/json"
    assert "Client(" in repr(client)
    assert "via environment" in repr(client)


def test_lists_follow_the_cursors_up_to_the_limit(server: FakeServer) -> None:
    def page(seen: Seen) -> Answer:
        start = int((seen.query.get("cursor") or ["0"])[0])
        size = int(seen.query["limit"][0])
        items = [{"id": str(n), "status": "succeeded"} for n in range(start, min(start + size, 250))]
        following = start + size if start + size < 250 else None
        return Answer(body={"items": items, "next_cursor": str(following) if following else None})

    server.on("GET", f"{API}/executions", page)
    client = client_for(server)
    assert len(client.executions()) == 250
    assert [run["id"] for run in client.executions(limit=3)] == ["0", "1", "2"]
    assert server.seen[-1].query["limit"] == ["3"]
    assert len(client.executions(limit=120, status="succeeded")) == 120
    assert server.seen[-1].query["status"] == ["succeeded"]


def test_execute_sends_an_idempotency_key_and_wait_polls_until_finished(server: FakeServer) -> None:
    server.on("POST", f"{API}/workflows/w1/execute", lambda seen: Answer(202, {"id": "e1", "status": "queued"}))
    states = iter(["queued", "running", "succeeded"])
    server.on("GET", f"{API}/executions/e1", lambda seen: Answer(body={"id": "e1", "status": next(states)}))
    client = client_for(server)
    run = client.execute("w1", {"week": 3}, version=2, idempotency_key="k-1")
    assert run["status"] == "queued"
    sent = server.seen[-1]
    assert sent.body == {"inputs": {"week": 3}, "version": 2}
    assert sent.headers["Idempotency-Key"] == "k-1"
    assert client.wait("e1", every=0.01)["status"] == "succeeded"
    server.on("GET", f"{API}/executions/e2", Answer(body={"id": "e2", "status": "running"}))
    with pytest.raises(TimeoutError, match="still running"):
        client.wait("e2", timeout=0.05, every=0.01)


def test_wait_returns_a_run_waiting_for_approval_or_waits_for_the_states_asked(server: FakeServer) -> None:
    states = iter(["queued", "running", "waiting", "waiting", "queued", "running", "succeeded"])
    server.on("GET", f"{API}/executions/e3", lambda seen: Answer(body={"id": "e3", "status": next(states)}))
    client = client_for(server)
    # a run paused for a human's answer does not move on by itself: wait() hands it back
    assert client.wait("e3", timeout=5, every=0.01)["status"] == "waiting"
    # with the states to wait for, it polls through the pause (someone else resumes the run)
    assert client.wait("e3", until={"succeeded", "failed"}, timeout=5, every=0.01)["status"] == "succeeded"
    assert len([seen for seen in server.seen if seen.path.endswith("/e3")]) == 7


def test_problem_details_become_a_clear_error(server: FakeServer) -> None:
    problem = {
        "type": "about:blank",
        "title": "Validation failed",
        "status": 422,
        "detail": "The request body is invalid.",
        "errors": [{"field": "framework", "message": "Input should be 'langgraph'", "type": "enum"}],
        "correlation_id": "abc-1",
    }
    server.on("POST", f"{API}/agents", Answer(422, problem, "application/problem+json"))
    with pytest.raises(ApiError) as caught:
        client_for(server).create_agent("x", "nope")
    error = caught.value
    assert (error.status, error.title, error.correlation_id) == (422, "Validation failed", "abc-1")
    assert str(error) == (
        "422 Validation failed: The request body is invalid. (framework: Input should be 'langgraph') "
        "[correlation id abc-1]"
    )


def test_an_error_that_is_not_json_keeps_its_text(server: FakeServer) -> None:
    server.on("GET", f"{API}/users/me", Answer(502, b"Bad gateway from the proxy", "text/plain"))
    with pytest.raises(ApiError) as caught:
        client_for(server).me()
    assert caught.value.status == 502
    assert "Bad gateway from the proxy" in str(caught.value)


def test_every_resource_method_hits_its_route(server: FakeServer) -> None:
    for method, path in [
        ("GET", "/users/me"),
        ("GET", "/agents/a1"),
        ("PUT", "/agents/a1"),
        ("DELETE", "/agents/a1"),
        ("GET", "/workflows/w1"),
        ("POST", "/agents/a1/workflows"),
        ("PUT", "/workflows/w1"),
        ("GET", "/executions/e1"),
        ("POST", "/executions/e1/cancel"),
    ]:
        server.on(method, f"{API}{path}", Answer(body={"ok": path}))
    for listed in ("/organizations", "/agents", "/agents/a1/workflows"):
        server.on("GET", f"{API}{listed}", Answer(body={"items": [{"id": listed}], "next_cursor": None}))
    server.on("DELETE", f"{API}/agents/a1", Answer(204, None))
    client = client_for(server)
    assert client.me() == {"ok": "/users/me"}
    assert client.organizations() == [{"id": "/organizations"}]
    assert client.agents(framework="notebook") == [{"id": "/agents"}]
    assert client.agent("a1") == {"ok": "/agents/a1"}
    assert client.update_agent("a1", name="n") == {"ok": "/agents/a1"}
    assert client.delete_agent("a1") is None
    assert client.workflows("a1") == [{"id": "/agents/a1/workflows"}]
    assert client.workflow("w1") == {"ok": "/workflows/w1"}
    assert client.create_workflow("a1", "wf", {"nodes": []}, comment="c") == {"ok": "/agents/a1/workflows"}
    assert server.seen[-1].body == {"name": "wf", "spec": {"nodes": []}, "comment": "c"}
    assert client.update_workflow("w1", {"nodes": []}) == {"ok": "/workflows/w1"}
    assert client.execution("e1") == {"ok": "/executions/e1"}
    assert client.cancel("e1") == {"ok": "/executions/e1/cancel"}


def test_an_unreachable_api_is_a_client_error() -> None:
    client = Client(url="http://127.0.0.1:9/", token="t", timeout=2)
    with pytest.raises(ClientError, match="Cannot reach the Orchestrator API"):
        client.me()
