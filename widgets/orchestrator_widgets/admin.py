"""``Admin()``: an organization's members and roles, its tier and its usage against the tier's limits
(the month's runs, tokens and GPU-seconds, the runs going now), its integrations (secrets never
shown: only whether one is stored) and its schedules.

Every reading and every change goes through the API with the user's own
client, so the API's permission checks decide: owners and admins invite,
change roles, remove members, add integrations (the secret is sent once and
never shown again) and remove them; a developer or viewer sees it all
read-only, and a change the API refuses says why (the last owner stays, only
owners touch owners). Another tenant's organization does not exist.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import anywidget
import traitlets

from orchestrator_ext.client import ApiError, Client, ClientError

from ._assets import bundle
from .choosing import organization_id
from .dashboard import READERS

#: the organizations a platform admin's panel lists (the first ones, oldest first)
EVERY = 500


class Admin(anywidget.AnyWidget):
    """``Admin()`` or ``Admin(org_id=..., client=...)``.

    ``org_id`` is an organization's id or the name of one of yours. Without it the panel opens your
    personal organization, else one you own, else the one you joined first (:mod:`.choosing`), as
    ``Dashboard()`` does.

    A platform admin also sees every organization (name, tier, members, agents), and opens any of them:
    one they are not a member of shows its tier, limits and usage, read-only."""

    _esm = bundle("admin")
    _css = bundle("admin", ".css")

    org = traitlets.Dict(help="The organization, its members, tier, usage, integrations, schedules.").tag(sync=True)
    status = traitlets.Dict({"kind": "", "message": ""}, help="What the last change did.").tag(sync=True)

    def __init__(self, org_id: str | None = None, *, client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client or Client()
        self.org_id = org_id
        self.on_msg(self._on_message)
        self.reload()

    # ---- changes (the API checks each against the caller's role) -------------------------

    def invite(self, username: str, role: str) -> bool:
        """Add an existing user (one who has signed in once) with ``role``."""
        body = {"username": username.strip(), "role": role}
        return self._change("POST", "members", body, f"{username.strip()} is now {role}.")

    def set_role(self, user_id: str, role: str) -> bool:
        return self._change("PATCH", f"members/{quote(user_id)}", {"role": role}, f"Role changed to {role}.")

    def remove(self, user_id: str) -> bool:
        return self._change("DELETE", f"members/{quote(user_id)}", None, "Member removed.")

    def add_integration(self, name: str, base_url: str, model: str, secret: str | None = None) -> bool:
        """An OpenAI-compatible model server; the secret is sent once, then only 'stored' is ever shown."""
        body: dict[str, Any] = {
            "kind": "openai-compatible",
            "name": name.strip(),
            "org_id": self.org_id,
            "config": {"base_url": base_url.strip(), "model": model.strip()},
        }
        if secret:
            body["secret"] = secret
        return self._change("POST", "/integrations", body, f"Integration {name.strip()} added.")

    def remove_integration(self, integration_id: str) -> bool:
        return self._change("DELETE", f"/integrations/{quote(integration_id)}", None, "Integration removed.")

    def _change(self, method: str, path: str, body: Any, done: str) -> bool:
        """One change through the API (paths without '/' are the organization's); reload, say what happened."""
        if self.org_id is None:
            self.status = {"kind": "error", "message": "No organization."}
            return False
        full = path.lstrip("/") if path.startswith("/") else f"organizations/{quote(self.org_id)}/{path}"
        try:
            self.client.request(method, full, body=body)
        except ApiError as exc:
            fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in exc.errors)
            self.status = {
                "kind": "error",
                "message": f"{exc.title}: {exc.detail}" + (f" ({fields})" if fields else ""),
            }
            return False
        except ClientError as exc:
            self.status = {"kind": "error", "message": str(exc)}
            return False
        self.status = {"kind": "success", "message": done}
        self.reload()
        return True

    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")

        def text(key: str) -> str:
            return str(content.get(key) or "")

        if kind == "reload":
            self.reload()
        elif kind == "invite":
            self.invite(text("username"), text("role"))
        elif kind == "set_role":
            self.set_role(text("user_id"), text("role"))
        elif kind == "remove":
            self.remove(text("user_id"))
        elif kind == "add_integration":
            self.add_integration(text("name"), text("base_url"), text("model"), text("secret"))
        elif kind == "remove_integration":
            self.remove_integration(text("integration_id"))

    def reload(self) -> None:
        try:
            self.org = self._read()
        except ApiError as exc:
            self.org = {"error": f"{exc.title}: {exc.detail}"}
        except ClientError as exc:
            self.org = {"error": str(exc)}

    def _read(self) -> dict[str, Any]:
        client = self.client
        me = client.me()
        platform_admin = bool(me.get("platform_admin"))
        chosen = organization_id(client, self.org_id, me)
        if chosen is None:
            return {"error": "You belong to no organization yet."}
        self.org_id = chosen
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            every = pool.submit(self._every, platform_admin)
            try:
                read = self._as_member(pool, quote(self.org_id))
            except ApiError as exc:  # not a member: a platform admin still sees its tier and usage
                if exc.status != 404 or not platform_admin:
                    raise
                read = self._as_platform_admin(every.result())
            rows = [_listed(o) for o in every.result()]
        return {**read, "platform_admin": platform_admin, "organizations": rows}

    def _as_member(self, pool: ThreadPoolExecutor, org_id: str) -> dict[str, Any]:
        """Everything a member sees (what their role lets them read), read side by side."""
        client = self.client
        org = pool.submit(client.request, "GET", f"organizations/{org_id}")
        members = pool.submit(lambda: list(client.pages(f"organizations/{org_id}/members")))
        integrations = pool.submit(lambda: list(client.pages("integrations", org_id=self.org_id)))
        running = pool.submit(client.executions, org_id=self.org_id, status="running")
        usage = pool.submit(self._usage, org_id)
        described: dict[str, Any] = org.result()  # 404 first: not a member
        agents = client.agents(org_id=self.org_id)
        workflows = [w for found in pool.map(lambda a: client.workflows(str(a["id"])), agents) for w in found]
        paths = [f"workflows/{quote(str(w['id']))}/schedules" for w in workflows]
        schedules = [s for found in pool.map(lambda p: list(client.pages(p)), paths) for s in found]
        names = {str(w["id"]): str(w["name"]) for w in workflows}
        return {
            **_described(described),
            "role": described["role"],
            "usage": {"running": len(running.result()), "agents": len(agents), **usage.result()},
            "members": [_member(m) for m in members.result()],
            "integrations": [_integration(i) for i in integrations.result()],
            "schedules": [_schedule(s, names) for s in schedules],
            "can_manage": described["role"] in ("owner", "admin"),
        }

    def _as_platform_admin(self, every: list[dict[str, Any]]) -> dict[str, Any]:
        """An organization a platform admin is not a member of: its tier, limits and usage (``/admin`` and
        ``.../usage`` answer them); its members, integrations and schedules are its members' own."""
        described = next((o for o in every if str(o["id"]) == self.org_id), None)
        if described is None:
            return {"error": f"No organization with id '{self.org_id}'."}
        usage = self._usage(quote(str(self.org_id)))
        # the runs going now, as the usage API counts them against the concurrency limit (its list is members')
        running = usage.get("concurrency", {}).get("used", 0)
        return {
            **_described(described),
            "role": "platform admin (not a member)",
            "usage": {"running": running, "agents": described["live_agents"], **usage},
            "members": [],
            "integrations": [],
            "schedules": [],
            "can_manage": False,
            "outside": "You are not a member: its members, integrations and schedules are theirs. "
            "Its tier and limits change under /admin (or jupyter orchestrator set-tier).",
        }

    def _every(self, platform_admin: bool) -> list[dict[str, Any]]:
        """Every organization (``GET /admin/organizations``, at most ``EVERY``), for a platform admin."""
        if not platform_admin:
            return []
        return list(self.client.pages("admin/organizations", limit=EVERY))

    def _usage(self, org_id: str) -> dict[str, Any]:
        """The month's runs, tokens and GPU-seconds against the tier (``GET .../usage``); owners, admins
        and platform admins read them, anyone else is told why not (the API's 403) instead."""
        try:
            found: dict[str, Any] = self.client.request("GET", f"organizations/{org_id}/usage")
        except ApiError as exc:
            return {"hidden": f"{exc.title}: {exc.detail}"}
        return {
            "month": found["month"],
            "measured": found["gpu_seconds_measured"],
            **{key: found[key] for key in ("runs", "concurrency", "tokens", "gpu_seconds")},
        }


