"""``/agents/{id}/workflows``, ``/workflows/{id}``, versions, and ``/schemas/workflow-spec.json``."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import psycopg
import pytest

from tests.conftest import GRAPH_SPEC, NOTEBOOK_SPEC, Api

NOTEBOOK = NOTEBOOK_SPEC["notebook"]["content"]


def who(prefix: str = "u") -> str:
    """A user of one test only (the module shares its database)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def write_notebook(root: Path, name: str, parameters: str) -> dict[str, Any]:
    notebook = copy.deepcopy(NOTEBOOK)
    notebook["cells"][0]["source"] = parameters
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(json.dumps(notebook), encoding="utf-8")
    return notebook


def spec_with(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(GRAPH_SPEC)
    spec.update(changes)
    return spec


async def test_create_and_get_graph_workflow(api: Api, create_agent: Any) -> None:
    user = who()
    agent = await create_agent(user=user)
    body = {"name": "Greeter", "spec": GRAPH_SPEC, "comment": "first"}
    reply = await api("POST", "agents", agent["id"], "workflows", user=user, body=body)
    assert reply.status == 201, reply.text
    workflow = reply.json
    assert workflow["version"] == 1
    assert workflow["agent_id"] == agent["id"]
    assert workflow["org_id"] == agent["org_id"]
    assert workflow["parameters"] == []
    assert [n["id"] for n in workflow["spec"]["nodes"]] == ["start", "llm", "end"]
    assert workflow["spec"]["schema_version"] == 1
    assert reply.headers["Etag"] == '"1"'
    assert reply.headers["Location"].endswith(f"/orchestrator/api/v1/workflows/{workflow['id']}")
    got = await api("GET", "workflows", workflow["id"], user=user)
    assert got.status == 200
    assert got.json == workflow
    assert got.headers["Etag"] == '"1"'


async def test_notebook_content_parameters(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    agent = await create_agent(user=user, framework="notebook")
    workflow = await create_workflow(user, agent["id"], spec=NOTEBOOK_SPEC)
    assert workflow["parameters"] == [
        {"name": "x", "default": 1, "type": "int"},
        {"name": "name", "default": "world", "type": "str"},
    ]
    assert workflow["spec"]["notebook"]["content"]["cells"][1]["source"] == "print(x, name)"


async def test_notebook_path_is_snapshotted(
    api: Api, create_agent: Any, create_workflow: Any, jp_root_dir: Path, admin_sql: Any
) -> None:
    user = who()
    original = write_notebook(jp_root_dir, "flows/report.ipynb", "rows: int = 10\nlabel = f'{rows}'\n")
    agent = await create_agent(user=user, framework="notebook")
    workflow = await create_workflow(user, agent["id"], spec={"notebook": {"path": "flows/report.ipynb"}})
    assert workflow["parameters"] == [
        {"name": "rows", "default": 10, "type": "int"},
        {"name": "label", "default": None, "type": "any"},
    ]
    # the file changes; version 1 keeps the notebook it was saved with
    write_notebook(jp_root_dir, "flows/report.ipynb", "limit = 5.5\n")
    assert (await api("GET", "workflows", workflow["id"], user=user)).json["parameters"][0]["name"] == "rows"
    [(snapshot,)] = admin_sql(
        "SELECT notebook_snapshot FROM workflow_versions WHERE workflow_id = %s AND version = 1", (workflow["id"],)
    )
    assert snapshot == original
    # a new version snapshots the file as it is now
    body = {"spec": {"notebook": {"path": "flows/report.ipynb"}}}
    updated = await api("PUT", "workflows", workflow["id"], user=user, body=body)
    assert updated.status == 200, updated.text
    assert updated.json["parameters"] == [{"name": "limit", "default": 5.5, "type": "float"}]
    first = await api("GET", "workflows", workflow["id"], "versions", "1", user=user)
    assert first.json["parameters"][0]["name"] == "rows"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("missing.ipynb", "no notebook"),
        ("../outside.ipynb", ".."),
        ("/etc/passwd.ipynb", "relative"),
        ("notes.txt", ".ipynb"),
        ("escape.ipynb", "outside"),
        ("broken.ipynb", "not a JSON notebook"),
        ("invalid.ipynb", "invalid"),
        ("nul.ipynb", "NUL"),
    ],
)
async def test_notebook_path_errors(
    api: Api, create_agent: Any, jp_root_dir: Path, tmp_path_factory: Any, path: str, message: str
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.ipynb"
    outside.write_text(json.dumps(NOTEBOOK), encoding="utf-8")
    (jp_root_dir / "escape.ipynb").symlink_to(outside)
    (jp_root_dir / "broken.ipynb").write_text("{not json", encoding="utf-8")
    (jp_root_dir / "invalid.ipynb").write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")
    write_notebook(jp_root_dir, "nul.ipynb", "x = 1\n# \x00\n")
    user = who()
    agent = await create_agent(user=user, framework="notebook")
    body = {"name": "nb", "spec": {"notebook": {"path": path}}}
    reply = await api("POST", "agents", agent["id"], "workflows", user=user, body=body)
    assert reply.status == 422, reply.text
    [error] = reply.json["errors"]
    assert error["field"] == "spec.notebook.path"
    assert message in error["message"]


def _bad_notebook() -> dict[str, Any]:
    spec = copy.deepcopy(NOTEBOOK_SPEC)
    del spec["notebook"]["content"]["cells"][0]["outputs"]
    return spec


def _bad_parameters() -> dict[str, Any]:
    spec = copy.deepcopy(NOTEBOOK_SPEC)
    spec["notebook"]["content"]["cells"][0]["source"] = "x = = 1"
    return spec


@pytest.mark.parametrize(
    ("framework", "spec", "field"),
    [
        ("langgraph", spec_with(nodes=[*GRAPH_SPEC["nodes"], {"id": "llm", "type": "tool"}]), "spec.nodes.3.id"),
        ("langgraph", spec_with(edges=[*GRAPH_SPEC["edges"], {"source": "end", "target": "x"}]), "spec.edges.2.target"),
        ("crewai", spec_with(nodes=[{"id": "a", "type": "robot"}]), "spec.nodes.0.type"),
        ("crewai", spec_with(nodes=[{"id": "a b", "type": "task"}], edges=[]), "spec.nodes.0.id"),
        ("agno", {"nodes": [], "edges": []}, "spec.nodes"),
        ("agno", spec_with(colour="red"), "spec.colour"),
        ("n8n", spec_with(schema_version=2), "spec.schema_version"),
        ("langgraph", NOTEBOOK_SPEC, "spec.notebook"),
        ("notebook", GRAPH_SPEC, "spec.notebook"),
        ("notebook", {"notebook": {"path": "a.ipynb", "content": NOTEBOOK}}, "spec.notebook"),
        ("notebook", _bad_notebook(), "spec.notebook.content"),
        ("notebook", _bad_parameters(), "spec.notebook.content"),
        ("notebook", {"notebook": {"path": "a.ipynb"}, "nodes": GRAPH_SPEC["nodes"]}, "spec.nodes"),
    ],
)
async def test_spec_errors_name_the_field(
    api: Api, create_agent: Any, framework: str, spec: dict[str, Any], field: str
) -> None:
    user = who()
    agent = await create_agent(user=user, framework=framework)
    reply = await api("POST", "agents", agent["id"], "workflows", user=user, body={"name": "w", "spec": spec})
    assert reply.status == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert field in [e["field"] for e in reply.json["errors"]], reply.json["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"spec": GRAPH_SPEC}, "name"),
        ({"name": "w"}, "spec"),
        ({"name": "w", "spec": [1]}, "spec"),
        ({"name": "w\x00", "spec": GRAPH_SPEC}, "name"),
        ({"name": "w", "spec": GRAPH_SPEC, "extra": 1}, "extra"),
    ],
)
async def test_create_rejects_bad_bodies(api: Api, create_agent: Any, body: dict[str, Any], field: str) -> None:
    user = who()
    agent = await create_agent(user=user)
    reply = await api("POST", "agents", agent["id"], "workflows", user=user, raw_body=json.dumps(body))
    assert reply.status == 422, reply.text
    assert field in [e["field"] for e in reply.json["errors"]]


