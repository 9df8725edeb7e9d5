"""``Admin()``: an organization's members and roles, its tier and limits against what runs now,
its integrations (secrets never shown: only whether one is stored) and its schedules.

Read-only for now: every reading goes through the API with the user's own
client, so a viewer sees what the API shows a viewer and another tenant's
organization does not exist. Changing members, roles and integrations from the
widget is not there yet (the API's own endpoints do it).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import anywidget
import traitlets

from orchestrator_ext.client import ApiError, Client, ClientError

from ._assets import bundle
from .dashboard import READERS


class Admin(anywidget.AnyWidget):
    """``Admin()`` (your first organization) or ``Admin(org_id=..., client=...)``."""

    _esm = bundle("admin")
    _css = bundle("admin", ".css")

    org = traitlets.Dict(help="The organization, its members, tier, usage, integrations, schedules.").tag(sync=True)

    def __init__(self, org_id: str | None = None, *, client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client or Client()
        self.org_id = org_id
        self.on_msg(lambda _w, content, _b: self.reload() if content == {"type": "reload"} else None)
        self.reload()

    def reload(self) -> None:
        try:
            self.org = self._read()
        except ApiError as exc:
            self.org = {"error": f"{exc.title}: {exc.detail}"}
        except ClientError as exc:
            self.org = {"error": str(exc)}

    def _read(self) -> dict[str, Any]:
        client = self.client
        if self.org_id is None:
            found = client.organizations()
            if not found:
                return {"error": "You belong to no organization yet."}
            self.org_id = str(found[0]["id"])
        org_id = quote(self.org_id)
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            org = pool.submit(client.request, "GET", f"organizations/{org_id}")
            members = pool.submit(lambda: list(client.pages(f"organizations/{org_id}/members")))
            integrations = pool.submit(lambda: list(client.pages("integrations", org_id=self.org_id)))
            running = pool.submit(client.executions, org_id=self.org_id, status="running")
            agents = client.agents(org_id=self.org_id)
            workflows = [w for found in pool.map(lambda a: client.workflows(str(a["id"])), agents) for w in found]
            paths = [f"workflows/{quote(str(w['id']))}/schedules" for w in workflows]
            schedules = [s for found in pool.map(lambda p: list(client.pages(p)), paths) for s in found]
            described: dict[str, Any] = org.result()
            names = {str(w["id"]): str(w["name"]) for w in workflows}
            return {
                "id": str(described["id"]),
                "name": described["name"],
                "role": described["role"],
                "personal": described["personal"],
                "tier": described["tier"],
                "limits": described["limits"],
                "usage": {"running": len(running.result()), "agents": len(agents)},
                "members": [_member(m) for m in members.result()],
                "integrations": [_integration(i) for i in integrations.result()],
                "schedules": [_schedule(s, names) for s in schedules],
                "can_manage": described["role"] in ("owner", "admin"),
            }


def _member(member: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": str(member["user_id"]),
        "name": member.get("display_name") or member["username"],
        "username": member["username"],
        "role": member["role"],
        "source": member.get("source", ""),
    }


def _integration(integration: dict[str, Any]) -> dict[str, Any]:
    """Name, kind and whether a secret is stored: the API never returns the secret, nor does this."""
    return {
        "id": str(integration["id"]),
        "name": integration["name"],
        "kind": integration["kind"],
        "has_secret": bool(integration["has_secret"]),
    }


def _schedule(schedule: dict[str, Any], workflows: dict[str, str]) -> dict[str, Any]:
    workflow_id = str(schedule["workflow_id"])
    return {
        "id": str(schedule["id"]),
        "workflow": workflows.get(workflow_id, workflow_id[:8]),
        "cron": schedule["cron"],
        "timezone": schedule.get("timezone") or "UTC",
        "enabled": bool(schedule["enabled"]),
    }
