"""Deploy a notebook or code as the next version of a workflow, in one step, through the API.

``jupyter orchestrator deploy NOTEBOOK --agent NAME`` and the kernels'
``%orchestrator deploy`` magics both land here, so a deploy from a shell and
one from a notebook make the same versions:

1. the agent called NAME (in your personal organization, or ``--org``) is
   found, or created with the right framework;
2. its workflow (NAME, or ``--workflow``) gets a new version, or is created
   with version 1. A notebook is sent as its content (its ``parameters`` cell
   becomes the workflow's inputs), without outputs and without the
   ``%orchestrator`` lines that deployed it, and lists the organization's
   model integration so its runs receive it;
3. with ``--schedule``, the workflow's schedule named ``deploy`` is created or
   changed to that cron expression and time zone (running the current version
   at each firing).

Only the API is used (:class:`~orchestrator_ext.client.Client`): the API's
permission checks and validation apply, and under the hub nothing is typed.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyter_core.application import JupyterApp
from traitlets import List, Unicode

from .client import ApiError, Client, ClientError

#: the name of the schedule a deploy creates and later deploys change
SCHEDULE_NAME = "deploy"
MODEL_KIND = "openai-compatible"
_MAGIC_LINE = re.compile(r"^\s*%%?orchestrator\b")


class DeployError(ClientError):
    """What the deploy could not do, in words meant for its user."""


@dataclass(frozen=True)
class Deployment:
    """What a deploy made: the agent, the workflow at its new version, the schedule."""

    agent: dict[str, Any]
    workflow: dict[str, Any]
    created_agent: bool
    schedule: dict[str, Any] | None = None

    @property
    def version(self) -> int:
        return int(self.workflow["version"])

    def summary(self) -> str:
        """A few lines saying what happened, for a terminal or a notebook's output."""
        made = "created" if self.created_agent else "found"
        lines = [
            f"{made} agent '{self.agent['name']}' ({self.agent['framework']}, {self.agent['id']})",
            f"workflow '{self.workflow['name']}' is now at version {self.version} ({self.workflow['id']})",
        ]
        parameters = self.workflow.get("parameters") or []
        if parameters:
            described = ", ".join(f"{p['name']}={json.dumps(p.get('default'))}" for p in parameters)
            lines.append(f"inputs (from the parameters cell): {described}")
        if self.schedule is not None:
            lines.append(
                f"schedule '{self.schedule['name']}': {self.schedule['cron']} ({self.schedule['timezone']}), "
                f"next run {self.schedule.get('next_run_at') or 'never (disabled)'}"
            )
        return "\n".join(lines)


def parse_inputs(pairs: Iterable[str]) -> dict[str, Any]:
    """``key=value`` pairs as inputs; a value is read as JSON when it is JSON (``n=3``, ``ok=true``), else text."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip().isidentifier():
            raise DeployError(f"'{pair}' is not key=value (a name, '=', then a value)")
        try:
            inputs[key.strip()] = json.loads(raw)
        except ValueError:
            inputs[key.strip()] = raw
    return inputs


def clean_notebook(notebook: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook as a workflow runs it: no outputs, no ``%orchestrator`` lines (a run must not deploy)."""
    cleaned = copy.deepcopy(dict(notebook))
    cells = []
    for cell in cleaned.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
            kept = [line for line in text.splitlines() if not _MAGIC_LINE.match(line)]
            if not "\n".join(kept).strip():
                continue
            cell["source"] = "\n".join(kept)
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    cleaned["cells"] = cells
    return cleaned


def read_notebook(path: Path) -> dict[str, Any]:
    """A notebook file's JSON (nbformat joins the cells' lines); a DeployError saying what is wrong."""
    import nbformat

    try:
        document = nbformat.read(str(path), as_version=4)  # type: ignore[no-untyped-call]
    except FileNotFoundError as exc:
        raise DeployError(f"no notebook at {path}") from exc
    except (OSError, ValueError) as exc:  # nbformat's read errors are ValueErrors
        raise DeployError(f"{path} is not a notebook: {exc}") from exc
    result: dict[str, Any] = json.loads(nbformat.writes(document))  # type: ignore[no-untyped-call]
    return result


def find_agent(client: Client, name: str, org_id: str | None) -> dict[str, Any] | None:
    """The live agent called exactly ``name`` (in ``org_id`` when given); None when there is none."""
    found = [a for a in client.agents(q=name, org_id=org_id) if a["name"] == name]
    if len(found) > 1:
        orgs = ", ".join(sorted({str(a["org_id"]) for a in found}))
        raise DeployError(f"several agents are called '{name}' (organizations {orgs}): name one with --org")
    return found[0] if found else None


def model_integration(client: Client, org_id: str) -> str | None:
    """The organization's model integration runs use by default: ``default``, else the oldest."""
    found = list(client.pages("integrations", org_id=org_id, kind=MODEL_KIND))
    found.sort(key=lambda i: (i["name"] != "default", i["created_at"], i["name"]))
    return str(found[0]["name"]) if found else None


