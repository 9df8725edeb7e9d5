"""A small client of n8n's public API (``/api/v1``, ``X-N8N-API-KEY``) and of its webhooks.

The standard library only: a runner imports it in milliseconds, and the server's
provisioning uses the same calls.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any


class N8nApiError(Exception):
    """n8n answered an error (``status``), or could not be reached (``status`` 0)."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def _decode(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", "replace")
    if "json" in content_type or text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> Reply:
    """One HTTP request with a JSON body; any status comes back as a :class:`Reply` (no raise on 4xx/5xx)."""
    data = None if body is None else json.dumps(body).encode()
    if not url.startswith(("http://", "https://")):  # an integration's base_url as someone typed it
        raise N8nApiError(0, f"n8n's URL must start with http:// or https://, not {url.split('/api/')[0]!r}")
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) URLs of n8n
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310  # nosec B310
            raw, status, got = reply.read(), reply.status, dict(reply.headers.items())
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, dict(exc.headers.items())
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise N8nApiError(0, f"n8n at {url.split('/', 3)[2] if '//' in url else url} is unreachable: {reason}") from exc
    return Reply(status, _decode(raw, got.get("Content-Type", "")), got)


def error_text(body: Any) -> str:
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body)[:500]


class N8nApi:
    """n8n's public API on ``base_url`` with an API key."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        """``/api/v1/<path>``: the JSON answer; :class:`N8nApiError` on a status of 400 or more."""
        url = f"{self.base_url}/api/v1/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        reply = http(method, url, body, {"X-N8N-API-KEY": self.api_key}, self.timeout)
        if reply.status >= 400:
            raise N8nApiError(reply.status, f"n8n {method} {path}: {reply.status} {error_text(reply.body)}", reply.body)
        return reply.body

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"workflows/{workflow_id}"))

    def create_workflow(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", "workflows", body))

    def update_workflow(self, workflow_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("PUT", f"workflows/{workflow_id}", body))

    def activate(self, workflow_id: str) -> dict[str, Any]:
        return dict(self.call("POST", f"workflows/{workflow_id}/activate"))

    def workflows(self, name: str | None = None) -> list[dict[str, Any]]:
        body = self.call("GET", "workflows", query={"name": name, "limit": 250})
        return list(body.get("data") or []) if isinstance(body, dict) else []

    def executions(
        self, workflow_id: str | None, status: str | None = None, *, include_data: bool = False, limit: int = 20
    ) -> list[dict[str, Any]]:
        query = {"workflowId": workflow_id, "status": status, "includeData": str(include_data).lower(), "limit": limit}
        body = self.call("GET", "executions", query=query)
        return list(body.get("data") or []) if isinstance(body, dict) else []

    def execution(self, execution_id: str | int, *, include_data: bool = True) -> dict[str, Any]:
        return dict(self.call("GET", f"executions/{execution_id}", query={"includeData": str(include_data).lower()}))

    def stop(self, execution_id: str | int) -> Any:
        return self.call("POST", f"executions/{execution_id}/stop")
