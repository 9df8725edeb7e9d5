"""The admin widget against a real server: the organization's tier and its usage against the tier's
limits (runs, the runs going now, tokens, GPU-seconds: in the page too), its members and roles, its
integrations with no secret in the widget's state, its schedules; an owner invites, changes a role
(in Voila, through the role picker), removes a member, adds and removes an integration, each through
the API (which refuses to demote the last owner); a viewer's panel is read-only, and a change it tries
through the widget's Python API shows the API's 403; a platform admin sees every organization, and one
they are not a member of read-only; no serious or critical accessibility violation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from orchestrator_widgets import Admin
from playwright.sync_api import expect

from orchestrator_ext.client import Client
from tests.personal_server import PersonalServer
from tests.widgets.browser import chromium_page, open_in_voila, screenshot
from tests.widgets.sample_specs import three_steps
from tests.widgets.test_browser import serious_violations
from tests.widgets.test_models import wait_for

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
    usage = client.request("GET", f"organizations/{org['id']}/usage")
    for resource in ("runs", "concurrency", "tokens", "gpu_seconds"):  # the API's figures, as it gave them
        assert org["usage"][resource]["limit"] == usage[resource]["limit"]
    assert org["usage"]["month"] == usage["month"]
    assert org["platform_admin"] is True  # a personal server's owner: every organization is listed
    assert org["id"] in [o["id"] for o in org["organizations"]]
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
        expect(root.locator(f'.ow-every tr[data-org="{org["id"]}"]')).to_contain_text(org["name"])
        assert serious_violations(page) == []


def test_admin_shows_why_an_n8n_instance_was_refused(
    server: PersonalServer, client: Client, write_notebook: Callable[[str, str], str]
) -> None:
    """A server that may not run an organization's n8n writes why in its n8n integration (instances.mark, as the
    server does): the organization's panel shows it, not only GET /integrations."""
    from sqlalchemy import create_engine

    from orchestrator_ext.db.embedded import superuser_url
    from orchestrator_ext.db.engine import sqlalchemy_url
    from orchestrator_ext.n8n import instances
    from orchestrator_ext.n8n.database import name_for

    org = client.request("POST", "organizations", body={"name": f"n8n team {uuid.uuid4().hex[:6]}"})
    engine = create_engine(sqlalchemy_url(superuser_url(server.data_dir)))
    try:
        instances.mark(engine, uuid.UUID(org["id"]), name_for(org["id"]), instances.NOT_ROOT)
    finally:
        engine.dispose()
    admin = Admin(org["id"], client=client)
    try:
        [n8n] = [i for i in admin.org["integrations"] if i["kind"] == "n8n"]
        assert n8n["state"] == f"refused: {instances.NOT_ROOT}"

        notebook = write_notebook("admin-n8n.ipynb", f"from orchestrator_widgets import Admin\nAdmin({org['id']!r})")
        with chromium_page() as page:
            root = open_in_voila(page, server, notebook)
            expect(root.locator(".ow-integration-refused")).to_contain_text(
                "runs n8n only for its owner's organization"
            )
    finally:
        # hand the team to another owner and leave it: the tests after it see the caller's organizations as
        # a new user has them
        assert admin.invite(colleague(server), "owner"), admin.status
        admin.close()
        client.request("DELETE", f"organizations/{org['id']}/members/{client.me()['id']}")
    assert str(org["id"]) not in [str(o["id"]) for o in client.organizations()]


