"""The admin widget against a real server: the organization's tier and limits with the runs going
now, its members and roles, its integrations with no secret in the widget's state, its schedules;
an owner invites, changes a role (in Voila, through the role picker), removes a member, adds and
removes an integration, each through the API (which refuses to demote the last owner); no serious
or critical accessibility violation."""

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
        expect(root.locator(".ow-members .ow-member-role select")).to_have_value("owner")  # an owner may change it
        expect(root.locator(".ow-integrations")).to_contain_text("stored (write-only)")
        expect(root).not_to_contain_text(secret)
        assert serious_violations(page) == []


def colleague(server: PersonalServer) -> str:
    """A second user of the server, as one who signed in once (the personal server has only its owner)."""
    import psycopg

    name = f"colleague-{uuid.uuid4().hex[:6]}"
    passwords = json.loads((server.data_dir / "postgres-passwords.json").read_text())  # the server's own file
    reach = {"host": str(server.pgdata), "user": "postgres", "password": passwords.get("postgres", "")}
    with psycopg.connect(**reach, dbname="postgres", autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")]
    for dbname in names:
        with psycopg.connect(**reach, dbname=dbname, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('public.users')").fetchone() == (None,):
                continue
            conn.execute("INSERT INTO users (id, subject) VALUES (gen_random_uuid(), %s)", (name,))
            return name
    raise AssertionError(f"no users table in {names}")


def test_admin_invites_changes_a_role_and_removes_through_the_api(
    server: PersonalServer, client: Client, write_notebook: Callable[[str, str], str]
) -> None:
    org = client.request("POST", "organizations", body={"name": f"Team {uuid.uuid4().hex[:6]}"})
    name = colleague(server)
    admin = Admin(str(org["id"]), client=client)
    assert admin.invite(name, "viewer"), admin.status
    [member] = [m for m in admin.org["members"] if m["username"] == name]
    assert member["role"] == "viewer"
    [me] = [m for m in admin.org["members"] if m["role"] == "owner"]
    assert not admin.set_role(me["user_id"], "viewer")  # refused by the API: the last owner stays
    assert "owner" in admin.status["message"].lower()
    secret = f"sk-{uuid.uuid4().hex}"
    assert admin.add_integration("team-model", "http://127.0.0.1:9/v1", "m", secret), admin.status
    assert secret not in json.dumps(admin.org)
    [integration] = admin.org["integrations"]
    assert integration["has_secret"]
    admin.close()

    notebook = write_notebook("admin-write.ipynb", f"from orchestrator_widgets import Admin\nAdmin({str(org['id'])!r})")
    with chromium_page() as page:
        root = open_in_voila(page, server, notebook)
        root.get_by_label(f"Role of {name}").select_option("developer")
        expect(root.locator(".ow-admin-status")).to_have_text("Role changed to developer.")
        assert serious_violations(page) == []
    members = list(client.pages(f"organizations/{org['id']}/members"))
    assert [m["role"] for m in members if m["username"] == name] == ["developer"]

    removed = Admin(str(org["id"]), client=client)
    assert removed.remove(str(member["user_id"])), removed.status
    assert name not in [m["username"] for m in removed.org["members"]]
    assert removed.remove_integration(integration["id"])
    assert removed.org["integrations"] == []
    # hand the team to another owner and leave it: the other tests' Dashboard() and Admin() open the
    # caller's first organization, which must stay the personal one
    assert removed.invite(colleague(server), "owner"), removed.status
    removed.close()
    client.request("DELETE", f"organizations/{org['id']}/members/{me['user_id']}")
    assert str(org["id"]) not in [str(o["id"]) for o in client.organizations()]
