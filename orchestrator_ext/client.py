"""A small client of the Orchestrator API for code in notebooks, kernels and scripts.

::

    from orchestrator_ext.client import Client

    orchestrator = Client()                     # finds the API and a token by itself
    agent = orchestrator.create_agent("Weekly report", "notebook")
    for run in orchestrator.executions(status="failed", limit=10):
        print(run["id"], run["status"])

Where it finds the API (the first that applies):

1. ``ORCHESTRATOR_URL`` (the server's or service's base URL, e.g.
   ``http://proxy-public/services/orchestrator/``) with ``ORCHESTRATOR_TOKEN``
   (or, in a hub, ``JUPYTERHUB_API_TOKEN``).
2. Inside a JupyterHub user's server or kernel: the hub's own description of
   the service (``GET $JUPYTERHUB_API_URL/services/orchestrator``), with the
   server's token ``JUPYTERHUB_API_TOKEN``: the user's own identity, no URL or
   token typed by hand. ``ORCHESTRATOR_SERVICE`` names another service.
   With the hub's internal TLS, the server's certificate (``JUPYTERHUB_SSL_*``)
   and the services' CA (``ORCHESTRATOR_SSL_CA``) are used.
3. Personal mode: the running ``jupyter orchestrator`` server that started
   this kernel (or the only one running), with its token.

Errors from the API raise :class:`ApiError` carrying the problem details
(status, title, detail, the fields at fault and the correlation id).
Only the standard library is used, so any kernel can import it.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

API_PATH = "orchestrator/api/v1"
DEFAULT_SERVICE = "orchestrator"
#: the statuses an execution ends in
FINISHED = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
#: the statuses in which an execution stops by itself: ended, or waiting for a human's answer (resume)
SETTLED = FINISHED | {"waiting"}
_PAGE = 100


class ClientError(Exception):
    """The client could not find or reach the API."""


@dataclass
class ApiError(ClientError):
    """An error answer of the API (``application/problem+json``)."""

    status: int
    title: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    correlation_id: str | None = None

    def __str__(self) -> str:
        text = f"{self.status} {self.title}: {self.detail}"
        if self.errors:
            text += " (" + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors) + ")"
        if self.correlation_id:
            text += f" [correlation id {self.correlation_id}]"
        return text

    @classmethod
    def from_response(cls, status: int, body: bytes, reason: str = "") -> ApiError:
        try:
            problem = json.loads(body)
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            text = body.decode("utf-8", "replace").strip()[:500]
            return cls(status, reason or "Error", text or "The server gave no detail.")
        return cls(
            status=int(problem.get("status") or status),
            title=str(problem.get("title") or reason or "Error"),
            detail=str(problem.get("detail") or problem.get("message") or ""),
            errors=list(problem.get("errors") or []),
            correlation_id=problem.get("correlation_id"),
        )


@dataclass(frozen=True)
class Connection:
    """Where the API is (its root, ending in ``orchestrator/api/v1``) and the token to send."""

    api_url: str
    token: str
    #: how it was found: "environment", "hub" or "server"
    source: str
    ssl_context: ssl.SSLContext | None = None


def _hub_ssl(environ: Mapping[str, str]) -> ssl.SSLContext | None:
    """The hub's internal TLS, as JupyterHub hands it to users' servers (and so to their kernels).

    ``ORCHESTRATOR_SSL_CA`` adds a CA to trust: the hub's own bundle for servers does not include the
    one that signs the services' certificates, which the team mode's spawner puts beside it.
    """
    ca, extra = environ.get("JUPYTERHUB_SSL_CLIENT_CA"), environ.get("ORCHESTRATOR_SSL_CA")
    if not ca and not extra:
        return None
    context = ssl.create_default_context(cafile=ca or extra)
    if ca and extra:
        context.load_verify_locations(cafile=extra)
    cert, key = environ.get("JUPYTERHUB_SSL_CERTFILE"), environ.get("JUPYTERHUB_SSL_KEYFILE")
    if cert and key:
        context.load_cert_chain(cert, key)
    return context


def _api_root(base_url: str) -> str:
    if not base_url.startswith(("http://", "https://")):
        raise ClientError(f"The Orchestrator's URL must be http(s): {base_url[:200]!r}")
    base = base_url.rstrip("/")
    return base if base.endswith(API_PATH) else f"{base}/{API_PATH}"


def _get_json(url: str, token: str, timeout: float, context: ssl.SSLContext | None) -> Any:
    if not url.startswith(("http://", "https://")):
        raise ClientError(f"The hub's URL must be http(s): {url[:200]!r}")
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})  # noqa: S310
    try:
        # http(s) only, checked above
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310  # nosec B310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ApiError.from_response(exc.code, exc.read(), exc.reason) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ClientError(f"Cannot reach {url}: {exc}") from exc


def _from_hub(environ: Mapping[str, str], timeout: float) -> Connection:
    hub_api, token = environ["JUPYTERHUB_API_URL"], environ["JUPYTERHUB_API_TOKEN"]
    service = environ.get("ORCHESTRATOR_SERVICE") or DEFAULT_SERVICE
    context = _hub_ssl(environ)
    try:
        model = _get_json(f"{hub_api.rstrip('/')}/services/{quote(service)}", token, timeout, context)
    except ApiError as exc:
        raise ClientError(
            f"The hub does not show this server the service '{service}' ({exc.status}): the hub's "
            f"'server' role needs read:services!service={service} (see docs/deploy/team.md)."
        ) from exc
    if not model.get("url") or not model.get("prefix"):
        raise ClientError(f"The hub's service '{service}' has no URL; set ORCHESTRATOR_URL.")
    base = str(model["url"]).rstrip("/") + "/" + str(model["prefix"]).lstrip("/")
    return Connection(_api_root(base), token, "hub", context)


def running_servers(runtime_dir: str | None = None) -> list[dict[str, Any]]:
    """The live servers' ``jpserver-<pid>.json`` files, as jupyter-server's ``list_running_servers``
    reads them. Not that function: importing ``jupyter_server.serverapp`` costs a kernel seconds (its
    event schemas load jsonschema's RFC 3987 grammar: 1.5 s idle, 7 s on a busy machine), which every
    widget's first paint waited for."""
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    if not os.path.isdir(runtime_dir):
        return []
    found = []
    for name in sorted(os.listdir(runtime_dir)):
        if not (name.startswith("jpserver-") and name.endswith(".json")):
            continue
        try:
            with open(os.path.join(runtime_dir, name), encoding="utf-8") as file:
                info = json.load(file)
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable, or not a server's file
        if _alive(pid):
            found.append(info)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # another user's process
    except OSError:
        return False
    return True


def _from_running_server(runtime_dir: str | None = None) -> Connection:
    servers = running_servers(runtime_dir)
    mine = [s for s in servers if s.get("pid") == os.getppid()]
    chosen = mine or (servers if len(servers) == 1 else [])
    if not chosen:
        found = "no running server" if not servers else f"{len(servers)} running servers"
        raise ClientError(
            f"Cannot tell which Orchestrator to use ({found}): set ORCHESTRATOR_URL and ORCHESTRATOR_TOKEN."
        )
    info = chosen[0]
    return Connection(_api_root(str(info["url"])), str(info.get("token") or ""), "server")


def discover(environ: Mapping[str, str] | None = None, *, timeout: float = 10.0) -> Connection:
    """Find the API and a token from the environment (see the module's documentation)."""
    env = os.environ if environ is None else environ
    if env.get("ORCHESTRATOR_URL"):
        token = env.get("ORCHESTRATOR_TOKEN") or env.get("JUPYTERHUB_API_TOKEN")
        if not token:
            raise ClientError("ORCHESTRATOR_URL is set but no token: set ORCHESTRATOR_TOKEN.")
        return Connection(_api_root(env["ORCHESTRATOR_URL"]), token, "environment", _hub_ssl(env))
    if env.get("JUPYTERHUB_API_URL") and env.get("JUPYTERHUB_API_TOKEN"):
        return _from_hub(env, timeout)
    return _from_running_server(env.get("JUPYTER_RUNTIME_DIR"))


class Client:
    """The Orchestrator API as Python methods; answers are the API's JSON (dicts and lists)."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``url`` and ``token`` override what :func:`discover` finds (give both, or neither)."""
        if url and token:
            self.connection = Connection(_api_root(url), token, "arguments", _hub_ssl(environ or os.environ))
        elif url or token:
            raise ClientError("Give both url and token, or neither (to find them from the environment).")
        else:
            self.connection = discover(environ, timeout=timeout)
        self.timeout = timeout

    @property
    def api_url(self) -> str:
        return self.connection.api_url

    def __repr__(self) -> str:
        return f"Client({self.api_url!r}, via {self.connection.source})"

    # ---- plumbing ---------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One API call; the decoded JSON answer (None when empty). Raises :class:`ApiError`."""
        query = {k: str(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.api_url}/{path.lstrip('/')}" + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - the API's http(s) URL
        request.add_header("Authorization", f"token {self.connection.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(  # noqa: S310  # nosec B310 - api_url is http(s) (_api_root)
                request, timeout=self.timeout, context=self.connection.ssl_context
            ) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiError.from_response(exc.code, exc.read(), exc.reason) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"Cannot reach the Orchestrator API at {self.api_url}: {exc}") from exc
        return json.loads(raw) if raw else None

    def pages(self, path: str, *, limit: int | None = None, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, following its cursors (at most ``limit`` items)."""
        cursor: str | None = None
        given = 0
        while True:
            size = _PAGE if limit is None else max(1, min(_PAGE, limit - given))
            page = self.request("GET", path, params={**params, "limit": size, "cursor": cursor})
            for item in page["items"]:
                if limit is not None and given >= limit:
                    return
                given += 1
                yield item
            cursor = page.get("next_cursor")
            if not cursor or (limit is not None and given >= limit):
                return

    # ---- you and your organizations -------------------------------------------------

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "users/me")
        return result

    def organizations(self, *, limit: int | None = None) -> list[dict[str, Any]]:
        return list(self.pages("organizations", limit=limit))

    # ---- agents ---------------------------------------------------------------------

    def agents(self, *, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Your agents (filters: ``org_id``, ``framework``, ``q``)."""
        return list(self.pages("agents", limit=limit, **filters))

    def agent(self, agent_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"agents/{quote(str(agent_id))}")
        return result

    def create_agent(self, name: str, framework: str, **fields: Any) -> dict[str, Any]:
        """A new agent (fields: ``description``, ``tags``, ``org_id``, ...)."""
        result: dict[str, Any] = self.request("POST", "agents", body={"name": name, "framework": framework, **fields})
        return result

    def update_agent(self, agent_id: str, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PUT", f"agents/{quote(str(agent_id))}", body=fields)
        return result

    def delete_agent(self, agent_id: str) -> None:
        """Archive an agent (its executions stay readable)."""
        self.request("DELETE", f"agents/{quote(str(agent_id))}")

    # ---- workflows ------------------------------------------------------------------

    def workflows(self, agent_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        return list(self.pages(f"agents/{quote(str(agent_id))}/workflows", limit=limit))

    def workflow(self, workflow_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"workflows/{quote(str(workflow_id))}")
        return result

    def create_workflow(self, agent_id: str, name: str, spec: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        """A new workflow of an agent, its version 1 (fields: ``comment``, ``description``)."""
        body = {"name": name, "spec": dict(spec), **fields}
        result: dict[str, Any] = self.request("POST", f"agents/{quote(str(agent_id))}/workflows", body=body)
        return result

    def update_workflow(self, workflow_id: str, spec: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
        """The workflow's next version."""
        body = {"spec": dict(spec), **fields}
        result: dict[str, Any] = self.request("PUT", f"workflows/{quote(str(workflow_id))}", body=body)
        return result

    # ---- executions -----------------------------------------------------------------

    def execute(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Queue a run (answers at once, status ``queued``); a retry with the same key is the same run."""
        body: dict[str, Any] = {"inputs": dict(inputs or {})}
        if version is not None:
            body["version"] = version
        key = idempotency_key or str(uuid.uuid4())
        result: dict[str, Any] = self.request(
            "POST", f"workflows/{quote(str(workflow_id))}/execute", body=body, headers={"Idempotency-Key": key}
        )
        return result

    def executions(self, *, limit: int | None = None, **filters: Any) -> list[dict[str, Any]]:
        """Your executions, newest first (filters: ``org_id``, ``agent_id``, ``workflow_id``, ``status``)."""
        return list(self.pages("executions", limit=limit, **filters))

    def execution(self, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"executions/{quote(str(execution_id))}")
        return result

    def models(self) -> list[dict[str, Any]]:
        """The models the server runs itself (the personal mode's local model): name, model and ``base_url``.

        Code that needs an OpenAI-compatible URL asks here rather than guessing a port.
        """
        return list(self.request("GET", "models")["items"])

    def cancel(self, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", f"executions/{quote(str(execution_id))}/cancel")
        return result

    def wait(
        self,
        execution_id: str,
        *,
        until: Iterable[str] = SETTLED,
        timeout: float = 300.0,
        every: float = 0.5,
    ) -> dict[str, Any]:
        """Poll until the execution is in one of the ``until`` statuses, and return it.

        By default that is when it has ended or is ``waiting`` for a human's answer: a run
        paused for approval will not move on by itself, so waiting longer would only time out.
        ``until=FINISHED`` waits through a pause (someone else resumes it). TimeoutError after ``timeout``.
        """
        wanted = frozenset(until)
        deadline = time.monotonic() + timeout
        while True:
            run = self.execution(execution_id)
            if run["status"] in wanted:
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(f"Execution {execution_id} is still {run['status']} after {timeout:.0f} s.")
            time.sleep(every)
