"""The Agno runtime: an agent, or a team of agents, with memory and knowledge in PostgreSQL.

Entry point ``orchestrator.runtimes: agno``. A spec describes the agents with nodes:

- ``agent``: ``config`` = ``name`` (required), ``role``, ``instructions`` (a string or a list of strings),
  ``model`` (a model integration's name; else ``options.model``, else the organization's default), ``tools``
  (built-in tool names such as ``calculator``, or ``module:function`` references), ``memory`` (true: the
  conversation and the user's memories are kept in the runs' database, so a later run of the same agent
  remembers; ``"history"``: the conversation only, without the extra model call that picks what to remember
  about the user) and ``knowledge`` (the id of a ``knowledge`` node whose documents are looked up for each message);
- ``team``: ``config`` = ``name`` (required), ``members`` (ids of agent or team nodes, at least one),
  ``instructions``, ``model``, ``mode`` (``coordinate``: the leader delegates and writes the answer from what
  the members said, the default; ``route``: the leader hands the message to one member, whose answer is the
  team's; ``collaborate``: the leader gives the task to every member and sums up), ``memory``,
  ``max_delegations`` (how many times the leader may delegate) and ``force_delegation`` (default true: the
  leader's first answer is a delegation, so a team always puts its members to work);
- ``knowledge``: ``config`` = ``documents`` (required: strings, or ``{"name", "content"}``), ``table`` (the
  pgvector table; default from the workflow's id, the node's and its documents), ``embedder_model`` (the model
  integration that embeds; default the agent's), ``dimensions`` (the embeddings' size; default: asked of the
  embedder) and ``limit`` (documents found per lookup, 3);
- ``input`` and ``output`` nodes may be there for the editor; they are ignored.

The run starts at the entry: ``options.entry``, else the team that is no other team's member, else the only
agent. ``inputs``: ``message`` (or ``input``, ``prompt``), ``images`` (URLs or ``data:`` URIs; the model
integration must declare ``"modalities": ["text", "image"]`` in its config), ``files`` (text files as
``{"name", "content"}``, or URLs), ``session_id`` and ``user_id`` (whose memory; default the agent's id and
``default``).

``options``: ``model``, ``entry``, ``max_tokens`` (256) and ``temperature`` for every model call,
``history_runs`` (earlier runs a remembering agent reads, 3), and ``callable`` for code first: a
``module:function`` (or ``notebook.ipynb:function``) returning an ``agno.agent.Agent`` or ``agno.team.Team``,
called with those of ``model`` (an Agno model for the run's model integration, whose calls are counted),
``endpoint``, ``inputs`` and ``db_url`` (the runs' database, as a SQLAlchemy URL) it accepts.

Each member run, each delegation by a team's leader, each knowledge lookup and the leader's answer is a
``step`` event, reported as it happens (the run goes on in a thread).

The package: :mod:`.spec` (pydantic models of the options and node configs, the
rules between nodes), :mod:`.inputs` (message, images, files), :mod:`.models`
(metered models and embedders, guarded tools, what the run's threads share),
:mod:`.build` (the agents and teams), :mod:`.run` (code first, the run in a
thread, the result). Importing it does not import Agno.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ..agents import AGENTS_CAPABILITIES, AgentsRuntime
from ..errors import ErrorKind, RunError
from ..framework import Problems
from .spec import NODE_MODELS, AgnoOptions, find_entry, team_problems

if TYPE_CHECKING:
    from ..runtime import RunContext, RunEvent, RunResult, RunWaiting
    from ..spec import WorkflowSpec

__all__ = ["AgnoRuntime", "find_entry"]


class AgnoRuntime(AgentsRuntime):
    """Runs agno workflows: an agent or a team from the spec's nodes, or one built by the spec's callable."""

    name = "agno"
    title = "Agno"
    framework_module = "agno"
    extra = "agno"
    capabilities: ClassVar[Mapping[str, bool]] = {
        **AGENTS_CAPABILITIES,
        "multi_modal": True,
        "memory": True,
        "knowledge": True,
    }
    options_model = AgnoOptions
    node_models = NODE_MODELS
    quiet_environment: ClassVar[Mapping[str, str]] = {"AGNO_TELEMETRY": "false"}
    preloaded = (
        "agno.agent",
        "agno.team",
        "agno.models.openai.like",
        "agno.db.postgres",
        "agno.knowledge.knowledge",
        "agno.vectordb.pgvector",
        "sqlalchemy",
    )
    spec_what = "the agno workflow's spec"

    def warm_up(self) -> None:
        """In the fork server, before it forks: the metered model class, and a tiny team of ours run once on a
        model answering in-process (:mod:`.warm`), so every run forked later finds Agno's first-call work done
        (about 140 ms of CPU). The run's thread has ended when this returns: the server stays forkable."""
        from .models import model_class

        model_class()
        self.warm_up_run()

    def warm_up_run(self) -> None:
        """In a fork server's spare (a child that takes one run): the tiny team again, so the pages a run writes
        to are already the spare's own (no copy-on-write faults on the run's path)."""
        from ..warmup import run_through
        from .warm import ANSWER, SPEC

        run_through(self, SPEC, {"message": ANSWER})

    def graph_problems(self, spec: WorkflowSpec, options: Any) -> Problems:
        return team_problems(spec)

    def execute(
        self, spec: WorkflowSpec, options: Any, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        from ..models import METER
        from ..tracking import StepTracker
        from .build import TeamBuilder
        from .inputs import check_media, read_inputs
        from .models import Failures, Sink, failure
        from .run import code_first, hook_code_first, run_agno

        read = read_inputs(inputs, context)
        tracker = StepTracker(self.name)
        sink = Sink(tracker=tracker, events=queue.Queue())
        failures = Failures()
        builder: TeamBuilder | None = None
        start = METER.snapshot()
        try:
            if options.callable is not None:
                runnable, endpoints = code_first(spec, inputs, context, failures)
                check_media(context, endpoints, read)
                hook_code_first(runnable, sink)
                session_id = read.session_id
            else:
                entry, _ = find_entry(spec)
                if entry is None:  # pragma: no cover - the spec's rules report it
                    raise RunError(ErrorKind.CONFIGURATION, "the workflow has no entry")
                builder = TeamBuilder(spec, context, read, sink, failures)
                for name in builder.plan(entry):  # the models first: a missing one is a configuration error
                    node = builder.nodes[name]
                    if node.type in ("agent", "team"):
                        builder.endpoint(node.config.get("model"))
                check_media(context, list(builder.endpoints.values()), read)
                tracker.begin()
                try:
                    runnable = builder.build(entry)
                except RunError:
                    raise
                except Exception as exc:
                    raise failure(exc, list(builder.endpoints.values()), "Agno could not build the agents") from exc
                endpoints = list(builder.endpoints.values())
                session_id = builder.session_id
            tracker.begin()
            yield from run_agno(runnable, read, session_id, sink, failures, endpoints, start, context)
        finally:
            if builder is not None:
                builder.close()
