"""``%orchestrator``: deploy, run and watch workflows from a notebook.

::

    %orchestrator deploy --agent NAME [--schedule "CRON" --tz TZ]   # this notebook, as saved
    %%orchestrator deploy --agent NAME                              # the graph, crew or team this cell builds
    %orchestrator run NAME key=value ...                            # run it, show it until it ends
    %orchestrator runs [--agent NAME] [--status STATUS]
    %orchestrator schedules [--agent NAME]

The API is found as :class:`~orchestrator_ext.client.Client` finds it: under
the hub with this server's own token, in the personal mode the server that
started this kernel. Every action goes through the API's permission checks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
from pathlib import Path
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from . import display as views
from .code import cell_code, files_root, find_built, write_module


class _HelpShown(Exception):
    """``--help`` printed the help: nothing else to do."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports to the notebook instead of exiting the kernel."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\n{self.format_usage()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise UsageError(message or self.format_usage())
        raise _HelpShown


def parser() -> argparse.ArgumentParser:
    main = _Parser(prog="%orchestrator", description="Deploy, run and watch Orchestrator workflows.")
    commands = main.add_subparsers(dest="command", required=True, parser_class=_Parser)
    deploy = commands.add_parser("deploy", help="deploy this notebook (or, as %%%%orchestrator, this cell's agent)")
    deploy.add_argument("--agent", required=True, help="the agent's name (created when missing)")
    deploy.add_argument("--workflow", help="the workflow's name (default: the agent's)")
    deploy.add_argument("--org", help="the organization's id (default: your personal one)")
    deploy.add_argument("--schedule", help='a cron expression, e.g. "0 9 * * 1"')
    deploy.add_argument("--tz", default="UTC", help="the cron expression's time zone, e.g. Europe/Paris")
    deploy.add_argument("--input", action="append", default=[], help="key=value input of the scheduled runs")
    deploy.add_argument("--path", help="the notebook to deploy (default: this kernel's notebook)")
    deploy.add_argument("--name", help="%%%%orchestrator: the variable holding the graph, crew or team")
    run = commands.add_parser("run", help="run an agent's workflow and show it until it ends")
    run.add_argument("agent")
    run.add_argument("inputs", nargs="*", help="key=value inputs")
    run.add_argument("--workflow", help="the workflow's name, when the agent has several")
    run.add_argument("--org", help="the organization's id, when several have such an agent")
    run.add_argument("--timeout", type=float, default=600.0, help="stop watching after this many seconds")
    run.add_argument("--no-wait", action="store_true", help="queue the run and return at once")
    run.add_argument("--wait", action="store_true", help="with the execution view: return when the run ends")
    runs = commands.add_parser("runs", help="your latest runs")
    runs.add_argument("--agent")
    runs.add_argument("--status")
    runs.add_argument("--limit", type=int, default=10)
    schedules = commands.add_parser("schedules", help="the schedules of your agents' workflows")
    schedules.add_argument("--agent")
    return main


@magics_class
class OrchestratorMagics(Magics):
    """The ``%orchestrator`` line and cell magic."""

    _client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from orchestrator_ext.client import Client

            self._client = Client()
        return self._client

    @line_cell_magic  # type: ignore[untyped-decorator]
    def orchestrator(self, line: str, cell: str | None = None) -> Any:
        """Deploy, run and watch workflows: ``%orchestrator --help`` (or ``deploy --help``...) says how."""
        from orchestrator_ext.client import ClientError

        try:
            args = parser().parse_args(shlex.split(line))
        except _HelpShown:
            return None
        if cell is not None and args.command != "deploy":
            raise UsageError("as a cell magic, %%orchestrator only deploys: %%orchestrator deploy --agent NAME")
        try:
            if args.command == "deploy":
                return self._deploy_cell(args, cell) if cell is not None else self._deploy_notebook(args)
            if args.command == "run":
                return self._run(args)
            if args.command == "runs":
                return self._runs(args)
            return self._schedules(args)
        except (ClientError, LookupError, ValueError) as exc:
            raise UsageError(str(exc)) from exc

    # ---- deploy --------------------------------------------------------------------

    def _notebook_path(self, given: str | None) -> Path:
        named = given or os.environ.get("JPY_SESSION_NAME") or self.shell.user_ns.get("__session__")  # type: ignore[union-attr]
        if not named:
            raise UsageError("cannot tell which notebook this is: give --path NOTEBOOK.ipynb")
        path = Path(str(named))
        if not path.is_absolute() and not path.exists():
            with contextlib.suppress(LookupError):
                path = files_root() / path
        return path

    def _deploy_notebook(self, args: argparse.Namespace) -> views.Text:
        from orchestrator_ext.deploy import deploy_notebook, parse_inputs, read_notebook

        path = self._notebook_path(args.path)
        deployment = deploy_notebook(
            self.client,
            read_notebook(path),
            args.agent,
            source=f"{path.name} (as saved)",
            workflow_name=args.workflow,
            org_id=args.org,
            schedule=args.schedule,
            timezone=args.tz,
            inputs=parse_inputs(args.input),
        )
        return views.Text(f"deployed {path.name} as saved on disk\n{deployment.summary()}")

    def _deploy_cell(self, args: argparse.Namespace, cell: str) -> views.Text:
        from orchestrator_ext.deploy import deploy_spec, parse_inputs

        source = cell_code(cell)
        result = self.shell.run_cell(source, store_history=False)  # type: ignore[union-attr]
        if not result.success:
            raise UsageError("the cell failed: nothing was deployed")
        built = find_built(source, self.shell.user_ns, args.name)  # type: ignore[union-attr]
        origin = Path(str(os.environ.get("JPY_SESSION_NAME") or "a notebook")).name
        reference = write_module(files_root(), args.agent, built, source, origin)
        deployment = deploy_spec(
            self.client,
            args.agent,
            built.framework,
            {"options": {"callable": reference}},
            workflow_name=args.workflow,
            org_id=args.org,
            comment=f"%%orchestrator deploy of '{built.name}' from {origin}",
            schedule=args.schedule,
            timezone=args.tz,
            inputs=parse_inputs(args.input),
        )
        return views.Text(f"deployed '{built.name}' ({reference})\n{deployment.summary()}")

    # ---- run and watch ----------------------------------------------------------------

    def _workflow_of(self, agent_name: str, workflow_name: str | None, org_id: str | None) -> tuple[Any, Any]:
        from orchestrator_ext.deploy import find_agent

        agent = find_agent(self.client, agent_name, org_id)
        if agent is None:
            raise UsageError(f"no agent called '{agent_name}': deploy it first (%orchestrator deploy --agent ...)")
        workflows = self.client.workflows(agent["id"])
        if workflow_name is not None:
            workflows = [w for w in workflows if w["name"] == workflow_name]
        elif len(workflows) > 1:
            workflows = [w for w in workflows if w["name"] == agent_name] or workflows
        if len(workflows) != 1:
            names = ", ".join(w["name"] for w in self.client.workflows(agent["id"])) or "none"
            raise UsageError(f"the agent '{agent_name}' has workflows {names}: name one with --workflow")
        return agent, workflows[0]

    def _run(self, args: argparse.Namespace) -> views.Run:
        from orchestrator_ext.deploy import parse_inputs

        inputs = parse_inputs(args.inputs)
        agent, workflow = self._workflow_of(args.agent, args.workflow, args.org)
        run: dict[str, Any] = self.client.execute(workflow["id"], inputs)
        title = f"{agent['name']} · {workflow['name']} v{run.get('version', workflow['version'])}"
        widget = views.execution_view(run, self.client)
        if widget is not None:
            # the widget follows the run itself, and its buttons (cancel, approve) need the kernel free
            views.show(widget)
            if not args.wait:
                return views.Run(run, title, shown=True)
            return views.Run(self.client.wait(run["id"], timeout=args.timeout), title)
        if args.no_wait:
            return views.Run(run, title)
        return views.follow(run, self.client.execution, title, timeout=args.timeout)

    def _agent_names(self) -> dict[str, str]:
        return {str(a["id"]): str(a["name"]) for a in self.client.agents()}

    def _runs(self, args: argparse.Namespace) -> views.Table:
        from orchestrator_ext.deploy import find_agent

        filters: dict[str, Any] = {"status": args.status}
        if args.agent:
            agent = find_agent(self.client, args.agent, None)
            if agent is None:
                raise UsageError(f"no agent called '{args.agent}'")
            filters["agent_id"] = agent["id"]
        names = self._agent_names()
        rows = [
            (
                names.get(str(r["agent_id"]), str(r["agent_id"])[:8]),
                f"v{r.get('version', '')}",
                r["status"],
                r["created_at"][:19].replace("T", " "),
                views._duration(r),
                r["id"],
            )
            for r in self.client.executions(limit=args.limit, **filters)
        ]
        header = ("agent", "version", "status", "created (UTC)", "took", "execution")
        return views.Table(f"your latest {len(rows)} runs", header, rows, "no runs yet")

    def _schedules(self, args: argparse.Namespace) -> views.Table:
        agents = self.client.agents(q=args.agent) if args.agent else self.client.agents()
        rows = []
        for agent in agents:
            if args.agent and agent["name"] != args.agent:
                continue
            for workflow in self.client.workflows(agent["id"]):
                for schedule in self.client.pages(f"workflows/{workflow['id']}/schedules"):
                    rows.append(
                        (
                            agent["name"],
                            workflow["name"],
                            schedule["name"],
                            f"{schedule['cron']} ({schedule['timezone']})",
                            "on" if schedule["enabled"] else "paused",
                            (schedule.get("next_run_at") or "")[:16].replace("T", " "),
                        )
                    )
        header = ("agent", "workflow", "schedule", "when", "state", "next run (UTC)")
        return views.Table(f"{len(rows)} schedules", header, rows, "no schedules")
