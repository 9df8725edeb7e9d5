"""The runtime interface: what every framework runtime implements, and how runs report.

A runtime is found by name through the ``orchestrator.runtimes`` entry points
(:func:`load_runtime`). ``run(spec, inputs, context)`` is a generator: it
yields :class:`RunEvent` (log lines, steps) as the run goes, then one
:class:`RunResult`. A failure raises :class:`RunError` with a kind from the
error taxonomy, so the engine can tell the user what to fix and whether a
retry may help.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, PackageNotFoundError, entry_points, metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from .errors import ErrorKind, RunError, SpecError, invalid_spec

if TYPE_CHECKING:
    from .spec import WorkflowSpec

__all__ = [
    "CAPABILITIES",
    "ENTRY_POINT_GROUP",
    "ErrorKind",
    "RunContext",
    "RunError",
    "RunEvent",
    "RunResult",
    "RunWaiting",
    "RunnableRuntime",
    "Runtime",
    "SpecError",
    "installed_runtimes",
    "invalid_spec",
    "load_runtime",
    "runtime_capabilities",
]

ENTRY_POINT_GROUP = "orchestrator.runtimes"


@dataclass(frozen=True)
class RunEvent:
    """Something a run reports while it goes: ``log`` (``{"stream", "text"}``) or ``step`` (free-form)."""

    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class RunResult:
    """The end of a successful run: its outputs (JSON values by name)."""

    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunWaiting:
    """The end of a run that stopped for a human: what it asks, at which node; resumed with an answer."""

    node: str
    request: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunContext:
    """What a run knows about itself: ids, its own working directory, the integrations handed to it.

    ``default_model`` names the organization's default model integration (one of ``integrations``);
    ``state_url`` is the PostgreSQL database runs keep state in (checkpoints, memory, knowledge),
    None where the worker has none; ``resume`` holds the human's answer when a waiting run goes on;
    ``files_root`` is the notebook server's root directory, where code-first callables live.
    """

    execution_id: str
    attempt: int
    workdir: Path
    integrations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    default_model: str | None = None
    state_url: str | None = None
    resume: Mapping[str, Any] | None = None
    files_root: Path | None = None
    org_id: str | None = None
    agent_id: str | None = None
    workflow_id: str | None = None


@runtime_checkable
class Runtime(Protocol):
    """A runtime (entry point group ``orchestrator.runtimes``): it names a framework and checks its specs.

    Notebooks run through the engine's papermill pipeline, so the notebook runtime only validates; the
    framework runtimes also run (:class:`RunnableRuntime`), in a runner process.
    """

    name: str

    def validate(self, spec: WorkflowSpec) -> list[SpecError]:
        """What keeps ``spec`` from running on this runtime (empty: it can run)."""
        ...


@runtime_checkable
class RunnableRuntime(Runtime, Protocol):
    """A runtime a runner process runs: ``run`` yields events, then one result (or a wait)."""

    def run(
        self, spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        """Run ``spec`` with ``inputs``: events as they happen, then one result (or a wait); raises RunError."""
        ...


#: what each runtime can do, as ``GET /runtimes`` lists it
CAPABILITIES = ("streaming", "checkpoints", "multi_agent", "tools", "human_in_the_loop", "multi_modal", "gpu")


def runtime_capabilities(runtime: Runtime) -> dict[str, bool]:
    """The runtime's ``capabilities`` mapping, every known capability present (False when not declared)."""
    declared = getattr(runtime, "capabilities", {}) or {}
    return {name: bool(declared.get(name, False)) for name in CAPABILITIES}


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    """The ``orchestrator.runtimes`` entry points, read once per process (reading them takes ~50 ms)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def installed_runtimes() -> dict[str, str]:
    """Runtime name -> ``module:attr`` of every installed runtime."""
    return {name: ep.value for name, ep in _entry_points().items()}


_LOADED: dict[str, Runtime] = {}


#: frameworks agents may name whose runtime is not built yet: why a run of theirs cannot start
NOT_YET: dict[str, str] = {}


@functools.cache
def _extras() -> frozenset[str]:
    """The extras of the installed distribution (``pip install 'orchestrator[<extra>]'``)."""
    try:
        return frozenset(metadata("orchestrator").get_all("Provides-Extra") or [])
    except PackageNotFoundError:
        return frozenset()


def not_installed_message(name: str) -> str:
    """Why the runtime ``name`` cannot be loaded here, and what to install (only extras that exist)."""
    if name in NOT_YET:
        return NOT_YET[name]
    listed = ", ".join(sorted(installed_runtimes())) or "none"
    if name in _extras():
        return (
            f"the '{name}' runtime is not installed on this worker (installed: {listed}); "
            f"install it with: pip install 'orchestrator[{name}]'"
        )
    return f"there is no '{name}' runtime (installed: {listed})"


def load_runtime(name: str) -> Runtime:
    """The runtime ``name`` (one instance per process); a clear configuration error when it is not installed."""
    loaded = _LOADED.get(name)
    if loaded is not None:
        return loaded
    ep = _entry_points().get(name)
    if ep is None:
        raise RunError(ErrorKind.CONFIGURATION, not_installed_message(name), runtime=name)
    factory = ep.load()
    runtime = factory() if isinstance(factory, type) else factory
    if not isinstance(runtime, Runtime):
        raise RunError(ErrorKind.CONFIGURATION, f"the runtime '{name}' ({ep.value}) has no name and validate()")
    _LOADED[name] = runtime
    return runtime
