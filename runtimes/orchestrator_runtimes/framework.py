"""``FrameworkRuntime``: what the LangGraph, CrewAI and Agno runtimes share, written once.

Like papermill's ``Engine``, the base holds the pipeline and each framework
fills in its steps:

- **spec checks**: ``options`` and each node's ``config`` are validated by the
  framework's pydantic models (:attr:`FrameworkRuntime.options_model`,
  :attr:`FrameworkRuntime.node_models`), whose JSON schemas also feed
  ``/schemas/workflow-spec.json``; node types the framework ignores (the
  editor's ``input``/``output``) are skipped; :meth:`FrameworkRuntime.graph_problems`
  adds the rules between nodes;
- **the framework's import** is guarded: a worker without it answers with the
  extra to install;
- **code-first arguments** are built from the callable's signature
  (:func:`accepted_arguments`), each made only when asked for;
- **the run loop** for frameworks that block (a crew, an Agno team): the work
  runs in a thread and reports through a queue (:func:`run_in_thread`);
- **exception chains** are walked (:func:`causes`, :func:`endpoint_of`) to find
  the model endpoint a failure came from;
- **steps and tokens**: :class:`.tracking.StepTracker` and :func:`.models.usage_in`.
"""

from __future__ import annotations

import abc
import importlib
import importlib.util
import inspect
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ValidationError

from .errors import ErrorKind, RunError, SpecError, invalid_spec

if TYPE_CHECKING:
    from .models import ModelEndpoint
    from .runtime import RunContext, RunEvent, RunResult, RunWaiting
    from .spec import WorkflowSpec

Problems = list[tuple[str, str]]
ModelT = TypeVar("ModelT", bound=BaseModel)
#: how long a run's thread is given to end after the run's consumer went away
JOIN_SECONDS = 1.0


# ---- spec checks through pydantic models --------------------------------------------------------


def _location(loc: tuple[Any, ...]) -> list[str]:
    """A pydantic error's location without the union members it tried (``memory.bool`` is ``memory``)."""
    return [str(part) for part in loc if not _UNION_TAG.match(str(part))]


_UNION_TAG = re.compile(r"^(bool|str|int|float|list|dict|none|[A-Z]\w*|.*\[.*\])$")


def _problem_text(error: Mapping[str, Any], what: str, model: type[BaseModel]) -> str:
    """A pydantic error as a sentence naming the setting (pydantic's own words say only "Field required")."""
    loc = _location(error.get("loc", ()))
    name = ".".join(loc) if loc else what
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        known = ", ".join(sorted(model.model_fields))
        return f"unknown {what} (known: {known})"
    if kind == "missing":
        field = model.model_fields.get(name)
        about = f": {field.description}" if field is not None and field.description else ""
        return f"'{name}' is required{about}"
    if kind in ("literal_error", "enum"):
        return f"{error.get('input')!r} is not allowed for '{name}': {message}"
    if kind == "value_error":
        return f"'{name}' {message}" if loc else message
    return f"'{name}': {message[:1].lower()}{message[1:]}" if loc else message


def parse_model(model: type[ModelT], data: Any, where: str, what: str) -> tuple[ModelT | None, Problems]:
    """``data`` read as ``model``, or the problems found, each at ``<where>.<field>`` (one per field).

    ``what`` names a setting in messages: ``option``, ``agent setting``...
    """
    try:
        return model.model_validate(data if data is not None else {}), []
    except ValidationError as exc:
        problems: dict[str, str] = {}
        for error in exc.errors(include_url=False):
            loc = ".".join(_location(error["loc"]))
            problems.setdefault(f"{where}.{loc}" if loc else where, _problem_text(error, what, model))
        return None, list(problems.items())


# ---- code-first arguments -----------------------------------------------------------------------


