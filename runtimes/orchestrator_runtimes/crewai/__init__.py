"""The CrewAI runtime: a crew of agents working through tasks (entry point ``orchestrator.runtimes: crewai``).

A spec describes the crew with nodes:

- ``agent`` nodes: ``config`` = ``role``, ``goal``, ``backstory`` (required), ``model`` (a model integration's
  name; else ``options.model``, else the organization's default model), ``tools`` (``module:function``
  references or built-in tool names such as ``calculator``), ``allow_delegation`` and ``max_iter``;
- ``task`` nodes, run in the order of the nodes: ``config`` = ``description`` (``{placeholders}`` are filled
  from the run's inputs), ``expected_output``, ``agent`` (the id of the agent node doing it; not needed in a
  hierarchical crew, whose manager delegates) and ``context`` (ids of earlier task nodes whose outputs the
  task receives). An edge from a task to a later task means the same as ``context``;
- ``input`` and ``output`` nodes may be there for the editor; the crew ignores them.

``options``: ``process`` (``sequential``, the default, or ``hierarchical``), ``model``, ``manager_model``
(the hierarchical manager's model), ``manager_max_iter``, ``max_tokens`` and ``temperature`` (for every
model call), ``tool_failure`` (``raise``, the default: a tool that raises fails the run with kind ``tool``;
``warn``: the agent reads the error and goes on), and ``callable`` for a code-first crew: a
``module:function`` (or ``notebook.ipynb:function``) that builds and returns a ``crewai.Crew``, called with
those of ``llm`` (a CrewAI LLM for the run's model), ``endpoint`` (the :class:`ModelEndpoint`) and
``inputs`` it accepts.

The crew runs in a thread; each task reports a ``step`` event as soon as it finishes (agent = the role
that did it, output = the task's raw output, with its latency and the tokens it spent), then the run
ends with the crew's final output and every task's output.

The package: :mod:`.spec` (pydantic models of the options and of ``agent`` and
``task`` configs, and the crew's rules), :mod:`.models` (the metered
``crewai.LLM``), :mod:`.build` (the ``crewai.Crew``), :mod:`.run` (the run in a
thread, steps, the error taxonomy). Importing it does not import CrewAI.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ..agents import AgentsRuntime
from ..framework import Problems
from .spec import NODE_MODELS, CrewAIOptions, crew_problems

if TYPE_CHECKING:
    from ..runtime import RunContext, RunEvent, RunResult, RunWaiting
    from ..spec import WorkflowSpec

__all__ = ["CrewAIRuntime"]


class CrewAIRuntime(AgentsRuntime):
    """Runs crewai workflows: a crew from the spec's nodes, or one built by the spec's callable."""

    name = "crewai"
    title = "CrewAI"
    framework_module = "crewai"
    extra = "crewai"
    options_model = CrewAIOptions
    node_models = NODE_MODELS
    #: no telemetry, no tracing, no prompt waiting for a person (CrewAI reads these when imported)
    quiet_environment: ClassVar[Mapping[str, str]] = {
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "OTEL_SDK_DISABLED": "true",
    }
    preloaded = (
        "crewai",
        "crewai.tools",
        "crewai.tools.tool_failure",
        "crewai.llms.hooks.base",
        "crewai.llms.providers.openai.completion",
        "crewai.utilities.i18n",
        # imported by a crew's first kickoff (CrewAI 1.15): before the fork, not in each run
        "crewai.hooks.contexts",
        "crewai.llms.cache",
        "crewai.skills.tool",
    )
    spec_what = "the crew's spec"

    def preload(self) -> None:
        """Import CrewAI quietly (its import trips ImportWarning and its own deprecations); ~3 s saved per run."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            super().preload()

    def warm_up(self) -> None:
        """In the fork server, before it forks: run the tiny crew of :mod:`.warm` through this runtime (a
        crew's first kickoff: lazy imports, validators, prompt files, the event bus's handlers), then stop the
        threads the kickoff started in CrewAI's event bus (a server with threads must not fork; each run's
        first event starts its own). Where they cannot be stopped, the crew is only built. First, crews of
        this process (and of every run forked from it) stop writing CrewAI's replay store, which nothing reads
        in a run (:mod:`.replay`)."""
        from .replay import discard_replay_store
        from .warm import EVENT_BUS_PARTS, build, stop_event_threads

        discard_replay_store()
        with contextlib.suppress(Exception):  # a warm-up that fails leaves the runs as cold as they were
            from crewai.events.event_bus import crewai_event_bus

            if all(hasattr(crewai_event_bus, part) for part in EVENT_BUS_PARTS):
                self.warm_up_run()
                stop_event_threads()
            else:
                build()

    def warm_up_run(self) -> None:
        """In a fork server's spare (a child that takes one run; threads are allowed there, not in the server):
        a tiny crew of ours through this runtime, on a model answering in-process (:mod:`.warm`)."""
        from ..warmup import run_through
        from .warm import SPEC

        run_through(self, SPEC)

    def graph_problems(self, spec: WorkflowSpec, options: Any) -> Problems:
        return crew_problems(spec, options.process == "hierarchical")

    def execute(
        self, spec: WorkflowSpec, options: Any, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        # CrewAI's files (its memory, its task outputs) go to the run's own directory, for this run only
        previous = os.environ.get("CREWAI_STORAGE_DIR")
        os.environ["CREWAI_STORAGE_DIR"] = str(context.workdir / ".crewai")
        try:
            yield from self._crew_run(spec, options, inputs, context)
        finally:
            if previous is None:
                os.environ.pop("CREWAI_STORAGE_DIR", None)
            else:
                os.environ["CREWAI_STORAGE_DIR"] = previous

    def _crew_run(
        self, spec: WorkflowSpec, options: Any, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        from ..errors import RunError
        from .build import CrewBuilder, code_first_crew, missing_inputs
        from .run import failure, run_crew

        if options.callable is not None:
            crew, endpoint = code_first_crew(spec, inputs, context, failure)
            endpoints = [endpoint] if endpoint else []
            for index, task in enumerate(crew.tasks):
                task.name = task.name or f"task_{index}"  # a step's node: its task's name, else its place
        else:
            missing = missing_inputs(spec, inputs)
            if missing is not None:
                raise missing
            builder = CrewBuilder(spec, context)
            try:
                crew = builder.crew()
            except RunError:
                raise
            except Exception as exc:
                raise failure(exc, list(builder.endpoints.values()), "CrewAI could not build the crew") from exc
            endpoints = list(builder.endpoints.values())
        yield from run_crew(crew, inputs, endpoints, context)