def _schedule(client: Client, workflow_id: str, cron: str, timezone: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    existing = [s for s in client.pages(f"workflows/{workflow_id}/schedules") if s["name"] == SCHEDULE_NAME]
    body = {"cron": cron, "timezone": timezone, "inputs": dict(inputs), "enabled": True, "version": None}
    if existing:
        result: dict[str, Any] = client.request("PATCH", f"schedules/{existing[0]['id']}", body=body)
        return result
    created: dict[str, Any] = client.request(
        "POST", f"workflows/{workflow_id}/schedules", body={"name": SCHEDULE_NAME, **body}
    )
    return created


def deploy_spec(
    client: Client,
    agent_name: str,
    framework: str,
    spec: Mapping[str, Any],
    *,
    workflow_name: str | None = None,
    org_id: str | None = None,
    comment: str = "",
    schedule: str | None = None,
    timezone: str = "UTC",
    inputs: Mapping[str, Any] | None = None,
) -> Deployment:
    """Save ``spec`` as the next version of the agent's workflow (creating either when missing), then schedule it."""
    agent = find_agent(client, agent_name, org_id)
    created = agent is None
    if agent is None:
        agent = client.create_agent(agent_name, framework, **({"org_id": org_id} if org_id else {}))
    elif agent["framework"] != framework:
        raise DeployError(
            f"the agent '{agent_name}' has the framework '{agent['framework']}', and this deploy makes a "
            f"'{framework}' workflow: choose another --agent name"
        )
    name = workflow_name or agent_name
    workflow = next((w for w in client.workflows(agent["id"]) if w["name"] == name), None)
    if workflow is None:
        workflow = client.create_workflow(agent["id"], name, spec, comment=comment)
    else:
        workflow = client.update_workflow(workflow["id"], spec, comment=comment)
    scheduled = None
    if schedule:
        try:
            scheduled = _schedule(client, workflow["id"], schedule, timezone, inputs or {})
        except ApiError as exc:
            raise DeployError(
                f"version {workflow['version']} of the workflow '{name}' was saved, but the schedule was refused: {exc}"
            ) from exc
    return Deployment(agent=agent, workflow=workflow, created_agent=created, schedule=scheduled)


def _home_org(client: Client, agent_name: str, org_id: str | None) -> str:
    """The organization the agent is (or will be) in: its own, the one given, else the caller's personal one."""
    agent = find_agent(client, agent_name, org_id)
    if agent is not None:
        return str(agent["org_id"])
    if org_id:
        return org_id
    personal = [m for m in client.me()["memberships"] if m.get("personal")]
    if not personal:
        raise DeployError("you have no personal organization: name one with --org")
    return str(personal[0]["org_id"])


def deploy_notebook(
    client: Client, notebook: Mapping[str, Any], agent_name: str, *, source: str = "a notebook", **options: Any
) -> Deployment:
    """Deploy a notebook's content as the next version of a ``notebook`` agent's workflow (see the module)."""
    spec: dict[str, Any] = {"notebook": {"content": clean_notebook(notebook)}}
    model = model_integration(client, _home_org(client, agent_name, options.get("org_id")))
    if model is not None:
        spec["integrations"] = [model]
    options.setdefault("comment", f"deployed from {source}")
    return deploy_spec(client, agent_name, "notebook", spec, **options)


class DeployCommand(JupyterApp):
    """``jupyter orchestrator deploy NOTEBOOK --agent NAME``: the shell's ``%orchestrator deploy``."""

    name = "jupyter-orchestrator-deploy"
    description = "Deploy a notebook as the next version of an agent's workflow (its parameters cell: the inputs)."
    examples = (
        'jupyter orchestrator deploy report.ipynb --agent "Weekly report" --schedule "0 9 * * 1" --tz Europe/Paris'
    )
    agent = Unicode(help="The agent's name (created as a notebook agent when missing).").tag(config=True)
    workflow = Unicode(help="The workflow's name (default: the agent's name).").tag(config=True)
    org = Unicode(help="The organization's id (default: your personal organization).").tag(config=True)
    schedule = Unicode(help="A cron expression: run the workflow on it (the schedule named 'deploy').").tag(config=True)
    tz = Unicode("UTC", help="The time zone the cron expression is read in, e.g. Europe/Paris.").tag(config=True)
    inputs = List(Unicode(), help="key=value inputs of the scheduled runs (repeat the option).").tag(config=True)
    url = Unicode(help="The Orchestrator's URL (default: found as orchestrator_ext.client does).").tag(config=True)
    token = Unicode(help="The API token to use with --url.").tag(config=True)
    aliases = {
        name: f"DeployCommand.{name}" for name in ("agent", "workflow", "org", "schedule", "tz", "url", "token")
    } | {"input": "DeployCommand.inputs"}

    def start(self) -> None:
        if len(self.extra_args) != 1 or not self.agent:
            self.exit("usage: jupyter orchestrator deploy NOTEBOOK --agent NAME [--schedule CRON --tz TZ]")
        path = Path(self.extra_args[0])
        try:
            client = Client(self.url or None, self.token or None)
            deployment = deploy_notebook(
                client,
                read_notebook(path),
                self.agent,
                source=path.name,
                workflow_name=self.workflow or None,
                org_id=self.org or None,
                schedule=self.schedule or None,
                timezone=self.tz,
                inputs=parse_inputs(self.inputs),
            )
        except ClientError as exc:
            print(f"deploy failed: {exc}", file=sys.stderr)
            self.exit(1)
        print(deployment.summary())
