"""The LangGraph runtime: a spec's nodes and edges become a ``StateGraph``, checkpointed in PostgreSQL.

Entry point ``orchestrator.runtimes: langgraph``. The package is cut like the
others: :mod:`.spec` (what a spec may say: pydantic models of the options and
of each node type's config, and the rules between nodes), :mod:`.build` (the
``StateGraph`` of a spec), :mod:`.run` (checkpoints, code first, the stream of
steps, waits and resumes), :mod:`.messages` (LangGraph values as JSON).

Nodes: ``input``, ``model``, ``tool``, ``code``, ``router``/``condition``,
``human_approval``, ``subgraph`` and ``output`` (see :mod:`.spec`). An edge's
``condition`` (:mod:`..expressions`) is tested in edge order; edges without
one are taken when no condition holds; edges from one node without conditions
all run (a fan-out), and the branches meet again at a node with several
incoming edges (a fan-in; ``wait_for`` makes it wait for branches of
different lengths).

Code first: ``options.callable`` names a function that returns a ``StateGraph``
(compiled here with the checkpointer) or a compiled graph (run on the
checkpointer here); it is called with whichever of ``client`` (a metered
``openai.OpenAI``), ``model`` (the model name), ``endpoint`` and ``inputs`` it
accepts.

Importing this package does not import LangGraph: a worker without it lists
the runtime, and a run says which extra to install.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from ..errors import ErrorKind, RunError
from ..framework import FrameworkRuntime, Problems
from .spec import NODE_MODELS, LangGraphOptions, graph_problems

if TYPE_CHECKING:
    from ..runtime import RunContext, RunEvent, RunResult, RunWaiting
    from ..spec import WorkflowSpec

__all__ = ["LangGraphRuntime"]

_WARM_UP = {
    "nodes": [
        {"id": "a", "type": "code", "config": {"source": "def run(values):\n    return 1"}},
        {"id": "b", "type": "output", "config": {"from": "a"}},
    ],
    "edges": [{"source": "a", "target": "b"}],
}


class LangGraphRuntime(FrameworkRuntime):
    """Runs ``langgraph`` workflows: a graph from the spec's nodes, or one built by the spec's callable."""

    name = "langgraph"
    title = "LangGraph"
    framework_module = "langgraph"
    extra = "langgraph"
    capabilities: ClassVar[Mapping[str, bool]] = {
        "streaming": True,
        "checkpoints": True,
        "multi_agent": True,
        "tools": True,
        "human_in_the_loop": True,
        "multi_modal": False,
        "gpu": False,
    }
    options_model: ClassVar[type[BaseModel]] = LangGraphOptions
    node_models: ClassVar[Mapping[str, type[BaseModel]]] = NODE_MODELS
    preloaded = ("langgraph.graph", "langgraph.checkpoint.postgres", "openai")
    quiet_environment: ClassVar[Mapping[str, str]] = {"LANGCHAIN_TRACING_V2": "false", "LANGSMITH_TRACING": "false"}
    spec_what = "the langgraph workflow's spec"

    def warm_up(self) -> None:
        """One tiny graph, so the first real run finds LangGraph's lazy imports and caches done."""
        from ..runtime import RunContext
        from ..spec import validate_spec

        warm, _ = validate_spec(_WARM_UP, self.name)
        if warm is not None:
            for _ in self.run(warm, {}, RunContext(execution_id="warm-up", attempt=1, workdir=Path.cwd())):
                pass

    def prepare_state(self, url: str) -> None:
        """Create the checkpoint tables once (a fork server does this for all its runs)."""
        import os

        from .run import PREPARED_ENV, postgres_saver

        with postgres_saver(url):
            os.environ[PREPARED_ENV] = url

    def graph_problems(self, spec: WorkflowSpec, options: Any) -> Problems:
        return graph_problems(spec.nodes, spec.edges)

    def execute(
        self, spec: WorkflowSpec, options: Any, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        from ..runtime import RunWaiting
        from .deferred import DeferredSaver, deferred_checkpoints, defers
        from .run import checkpointer, code_first_graph, spec_graph, stream

        if any(str(node.type) == "human_approval" for node in spec.nodes) and not context.state_url:
            raise RunError(
                ErrorKind.CONFIGURATION,
                "a human approval needs checkpoints, and this worker has no runs' database (state_url)",
            )
        manager: AbstractContextManager[Any] = checkpointer(context)
        if context.state_url and defers(options.durability, context.attempt, context.resume):
            manager = deferred_checkpoints(context.state_url)  # no connection unless someone will read it
        with manager as saver:
            code_first = options.callable is not None
            if code_first:
                graph = code_first_graph(options, context, saver, inputs)
            else:
                graph = spec_graph(spec, options, context, saver)
            for item in stream(graph, code_first, options, dict(inputs), context):
                if isinstance(item, RunWaiting) and isinstance(saver, DeferredSaver):
                    saver.persist()  # before the wait is reported: its resume reads the checkpoint
                yield item