def accepted_arguments(function: Callable[..., Any], offered: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """The arguments ``function`` accepts among ``offered`` (name -> how to make it), each made only if taken.

    A ``**kwargs`` callable takes every one; a signature Python cannot read takes none.
    """
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return {name: make() for name, make in offered.items() if takes_any or name in parameters}


# ---- exception chains ---------------------------------------------------------------------------


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it (``__cause__``, else ``__context__``), at most 20, no loops."""
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found and len(found) < 20:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def request_url(exc: BaseException) -> str:
    """The URL of the HTTP request ``exc`` is about (httpx and OpenAI errors carry one), or ``""``."""
    try:
        return str(exc.request.url)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - httpx raises RuntimeError when an error has no request
        return ""


def endpoint_of(exc: BaseException, endpoints: list[ModelEndpoint]) -> ModelEndpoint | None:
    """The endpoint whose URL a request in ``exc``'s chain went to, else the first one, else None."""
    for cause in causes(exc):
        url = request_url(cause)
        for endpoint in endpoints:
            if url and url.startswith(endpoint.base_url):
                return endpoint
    return endpoints[0] if endpoints else None


def run_error_in(exc: BaseException) -> RunError | None:
    """A :class:`RunError` in ``exc``'s chain (a node or tool of ours raised it inside the framework)."""
    return next((cause for cause in causes(exc) if isinstance(cause, RunError)), None)


# ---- the thread-and-queue run loop --------------------------------------------------------------


def run_in_thread(
    work: Callable[[], Any],
    events: queue.Queue[tuple[str, Any]],
    name: str,
    finish: Callable[[Any], RunResult],
    fail: Callable[[BaseException], RunError],
) -> Iterator[RunEvent | RunResult]:
    """Run ``work`` in a thread; yield the ``("step", event)`` items it puts on ``events`` as they come.

    When ``work`` returns, ``finish(value)`` is the run's result; when it raises, ``fail(exc)`` the run's
    error (a :class:`RunError` passes through). The thread is daemonic: a run whose consumer went away
    leaves it to the process's end.
    """

    def target() -> None:
        try:
            events.put(("done", work()))
        except BaseException as exc:  # noqa: BLE001 - handed to the run's generator, which maps it
            events.put(("error", exc))

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    try:
        while True:
            kind, value = events.get()
            if kind == "step":
                yield value
            elif kind == "error":
                if isinstance(value, RunError):
                    raise value
                raise fail(value) from value
            else:
                yield finish(value)
                return
    finally:
        thread.join(timeout=JOIN_SECONDS)


# ---- the base -----------------------------------------------------------------------------------


class FrameworkRuntime(abc.ABC):
    """A framework's runtime: subclasses declare their models and implement :meth:`execute`."""

    name: ClassVar[str]
    #: the framework's name for people ("LangGraph")
    title: ClassVar[str]
    #: the module whose presence means the framework is installed, and the extra that installs it
    framework_module: ClassVar[str]
    extra: ClassVar[str]
    capabilities: ClassVar[Mapping[str, bool]]
    options_model: ClassVar[type[BaseModel]]
    #: node type -> the pydantic model of its ``config``
    node_models: ClassVar[Mapping[str, type[BaseModel]]]
    #: node types the framework skips (they are there for the editor)
    ignored_types: ClassVar[frozenset[str]] = frozenset()
    #: modules a warm runner imports ahead of a job
    preloaded: ClassVar[tuple[str, ...]] = ()
    #: environment set before the framework is imported (telemetry off)
    quiet_environment: ClassVar[Mapping[str, str]] = {}
    #: how a run's error names the spec ("the crew's spec")
    spec_what: ClassVar[str] = "the workflow spec"

    # ---- the framework's import

    def missing(self) -> str | None:
        """Why the framework cannot be imported here (with the extra to install), or None."""
        try:
            found = importlib.util.find_spec(self.framework_module)
        except (ImportError, ValueError):
            found = None
        if found is None or (found.origin is None and not found.submodule_search_locations):
            return (
                f"{self.title} is not installed on this worker: pip install 'orchestrator[{self.extra}]' "
                f"(the '{self.name}' runtime needs the '{self.framework_module}' package)"
            )
        return None

    def require(self) -> None:
        """Raise the configuration error of a missing framework."""
        problem = self.missing()
        if problem is not None:
            raise RunError(ErrorKind.CONFIGURATION, problem, runtime=self.name)

    def preload(self) -> None:
        """Import the framework and the parts a run uses (a warm runner does this before its job)."""
        os.environ.update(self.quiet_environment)
        self.require()
        for module in self.preloaded:
            importlib.import_module(module)
        self.warm_up()

    def warm_up(self) -> None:
        """Run something tiny so a first real run finds the framework's lazy caches filled (optional)."""
        return None  # nothing to warm by default: a hook, not an abstract step

    # ---- the spec

    def validate(self, spec: WorkflowSpec) -> list[SpecError]:
        """What keeps ``spec`` from running (fields relative to the spec, ``nodes.1.config.role``)."""
        return [SpecError(where, message) for where, message in self.spec_problems(spec)]

    def options(self, spec: WorkflowSpec) -> Any:
        """``spec.options`` as :attr:`options_model` (call on a spec that validated)."""
        return self.options_model.model_validate(spec.options)

    def config(self, node: Any) -> Any:
        """A node's ``config`` as its type's model (call on a spec that validated)."""
        return self.node_models[str(node.type)].model_validate(node.config)

    def spec_problems(self, spec: WorkflowSpec) -> Problems:
        """The options, every node's config, then :meth:`graph_problems` (once the parts are sound).

        A code-first spec (``options.callable``) takes no nodes but the ignored ones: its callable builds
        everything.
        """
        options, problems = parse_model(self.options_model, spec.options, "options", "option")
        code_first = spec.options.get("callable") is not None
        problems.extend(self.node_problems(spec, code_first=code_first))
        if not code_first:
            if options is None:  # the rules between nodes still say what they can: read what the options give
                known = {k: v for k, v in spec.options.items() if k in self.options_model.model_fields}
                options = self.options_model.model_construct(**known)
            problems.extend(self.graph_problems(spec, options))
        return problems

    def node_problems(self, spec: WorkflowSpec, *, code_first: bool = False) -> Problems:
        """Each node's type and ``config`` against :attr:`node_models` (ignored types skipped)."""
        problems: Problems = []
        known = ", ".join(f"'{kind}'" for kind in self.node_models)
        for index, node in enumerate(spec.nodes):
            kind = str(node.type)
            if kind in self.ignored_types:
                continue
            if code_first:
                problems.append(
                    (f"nodes.{index}", "a code-first workflow (options.callable) is built by its callable: no nodes")
                )
                continue
            model = self.node_models.get(kind)
            if model is None:
                problems.append(
                    (f"nodes.{index}.type", f"the {self.name} runtime runs {known} nodes, not '{kind}' nodes")
                )
                continue
            _, found = parse_model(model, node.config, f"nodes.{index}.config", f"{kind} setting")
            problems.extend(found)
        return problems

    def graph_problems(self, spec: WorkflowSpec, options: Any) -> Problems:
        """The rules between nodes (references, order, cycles); none by default."""
        return []

    @classmethod
    def json_schemas(cls) -> dict[str, Any]:
        """``{"options": schema, "nodes": {type: config schema}}``: what ``/schemas/workflow-spec.json`` shows."""
        return {
            "options": cls.options_model.model_json_schema(),
            "nodes": {kind: model.model_json_schema() for kind, model in cls.node_models.items()},
            "ignored": sorted(cls.ignored_types),
        }

    # ---- the run

    def run(
        self, spec: WorkflowSpec, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        """Check the spec, make sure the framework is here, then :meth:`execute`."""
        problems = self.spec_problems(spec)
        if problems:
            raise invalid_spec(problems, self.spec_what)
        self.require()
        # for the whole process: frameworks read their telemetry settings once, when first imported
        os.environ.update(self.quiet_environment)
        yield from self.execute(spec, self.options(spec), inputs, context)

    @abc.abstractmethod
    def execute(
        self, spec: WorkflowSpec, options: Any, inputs: Mapping[str, Any], context: RunContext
    ) -> Iterator[RunEvent | RunResult | RunWaiting]:
        """Run a valid spec on the framework."""
