"""Running a LangGraph graph: the checkpointer, code-first graphs, the stream of steps, waits and resumes.

The thread of a run is its execution id: with ``context.state_url`` every step
is checkpointed by ``langgraph-checkpoint-postgres``, so a waiting run resumes
from its checkpoint in any process, and a retried attempt goes on from the last
checkpoint instead of starting over. A code-first graph compiled with a
checkpointer of its own (``InMemorySaver``, as LangGraph's docs show for
``interrupt``) is run on the runs' database instead: a checkpoint in the
memory of a process that ends could never be resumed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from ..code import load_callable
from ..errors import ErrorKind, RunError
from ..framework import accepted_arguments, run_error_in
from ..models import METER, model_endpoint, model_failure
from ..runtime import RunEvent, RunResult, RunWaiting
from ..tracking import step_event, step_record, total_usage
from . import cache
from .build import build_graph, start_state
from .messages import to_json

if TYPE_CHECKING:
    from ..models import ModelEndpoint
    from ..runtime import RunContext
    from ..spec import WorkflowSpec

#: set in a fork server's environment once the checkpoint tables exist, so its runs skip the check
PREPARED_ENV = "ORCHESTRATOR_CHECKPOINTS_READY"
NAME = "langgraph"
#: the advisory lock taken while the checkpoint tables are created
SETUP_LOCK = 0x6C616E67  # "lang"


class postgres_saver(AbstractContextManager[Any]):
    """A ``PostgresSaver`` on ``url`` with its tables created (``setup`` is idempotent)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._context: Any = None

    def __enter__(self) -> Any:
        from langgraph.checkpoint.postgres import PostgresSaver

        try:
            self._context = PostgresSaver.from_conn_string(self.url)
            saver = self._context.__enter__()
            if os.environ.get(PREPARED_ENV) != self.url:
                _setup(saver)
        except Exception as exc:
            raise RunError(
                ErrorKind.INTERNAL, f"the runs' database cannot keep checkpoints: {exc}", retryable=True
            ) from exc
        return saver

    def __exit__(self, *exc_info: Any) -> None:
        if self._context is not None:
            self._context.__exit__(*exc_info)


def _setup(saver: Any) -> None:
    """Create the checkpoint tables, one process at a time: runs starting together on a fresh database
    would otherwise race on ``CREATE TABLE`` and fail with a duplicate key."""
    # try, not wait: a session waiting on the lock is a transaction that CREATE INDEX CONCURRENTLY (in
    # setup) would wait for in turn, a deadlock
    while True:
        row = saver.conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (SETUP_LOCK,)).fetchone()
        if (row["locked"] if isinstance(row, dict) else row[0]) is True:
            break
        time.sleep(0.05)
    try:
        saver.setup()
    finally:
        saver.conn.execute("SELECT pg_advisory_unlock(%s)", (SETUP_LOCK,))


def checkpointer(context: RunContext) -> AbstractContextManager[Any]:
    """The runs' database's saver, or one in memory where the worker has none (nothing can wait then)."""
    if not context.state_url:
        from langgraph.checkpoint.memory import InMemorySaver

        return nullcontext(InMemorySaver())
    return postgres_saver(context.state_url)


def spec_graph(spec: WorkflowSpec, options: Any, context: RunContext, saver: Any) -> Any:
    """The spec's graph on the run's checkpointer (compiled once per process that serves several runs)."""
    build = lambda: build_graph(spec.nodes, spec.edges, options, context)  # noqa: E731
    return cache.compiled(cache.key_of(spec, options, context), build, saver)


def code_first_graph(options: Any, context: RunContext, saver: Any, inputs: Mapping[str, Any]) -> Any:
    """The graph ``options.callable`` builds, compiled (or re-bound) on the run's checkpointer."""
    reference = str(options.callable)
    builder = load_callable(reference, context.files_root)
    endpoint = _endpoint_or_none(context, options.model)
    offered: dict[str, Callable[[], Any]] = {"endpoint": lambda: endpoint, "inputs": lambda: dict(inputs)}
    if endpoint is not None:
        offered.update(client=endpoint.openai_client, model=lambda: endpoint.model)
    try:
        built = builder(**accepted_arguments(builder, offered))
    except RunError:
        raise
    except Exception as exc:
        raise failure(exc, f"the callable '{reference}' raised") from exc
    if hasattr(built, "compile") and not hasattr(built, "stream"):
        return built.compile(checkpointer=saver)
    if not hasattr(built, "stream"):
        raise RunError(
            ErrorKind.CONFIGURATION,
            f"'{reference}' returned {type(built).__name__}, not a LangGraph StateGraph or compiled graph",
        )
    if getattr(built, "checkpointer", None) is not saver and hasattr(built, "copy"):
        # its own saver (InMemorySaver in LangGraph's examples) would lose a waiting run with its process
        built = built.copy(update={"checkpointer": saver})
    return built