async def test_versions_are_numbered_and_immutable(
    api: Api, create_agent: Any, create_workflow: Any, admin_sql: Any
) -> None:
    user = who()
    agent = await create_agent(user=user)
    workflow = await create_workflow(user, agent["id"])
    for number in (2, 3):
        spec = spec_with(options={"recursion_limit": 10 + number})
        reply = await api("PUT", "workflows", workflow["id"], user=user, body={"spec": spec, "comment": f"v{number}"})
        assert reply.status == 200, reply.text
        assert reply.json["version"] == number
        assert reply.headers["Etag"] == f'"{number}"'
    renamed = await api("PUT", "workflows", workflow["id"], user=user, body={"spec": GRAPH_SPEC, "name": "Renamed"})
    assert (renamed.json["version"], renamed.json["name"]) == (4, "Renamed")

    listed = await api("GET", "workflows", workflow["id"], "versions", user=user)
    assert [v["version"] for v in listed.json["items"]] == [4, 3, 2, 1]
    assert listed.json["items"][1]["comment"] == "v3"
    first = await api("GET", "workflows", workflow["id"], "versions", user=user, params={"limit": 3})
    rest = await api(
        "GET",
        "workflows",
        workflow["id"],
        "versions",
        user=user,
        params={"limit": 3, "cursor": first.json["next_cursor"]},
    )
    assert [v["version"] for v in first.json["items"] + rest.json["items"]] == [4, 3, 2, 1]
    assert rest.json["next_cursor"] is None
    bad_cursor = await api("GET", "workflows", workflow["id"], "versions", user=user, params={"cursor": "??"})
    assert bad_cursor.status == 422

    v2 = await api("GET", "workflows", workflow["id"], "versions", "2", user=user)
    assert v2.status == 200
    assert v2.json["spec"]["options"] == {"recursion_limit": 12}
    assert v2.json["comment"] == "v2"
    for missing in ("9", "abc", "0", "-1"):
        assert (await api("GET", "workflows", workflow["id"], "versions", missing, user=user)).status == 404

    with pytest.raises(psycopg.Error, match="immutable"):
        admin_sql("UPDATE workflow_versions SET comment = 'x' WHERE workflow_id = %s", (workflow["id"],))
    with pytest.raises(psycopg.Error, match="immutable"):
        admin_sql("DELETE FROM workflow_versions WHERE workflow_id = %s", (workflow["id"],))
    rows = admin_sql("SELECT version FROM workflow_versions WHERE workflow_id = %s ORDER BY 1", (workflow["id"],))
    assert [r[0] for r in rows] == [1, 2, 3, 4]


