"""The admin widget, read-only, against a real server: the organization's tier and limits with the
runs going now, its members and roles, its integrations with no secret in the widget's state, its
schedules; and in Voila with no serious or critical accessibility violation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from orchestrator_widgets import Admin
from playwright.sync_api import expect

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer
from tests.widgets.browser import chromium_page, open_in_voila
from tests.widgets.sample_specs import three_steps
from tests.widgets.test_browser import serious_violations

pytestmark = pytest.mark.timeout(300)


def test_admin_shows_members_limits_integrations_and_schedules(
    server: PersonalServer, client: Client, write_notebook: Callable[[str, str], str]
) -> None:
    secret = f"sk-{uuid.uuid4().hex}"
    name = f"model-{uuid.uuid4().hex[:6]}"
    client.request(
        "POST",
        "integrations",
        body={
            "kind": "openai-compatible",
            "name": name,
            "config": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
            "secret": secret,
        },
    )
    agent = client.create_agent(f"Admin {uuid.uuid4().hex[:6]}", "langgraph")
    workflow = client.create_workflow(agent["id"], "Weekly", three_steps())
    client.request("POST", f"workflows/{workflow['id']}/schedules", body={"cron": "0 8 * * 1"})
    admin = Admin(client=client)
    org = admin.org
    assert org["role"] == "owner"
    assert org["can_manage"] is True
    assert org["limits"]["max_concurrent_executions"] >= 1
    assert org["usage"]["agents"] >= 1
    assert [m["role"] for m in org["members"]] == ["owner"]
    [integration] = [i for i in org["integrations"] if i["name"] == name]
    assert (integration["kind"], integration["has_secret"]) == ("openai-compatible", True)
    assert secret not in json.dumps(org)
    assert any(s["workflow"] == "Weekly" and s["cron"] == "0 8 * * 1" for s in org["schedules"])
    admin.close()

    notebook = write_notebook("admin.ipynb", "from orchestrator_widgets import Admin\nAdmin()")
    with chromium_page() as page:
        root = open_in_voila(page, server, notebook)
        expect(root.locator(".ow-members .ow-member-role")).to_have_text(["owner"])
        expect(root.locator(".ow-integrations")).to_contain_text("stored (write-only)")
        expect(root).not_to_contain_text(secret)
        assert serious_violations(page) == []
