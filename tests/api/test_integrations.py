"""``/integrations``: per-kind config, write-only encrypted secrets, roles and tenant isolation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from orchestrator_ext.security.crypto import KeyRing
from tests.conftest import TEST_KEYS, Api

SECRET = "sk-test-" + "s3cr3t" * 6
OPENAI = {"kind": "openai-compatible", "config": {"base_url": "https://api.example.org/v1", "model": "gpt-x"}}
N8N = {"kind": "n8n", "config": {"base_url": "http://n8n.local:5678"}}

AdminSql = Callable[..., list[tuple[Any, ...]]]


def body(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**base, "name": f"int-{uuid.uuid4().hex[:8]}", **fields}


async def make(api: Api, user: str = "alice", **fields: Any) -> dict[str, Any]:
    reply = await api("POST", "integrations", user=user, body=body(OPENAI, secret=SECRET, **fields))
    assert reply.status == 201, reply.text
    return reply.json  # type: ignore[no-any-return]


async def test_create_and_read_never_show_the_secret(api: Api) -> None:
    reply = await api("POST", "integrations", body=body(OPENAI, secret=SECRET))
    assert reply.status == 201, reply.text
    made = reply.json
    assert made["kind"] == "openai-compatible"
    assert made["config"] == OPENAI["config"]
    assert made["has_secret"] is True
    assert made["secret_key_id"] == "test1"
    assert reply.headers["Location"].endswith(f"/orchestrator/api/v1/integrations/{made['id']}")
    one = await api("GET", "integrations", made["id"])
    listed = await api("GET", "integrations")
    assert one.json == made
    assert made["id"] in [i["id"] for i in listed.json["items"]]
    for text in (reply.text, one.text, listed.text):
        assert SECRET not in text
        assert '"secret"' not in text


async def test_secret_is_encrypted_at_rest_and_bound_to_its_row(api: Api, admin_sql: AdminSql) -> None:
    made = await make(api)
    [(sealed,)] = admin_sql("SELECT secret_encrypted FROM integrations WHERE id = %s", (made["id"],))
    assert sealed.startswith("v1.test1.")
    assert SECRET not in sealed
    ring = KeyRing.parse(TEST_KEYS)
    assert ring.decrypt(sealed, f"integrations.secret:{made['id']}") == SECRET
    audit = admin_sql("SELECT details::text FROM audit_events WHERE resource_id = %s", (made["id"],))
    assert audit
    assert all(SECRET not in details for (details,) in audit)


async def test_local_model_server_needs_no_secret(api: Api, admin_sql: AdminSql) -> None:
    config = {"base_url": "http://localhost:11434/v1", "model": "llama3.1"}
    reply = await api("POST", "integrations", body=body(OPENAI, config=config))
    assert reply.status == 201, reply.text
    assert reply.json["has_secret"] is False
    assert reply.json["secret_key_id"] is None
    assert admin_sql("SELECT secret_encrypted FROM integrations WHERE id = %s", (reply.json["id"],)) == [(None,)]


async def test_n8n_and_tool_kinds(api: Api) -> None:
    n8n = await api("POST", "integrations", body=body(N8N, secret="n8n-key"))
    assert n8n.status == 201, n8n.text
    assert n8n.json["config"] == {"base_url": "http://n8n.local:5678"}
    tool_config = {"description": "Search the web", "endpoint": "https://search.local", "retries": 3, "x": None}
    tool = await api("POST", "integrations", body={"kind": "tool", "name": "search", "config": tool_config})
    assert tool.status == 201, tool.text
    assert tool.json["config"] == tool_config
    assert tool.json["has_secret"] is False


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({**OPENAI, "config": {"base_url": "https://x.org/v1"}}, "config.model"),
        ({**OPENAI, "config": {"base_url": "https://x.org/v1", "model": "  "}}, "config.model"),
        ({**OPENAI, "config": {"base_url": "ftp://x.org", "model": "m"}}, "config.base_url"),
        ({**OPENAI, "config": {"base_url": "not a url", "model": "m"}}, "config.base_url"),
        ({**OPENAI, "config": {"base_url": "http://x.org:99999", "model": "m"}}, "config.base_url"),
        ({**OPENAI, "config": {"base_url": "https://u:p@x.org", "model": "m"}}, "config.base_url"),
        ({**OPENAI, "config": {"base_url": "https://x.org", "model": "m", "api_key": "k"}}, "config.api_key"),
        ({"kind": "n8n", "config": {}, "secret": "k"}, "config.base_url"),
        ({"kind": "n8n", "config": {"base_url": "https://n8n.org"}}, "secret"),
        ({"kind": "n8n", "config": {"base_url": "https://n8n.org"}, "secret": ""}, "secret"),
        ({"kind": "tool", "config": ["not", "an", "object"]}, "config"),
        ({"kind": "tool", "config": {"description": 5}}, "config.description"),
        ({"kind": "zapier", "config": {}}, "kind"),
        ({**OPENAI, "name": "  "}, "name"),
        ({**OPENAI, "org_id": "nope"}, "org_id"),
        ({**OPENAI, "colour": "red"}, "colour"),
    ],
)
async def test_create_rejects_bad_fields(api: Api, fields: dict[str, Any], field: str) -> None:
    reply = await api("POST", "integrations", body={"name": "bad", **fields})
    assert reply.status == 422, reply.text
    assert field in [e["field"] for e in reply.json["errors"]], reply.json["errors"]


async def test_invalid_request_does_not_echo_the_secret(api: Api) -> None:
    reply = await api("POST", "integrations", body={"kind": "n8n", "name": "x", "config": {}, "secret": SECRET})
    assert reply.status == 422
    assert SECRET not in reply.text


async def test_duplicate_name_conflicts_per_org(api: Api) -> None:
    await make(api, user="dup", name="Shared")
    again = await api("POST", "integrations", user="dup", body={**OPENAI, "name": "shared"})
    assert again.status == 409, again.text
    assert [e["field"] for e in again.json["errors"]] == ["name"]
    elsewhere = await api("POST", "integrations", user="dup-other", body={**OPENAI, "name": "Shared"})
    assert elsewhere.status == 201


async def test_list_filters_and_pages(api: Api) -> None:
    made = [await make(api, user="lister") for _ in range(3)]
    tool = await api("POST", "integrations", user="lister", body={"kind": "tool", "name": "t", "config": {}})
    first = await api("GET", "integrations", user="lister", params={"limit": 2})
    second = await api("GET", "integrations", user="lister", params={"limit": 2, "cursor": first.json["next_cursor"]})
    seen = [i["id"] for page in (first, second) for i in page.json["items"]]
    assert seen == [tool.json["id"], *(m["id"] for m in reversed(made))]
    assert second.json["next_cursor"] is None
    tools = await api("GET", "integrations", user="lister", params={"kind": "tool"})
    assert [i["id"] for i in tools.json["items"]] == [tool.json["id"]]
    bad = await api("GET", "integrations", user="lister", params={"kind": "zapier"})
    assert bad.status == 422
    assert [e["field"] for e in bad.json["errors"]] == ["kind"]


async def test_delete_removes_row_and_secret(api: Api, admin_sql: AdminSql) -> None:
    made = await make(api, user="deleter")
    reply = await api("DELETE", "integrations", made["id"], user="deleter")
    assert reply.status == 204
    assert (await api("GET", "integrations", made["id"], user="deleter")).status == 404
    assert (await api("DELETE", "integrations", made["id"], user="deleter")).status == 404
    assert admin_sql("SELECT count(*) FROM integrations WHERE id = %s", (made["id"],)) == [(0,)]
    # the name is free again
    assert (await api("POST", "integrations", user="deleter", body={**OPENAI, "name": made["name"]})).status == 201


async def test_other_tenant_sees_404(api: Api) -> None:
    made = await make(api, user="tenant1")
    for method in ("GET", "DELETE"):
        reply = await api(method, "integrations", made["id"], user="intruder")
        assert reply.status == 404, (method, reply.text)
    listed = await api("GET", "integrations", user="intruder")
    assert listed.json["items"] == []
    by_org = await api("GET", "integrations", user="intruder", params={"org_id": made["org_id"]})
    assert by_org.status == 404
    into = await api("POST", "integrations", user="intruder", body=body(OPENAI, org_id=made["org_id"]))
    assert into.status == 404
    assert (await api("GET", "integrations", made["id"], user="tenant1")).status == 200


async def test_roles(api: Api, create_org: Any, add_member: Any) -> None:
    org = await create_org(user="boss")
    for user, role in (("ada", "admin"), ("dev", "developer"), ("vic", "viewer")):
        await add_member("boss", org["id"], user, role)
    for user in ("dev", "vic"):
        refused = await api("POST", "integrations", user=user, body=body(OPENAI, org_id=org["id"]))
        assert refused.status == 403, (user, refused.text)
    created = await api("POST", "integrations", user="ada", body=body(OPENAI, org_id=org["id"], secret=SECRET))
    assert created.status == 201, created.text
    integration = created.json
    for user in ("dev", "vic", "boss"):
        listed = await api("GET", "integrations", user=user, params={"org_id": org["id"]})
        assert [i["id"] for i in listed.json["items"]] == [integration["id"]], user
        assert SECRET not in listed.text
        assert (await api("GET", "integrations", integration["id"], user=user)).status == 200
        if user != "boss":
            assert (await api("DELETE", "integrations", integration["id"], user=user)).status == 403
    assert (await api("DELETE", "integrations", integration["id"], user="boss")).status == 204


async def test_anonymous_and_bad_ids(api: Api) -> None:
    assert (await api("GET", "integrations", user=None)).status == 403
    assert (await api("POST", "integrations", user=None, body=body(OPENAI))).status == 403
    assert (await api("GET", "integrations", "not-a-uuid")).status == 404
    assert (await api("DELETE", "integrations", str(uuid.uuid4()))).status == 404


async def test_secret_is_write_only_in_the_contract(api: Api) -> None:
    document = json.loads((await api("GET", "openapi.json", user=None)).text)
    schemas = document["components"]["schemas"]
    # one body per kind (a oneOf told apart by kind): the secret is write-only in each
    kinds = schemas["CreateIntegration"]["discriminator"]["mapping"]
    assert set(kinds) == {"openai-compatible", "n8n", "tool"}
    for ref in kinds.values():
        secret = schemas[ref.rsplit("/", 1)[-1]]["properties"]["secret"]
        assert (secret.get("anyOf") or [secret])[0]["writeOnly"] is True, ref
    assert "secret" not in schemas["Integration"]["properties"]


async def test_a_model_declares_what_it_reads(api: Api) -> None:
    """``config.modalities``: what runs may hand the model besides text (the Agno runtime refuses the rest)."""
    config = {**OPENAI["config"], "modalities": ["text", "image"]}
    reply = await api("POST", "integrations", body=body(OPENAI, config=config))
    assert reply.status == 201, reply.text
    assert reply.json["config"]["modalities"] == ["text", "image"]
    plain = await api("POST", "integrations", body=body(OPENAI))
    assert "modalities" not in plain.json["config"]  # unset stays unset: runs read it as text only
    for wrong, where in (([], "config.modalities"), (["smell"], "config.modalities.0"), ("image", "config.modalities")):
        refused = await api("POST", "integrations", body=body(OPENAI, config={**OPENAI["config"], "modalities": wrong}))
        assert refused.status == 422, refused.text
        assert where in {e["field"] for e in refused.json["errors"]}