def app_database(server: PersonalServer) -> dict[str, Any]:
    """How to reach, as its superuser, the database of the server that holds its ``users`` table."""
    import psycopg

    passwords = json.loads((server.data_dir / "postgres-passwords.json").read_text())  # the server's own file
    reach = {"host": str(server.pgdata), "user": "postgres", "password": passwords.get("postgres", "")}
    with psycopg.connect(**reach, dbname="postgres", autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")]
    for dbname in names:
        with psycopg.connect(**reach, dbname=dbname, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('public.users')").fetchone() != (None,):
                return {**reach, "dbname": dbname}
    raise AssertionError(f"no users table in {names}")


def colleague(server: PersonalServer) -> str:
    """A second user of the server, as one who signed in once (the personal server has only its owner)."""
    import psycopg

    name = f"colleague-{uuid.uuid4().hex[:6]}"
    with psycopg.connect(**app_database(server), autocommit=True) as conn:
        conn.execute("INSERT INTO users (id, subject) VALUES (gen_random_uuid(), %s)", (name,))
    return name


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
    # hand the team to another owner and leave it: the tests after it see the caller's organizations as
    # a new user has them
    assert removed.invite(colleague(server), "owner"), removed.status
    removed.close()
    client.request("DELETE", f"organizations/{org['id']}/members/{me['user_id']}")
    assert str(org["id"]) not in [str(o["id"]) for o in client.organizations()]
    # no longer a member, still a platform admin: its tier, limits and usage, read-only, nothing of its members'
    outside = Admin(str(org["id"]), client=client)
    seen = outside.org
    assert (seen["name"], seen["role"], seen["can_manage"]) == (org["name"], "platform admin (not a member)", False)
    assert seen["members"] == seen["integrations"] == seen["schedules"] == []
    assert seen["usage"]["runs"]["used"] == 0
    assert "not a member" in seen["outside"]
    outside.close()


def recorded_tokens(server: PersonalServer, execution_id: str, prompt: int, completion: int) -> None:
    """What a framework run leaves in its outputs after calling a model (the widgets' test server has
    no model): its token counts in ``outputs.usage``, written there as a worker would."""
    import psycopg
    from psycopg.types.json import Jsonb

    passwords = json.loads((server.data_dir / "postgres-passwords.json").read_text())
    reach = {"host": str(server.pgdata), "user": "postgres", "password": passwords.get("postgres", "")}
    usage = {"model_calls": 1, "prompt_tokens": prompt, "completion_tokens": completion}
    with psycopg.connect(**reach, dbname="postgres", autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate")]
    for dbname in names:
        with psycopg.connect(**reach, dbname=dbname, autocommit=True) as conn:
            if conn.execute("SELECT to_regclass('public.workflow_executions')").fetchone() == (None,):
                continue
            sql = (
                "UPDATE workflow_executions SET outputs = coalesce(outputs, '{}') "
                "|| jsonb_build_object('usage', %s::jsonb) WHERE id = %s"
            )
            if conn.execute(sql, (Jsonb(usage), execution_id)).rowcount == 1:
                return
    raise AssertionError(f"no execution {execution_id}")


def test_a_viewers_panel_is_read_only_and_shows_the_usage(
    server: PersonalServer, client: Client, write_notebook: Callable[[str, str], str]
) -> None:
    org = client.request("POST", "organizations", body={"name": f"Viewed {uuid.uuid4().hex[:6]}", "tier": "team"})
    agent = client.create_agent(f"Counted {uuid.uuid4().hex[:6]}", "langgraph", org_id=str(org["id"]))
    workflow = client.create_workflow(agent["id"], "Counted", three_steps())
    run = client.execute(workflow["id"], {})
    client.cancel(run["id"])  # a finished run of the month, whatever the workers' load
    wait_for(lambda: client.execution(run["id"])["status"] in ("cancelled", "succeeded"), 120)
    recorded_tokens(server, run["id"], 1200, 34)
    # the server's user hands the organization to a colleague and stays as a viewer
    admin = Admin(str(org["id"]), client=client)
    assert admin.invite(colleague(server), "owner"), admin.status
    me = next(m for m in admin.org["members"] if m["user_id"] == client.me()["id"])
    assert admin.set_role(me["user_id"], "viewer"), admin.status
    assert admin.org["can_manage"] is False
    assert not admin.invite(colleague(server), "viewer")  # the API refuses, the panel says so
    assert admin.status["message"].startswith("Forbidden: Your role 'viewer'")
    admin.close()

    source = (
        "from orchestrator_widgets import Admin\n"
        f"admin = Admin({str(org['id'])!r})\n"
        f"admin.invite({colleague(server)!r}, 'developer')\n"
        "admin"
    )
    notebook = write_notebook("admin-viewer.ipynb", source)
    with chromium_page() as page:
        root = open_in_voila(page, server, notebook)
        expect(root.locator(".ow-admin-role")).to_have_text("Your role: viewer")
        expect(root.locator(".ow-admin-status")).to_contain_text(
            "Forbidden: Your role 'viewer' in this organization does not allow 'members:manage'."
        )
        expect(root.locator(".ow-members tbody tr")).to_have_count(2)
        for control in ("select", ".ow-invite", ".ow-add-integration", "button:has-text('Remove')", "input"):
            expect(root.locator(control)).to_have_count(0)
        expect(root.locator('tr[data-usage="runs"] .ow-used')).to_have_text("1")
        expect(root.locator('tr[data-usage="tokens"] .ow-used')).to_have_text("1,234")
        expect(root.locator('tr[data-usage="tokens"] .ow-limit')).to_contain_text("20,000,000")
        expect(root.locator('tr[data-usage="gpu_seconds"] .ow-used')).to_have_text("0 s")
        expect(root.locator('tr[data-usage="concurrency"] .ow-used')).to_have_text("0")
        screenshot(page, "admin-viewer")
        assert serious_violations(page) == []
    client.request("DELETE", f"organizations/{org['id']}/members/{me['user_id']}")  # the viewer leaves
    assert str(org["id"]) not in [str(o["id"]) for o in client.organizations()]