async def test_if_match_refuses_stale_versions(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    agent = await create_agent(user=user)
    workflow = await create_workflow(user, agent["id"])
    body = {"spec": GRAPH_SPEC}

    async def put(if_match: str) -> Any:
        return await api("PUT", "workflows", workflow["id"], user=user, body=body, headers={"If-Match": if_match})

    assert (await put('"1"')).json["version"] == 2
    stale = await put('"1"')
    assert stale.status == 409, stale.text
    assert stale.json["current_version"] == 2
    assert "version 2" in stale.json["detail"]
    assert (await put('W/"2"')).json["version"] == 3
    assert (await put("3")).json["version"] == 4
    assert (await put('"1", "4"')).json["version"] == 5
    assert (await put("*")).json["version"] == 6
    malformed = await put("latest")
    assert malformed.status == 422
    assert [e["field"] for e in malformed.json["errors"]] == ["If-Match"]


async def test_concurrent_updates_get_distinct_versions(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    agent = await create_agent(user=user)
    workflow = await create_workflow(user, agent["id"])
    replies = await asyncio.gather(
        *(api("PUT", "workflows", workflow["id"], user=user, body={"spec": GRAPH_SPEC}) for _ in range(4))
    )
    assert sorted(r.json["version"] for r in replies) == [2, 3, 4, 5]
    guarded = await asyncio.gather(
        *(
            api("PUT", "workflows", workflow["id"], user=user, body={"spec": GRAPH_SPEC}, headers={"If-Match": '"5"'})
            for _ in range(3)
        )
    )
    assert sorted(r.status for r in guarded) == [200, 409, 409]


async def test_list_workflows_pages(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    agent = await create_agent(user=user)
    other = await create_agent(user=user)
    made = [await create_workflow(user, agent["id"], name=f"w{i}") for i in range(3)]
    await create_workflow(user, other["id"])
    first = await api("GET", "agents", agent["id"], "workflows", user=user, params={"limit": 2})
    assert first.status == 200
    second = await api(
        "GET", "agents", agent["id"], "workflows", user=user, params={"limit": 2, "cursor": first.json["next_cursor"]}
    )
    items = first.json["items"] + second.json["items"]
    assert [w["id"] for w in items] == [w["id"] for w in reversed(made)]
    assert items[0] == made[2]
    assert second.json["next_cursor"] is None


async def test_deleted_agent_hides_its_workflows(api: Api, create_agent: Any, create_workflow: Any) -> None:
    user = who()
    agent = await create_agent(user=user)
    workflow = await create_workflow(user, agent["id"])
    assert (await api("DELETE", "agents", agent["id"], user=user)).status == 204
    assert (await api("GET", "workflows", workflow["id"], user=user)).status == 404
    assert (await api("GET", "workflows", workflow["id"], "versions", user=user)).status == 404
    assert (await api("PUT", "workflows", workflow["id"], user=user, body={"spec": GRAPH_SPEC})).status == 404
    assert (await api("GET", "agents", agent["id"], "workflows", user=user)).status == 404
    body = {"name": "late", "spec": GRAPH_SPEC}
    assert (await api("POST", "agents", agent["id"], "workflows", user=user, body=body)).status == 404


async def test_other_tenant_sees_404(api: Api, create_agent: Any, create_workflow: Any) -> None:
    owner, intruder = who("owner"), who("intruder")
    agent = await create_agent(user=owner)
    workflow = await create_workflow(owner, agent["id"])
    wid = workflow["id"]
    calls: list[tuple[str, tuple[str, ...], Any]] = [
        ("GET", ("workflows", wid), None),
        ("PUT", ("workflows", wid), {"spec": GRAPH_SPEC}),
        ("GET", ("workflows", wid, "versions"), None),
        ("GET", ("workflows", wid, "versions", "1"), None),
        ("GET", ("agents", agent["id"], "workflows"), None),
        ("POST", ("agents", agent["id"], "workflows"), {"name": "x", "spec": GRAPH_SPEC}),
    ]
    for method, path, body in calls:
        reply = await api(method, *path, user=intruder, body=body)
        assert reply.status == 404, (method, path, reply.text)
    assert (await api("GET", "workflows", "not-a-uuid", user=owner)).status == 404


async def test_viewer_reads_but_cannot_write(
    api: Api, create_org: Any, add_member: Any, create_agent: Any, create_workflow: Any
) -> None:
    owner, viewer = who("owner"), who("viewer")
    org = await create_org(user=owner)
    await add_member(owner, org["id"], viewer, "viewer")
    agent = await create_agent(user=owner, org_id=org["id"])
    workflow = await create_workflow(owner, agent["id"])
    assert (await api("GET", "workflows", workflow["id"], user=viewer)).status == 200
    assert (await api("GET", "agents", agent["id"], "workflows", user=viewer)).status == 200
    put = await api("PUT", "workflows", workflow["id"], user=viewer, body={"spec": GRAPH_SPEC})
    assert put.status == 403, put.text
    post = await api("POST", "agents", agent["id"], "workflows", user=viewer, body={"name": "v", "spec": GRAPH_SPEC})
    assert post.status == 403, post.text


async def test_workflow_spec_json_schema(api: Api) -> None:
    reply = await api("GET", "schemas", "workflow-spec.json")
    assert reply.status == 200, reply.text
    assert reply.headers["Content-Type"].startswith("application/schema+json")
    schema = reply.json
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]
    assert {"nodes", "edges", "options", "notebook", "schema_version"} <= set(schema["properties"])
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(GRAPH_SPEC)
    validator.validate(NOTEBOOK_SPEC)
    both = {"notebook": {"path": "a.ipynb", "content": NOTEBOOK}}
    assert not validator.is_valid(both)
    assert not validator.is_valid(spec_with(nodes=[{"id": "a", "type": "robot"}]))
    assert (await api("GET", "schemas", "workflow-spec.json", user=None)).status == 403