def _described(org: dict[str, Any]) -> dict[str, Any]:
    return {k: org[k] for k in ("name", "personal", "tier", "limits")} | {"id": str(org["id"])}


def _listed(org: dict[str, Any]) -> dict[str, Any]:
    """A row of a platform admin's list of every organization."""
    return {
        "id": str(org["id"]),
        "name": org["name"],
        "personal": bool(org["personal"]),
        "tier": org["tier"]["title"],
        "members": int(org["members"]),
        "agents": int(org["live_agents"]),
        "concurrency": int(org["limits"]["max_concurrent_executions"]),
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
    """Name, kind, whether a secret is stored (the API never returns the secret, nor does this), and its state."""
    return {
        "id": str(integration["id"]),
        "name": integration["name"],
        "kind": integration["kind"],
        "has_secret": bool(integration["has_secret"]),
        "state": _state(integration),
    }


def _state(integration: dict[str, Any]) -> str:
    """What the platform says of an n8n instance it runs for the organization: why it refused one (the server may
    not run it, or every instance is busy: docs/frameworks/n8n.md, *Isolation*), or that it is starting; empty
    for every other integration."""
    config = integration.get("config") or {}
    if integration["kind"] != "n8n" or not isinstance(config, dict):
        return ""
    if config.get("refused"):
        return f"refused: {config['refused']}"
    if config.get("managed"):
        return "run by the platform" if integration["has_secret"] else "starting"
    return ""


def _schedule(schedule: dict[str, Any], workflows: dict[str, str]) -> dict[str, Any]:
    workflow_id = str(schedule["workflow_id"])
    return {
        "id": str(schedule["id"]),
        "workflow": workflows.get(workflow_id, workflow_id[:8]),
        "cron": schedule["cron"],
        "timezone": schedule.get("timezone") or "UTC",
        "enabled": bool(schedule["enabled"]),
    }
