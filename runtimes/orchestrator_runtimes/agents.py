"""What the runtimes of agents (CrewAI, Agno) share, written once.

- **the spec's pieces**: configs that forbid unknown settings (:class:`StrictConfig`),
  the options they all take (:class:`AgentsOptions`: ``model``, ``temperature``),
  non-empty texts (:data:`Text`), model integrations (:data:`Integration`),
  tool references (:data:`ToolReference`) and
  the code-first ``callable`` (:func:`callable_check`), each with the same
  messages in both frameworks;
- **the runtime's head** (:class:`AgentsRuntime`): the editor's
  ``input``/``output`` nodes skipped, the capabilities of a runtime of agents;
- **the code-first call** (:func:`build_code_first`): the spec's callable,
  called with the arguments it asks for, its result checked.

LangGraph's spec reports its own error codes (``blank``, ``reference``) and
stays apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from .code import check_reference, load_callable
from .errors import ErrorKind, RunError
from .framework import FrameworkRuntime, accepted_arguments
from .models import ModelEndpoint, model_endpoint
from .tools import tool_problem

if TYPE_CHECKING:
    from .runtime import RunContext
    from .spec import WorkflowSpec

# ---- the spec's pieces --------------------------------------------------------------------------


def _nonempty(value: str) -> str:
    if not value.strip():
        raise ValueError("must be a non-empty text")
    return value


def _tool(value: str) -> str:
    problem = tool_problem(value)
    if problem:
        raise ValueError(problem)
    return value


Text = Annotated[str, AfterValidator(_nonempty)]
Integration = Annotated[str, AfterValidator(_nonempty), Field(description="A model integration's name.")]
ToolReference = Annotated[str, AfterValidator(_tool)]


def callable_check(returning: str) -> Callable[[str], str]:
    """The check of ``options.callable``: a ``module:function`` reference, whose problems say what the
    function must return (``returning``: "a function returning an agno Agent or Team")."""

    def check(value: str) -> str:
        problem = check_reference(value)
        if problem:
            raise ValueError(f"{problem} ({returning})")
        return value

    return check


class StrictConfig(BaseModel):
    """A node's config or the options: a setting the framework does not know is a problem, not ignored."""

    model_config = ConfigDict(extra="forbid")


class AgentsOptions(StrictConfig):
    """The options every runtime of agents takes; each framework's options add theirs."""

    model: Integration | None = Field(default=None, description="The model integration agents use.")
    temperature: float | None = Field(default=None, ge=0, le=2, description="Every model call's temperature.")


# ---- the runtime's head -------------------------------------------------------------------------

#: what a runtime of agents can do; each framework's capabilities are these with its differences
AGENTS_CAPABILITIES: Mapping[str, bool] = {
    "streaming": True,
    "multi_agent": True,
    "tools": True,
    "checkpoints": False,
    "human_in_the_loop": False,
    "multi_modal": False,
    "gpu": False,
}


class AgentsRuntime(FrameworkRuntime):
    """A runtime of agents from ``agent`` nodes (with tasks or teams), or built by the spec's callable."""

    ignored_types = frozenset({"input", "output"})
    capabilities: ClassVar[Mapping[str, bool]] = AGENTS_CAPABILITIES


# ---- the code-first call ------------------------------------------------------------------------


def build_code_first(
    spec: WorkflowSpec,
    context: RunContext,
    offered: Callable[[Callable[[], ModelEndpoint]], Mapping[str, Callable[[], Any]]],
    expected: tuple[type, ...],
    expected_name: str,
    fail: Callable[[BaseException, list[ModelEndpoint], str], RunError],
) -> tuple[Any, list[ModelEndpoint]]:
    """What the spec's ``options.callable`` builds, and the endpoint handed to it (if it asked for one).

    ``offered(endpoint)`` names the arguments the framework offers (``endpoint()`` makes the model endpoint,
    once); the callable gets those it accepts. An exception it raises becomes ``fail(exc, endpoints, why)``;
    a result that is none of ``expected`` (``expected_name``: "a crewai.Crew") is a configuration error.
    """
    reference = str(spec.options["callable"])
    build = load_callable(reference, context.files_root)
    endpoints: list[ModelEndpoint] = []

    def endpoint() -> ModelEndpoint:
        if not endpoints:
            endpoints.append(model_endpoint(context, spec.options.get("model") or None))
        return endpoints[0]

    arguments = accepted_arguments(build, offered(endpoint))
    try:
        built = build(**arguments)
    except RunError:
        raise
    except Exception as exc:
        raise fail(exc, endpoints, f"the callable '{reference}' raised") from exc
    if not isinstance(built, expected):
        raise RunError(
            ErrorKind.CONFIGURATION,
            f"the callable '{reference}' returned {type(built).__name__}, not {expected_name}",
            callable=reference,
        )
    return built, endpoints