def _endpoint_or_none(context: RunContext, name: str | None) -> ModelEndpoint | None:
    try:
        return model_endpoint(context, name)
    except RunError:
        return None


def _unfinished(graph: Any, config: dict[str, Any]) -> bool:
    """True when this run's thread stopped part-way (a previous attempt was lost)."""
    try:
        state = graph.get_state(config)
    except ValueError:  # no checkpointer
        return False
    return bool(state.values) and bool(state.next) and not state.interrupts


def _waiting_node(graph: Any, config: dict[str, Any], request: Any) -> str:
    """The node an interrupt stopped in: the spec's own request says it, else the graph's pending task."""
    if isinstance(request, dict) and isinstance(request.get("node"), str):
        return str(request["node"])
    try:
        tasks = graph.get_state(config).tasks
    except ValueError:
        return ""
    return next((str(task.name) for task in tasks if getattr(task, "interrupts", None)), "")


def failure(exc: BaseException, what: str = "the graph failed") -> RunError:
    """The taxonomy's error for what a graph raised: ours, the model's, else the code's own."""
    found = run_error_in(exc) or model_failure(exc, None)
    if found is not None:
        return found
    import traceback

    return RunError(
        ErrorKind.CODE, f"{what}: {type(exc).__name__}: {exc}", traceback=traceback.format_exception(exc)[-10:]
    )


def stream(
    graph: Any, code_first: bool, options: Any, inputs: Mapping[str, Any], context: RunContext
) -> Iterator[RunEvent | RunResult | RunWaiting]:
    """Stream the graph: a step per node update, then the result or the wait."""
    from langgraph.errors import GraphRecursionError
    from langgraph.types import Command

    config: dict[str, Any] = {
        "configurable": {"thread_id": context.execution_id},
        "recursion_limit": options.recursion_limit,
    }
    payload: Any
    if context.resume is not None:
        payload = Command(resume=context.resume.get("answer"))
    elif context.attempt > 1 and _unfinished(graph, config):
        payload = None  # a retried attempt: go on from the last checkpoint
    else:
        payload = dict(inputs) if code_first else start_state(inputs)
    interrupted: list[Any] = []
    values: dict[str, Any] = {}
    code_steps: list[dict[str, Any]] = []
    mark, started = METER.snapshot(), time.perf_counter()
    try:
        chunks = graph.stream(payload, config, stream_mode=["updates", "values"], durability=options.durability)
        for mode, chunk in chunks:
            if mode == "values":
                values = dict(chunk) if isinstance(chunk, Mapping) else {"value": chunk}
                continue
            for node, update in (chunk or {}).items():
                if node == "__interrupt__":
                    interrupted.extend(update)
                elif code_first:
                    record = step_record(node, "node", to_json(update), mark, started)
                    mark, started = METER.snapshot(), time.perf_counter()
                    code_steps.append(record)
                    yield step_event(record, NAME)
                else:
                    for step in (update or {}).get("steps", []):
                        yield step_event(step, NAME)
    except GraphRecursionError as exc:
        raise RunError(
            ErrorKind.CONFIGURATION, f"the graph ran more than {options.recursion_limit} steps: {exc}"
        ) from exc
    except RunError:
        raise
    except Exception as exc:
        raise failure(exc) from exc
    steps = code_steps if code_first else list(values.get("steps") or [])
    yield _end(graph, config, code_first, values, steps, interrupted, context)


def _end(
    graph: Any,
    config: dict[str, Any],
    code_first: bool,
    values: dict[str, Any],
    steps: list[dict[str, Any]],
    interrupted: list[Any],
    context: RunContext,
) -> RunResult | RunWaiting:
    outputs: dict[str, Any] = {"steps": steps, "usage": total_usage(steps), "framework": NAME}
    if interrupted:
        if not context.state_url:
            raise RunError(
                ErrorKind.CONFIGURATION,
                "the graph waits for a human (interrupt), and this worker has no runs' database to keep its "
                "checkpoint until the answer comes: configure --OrchestratorApp.runs_database_admin_url "
                "(each organization's own, env ORCHESTRATOR_RUNS_DATABASE_ADMIN_URL) or "
                "--OrchestratorApp.runs_database_url (one for all, env ORCHESTRATOR_RUNS_DATABASE_URL)",
            )
        asked = to_json(getattr(interrupted[0], "value", interrupted[0]))
        node = _waiting_node(graph, config, asked)
        request = {**asked, "node": node} if isinstance(asked, dict) else {"value": asked, "node": node}
        return RunWaiting(node=node, request=request, outputs={**outputs, "waiting_for": request})
    if code_first:
        return RunResult(outputs={"output": to_json(values), **outputs})
    return RunResult(
        outputs={"output": values.get("output", values.get("last")), **outputs, "values": values.get("values") or {}}
    )
