"""What a handler method declares for the OpenAPI document (``@operation``), and how the documented methods
of a route table are found.

Every handler method under ``/orchestrator/api/v1`` carries an :class:`Operation` (``@operation``); the
handlers import it (through :mod:`orchestrator_ext.openapi`), and the document is built from it in
:mod:`orchestrator_ext.openapi`. This module imports neither: a handler's declaration does not load the
document's builder, and nothing here knows of ``handlers``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

#: where the REST API lives under the server's base URL
API_PREFIX = "orchestrator/api/v1"
HTTP_METHODS = ("get", "put", "post", "patch", "delete")


@dataclass(frozen=True)
class Header:
    """A request header an operation reads, and the form the server accepts (a regular expression)."""

    description: str
    pattern: str | None = None


@dataclass(frozen=True)
class Operation:
    """What the OpenAPI document says about one handler method."""

    summary: str
    responses: dict[int, type[BaseModel] | None]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    permission: str | None = None
    tags: tuple[str, ...] = ()
    headers: dict[str, Header] = field(default_factory=dict)
    authenticated: bool = True
    #: responses that are not JSON: status -> media types (text/event-stream, text/plain, text/html);
    #: where the status also has a model, the model's schema under these types instead of application/json
    media: dict[int, tuple[str, ...]] = field(default_factory=dict)
    #: the path parameter the new resource's id fills (``agent_id``): links to the operations that take it
    creates: str | None = None
    #: the response field holding that id
    created_id: str = "id"
    #: for a list: the path parameter its items' ids fill (links from the first item to its operations)
    lists: str | None = None
    #: the item field holding that id
    listed_id: str = "id"
    #: whether the body may be left out (a POST whose fields are all optional); PUT and PATCH need one
    body_optional: bool = False


F = TypeVar("F", bound=Callable[..., Any])


def operation(
    summary: str,
    *,
    responses: dict[int, type[BaseModel] | None],
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    permission: str | None = None,
    tags: tuple[str, ...] = (),
    headers: dict[str, Header] | None = None,
    authenticated: bool = True,
    media: dict[int, tuple[str, ...]] | None = None,
    creates: str | None = None,
    created_id: str = "id",
    body_optional: bool = False,
    lists: str | None = None,
    listed_id: str = "id",
) -> Callable[[F], F]:
    """Describe a handler method for the OpenAPI document (``__openapi__`` on the function).

    Put it innermost (right above ``async def``): the auth decorators copy it outward.
    ``headers`` maps request header names to their description and form.
    """
    described = Operation(
        summary=summary,
        responses=responses,
        body=body,
        query=query,
        permission=permission,
        tags=tags,
        headers=headers or {},
        authenticated=authenticated,
        media=media or {},
        creates=creates,
        created_id=created_id,
        body_optional=body_optional,
        lists=lists,
        listed_id=listed_id,
    )

    def mark(func: F) -> F:
        func.__openapi__ = described  # type: ignore[attr-defined]
        return func

    return mark


#: a route table as jupyter-server takes it: (pattern, handler class[, its keyword arguments])
Routes = Sequence[tuple[Any, ...]]


@dataclass(frozen=True)
class Endpoint:
    """One documented handler method: its route template, HTTP method and description."""

    route: str
    method: str
    handler: type[Any]
    operation: Operation


def endpoints(routes: Routes) -> list[Endpoint]:
    """Every handler method of ``routes`` under the API prefix that carries ``@operation``."""
    found = []
    for pattern, handler, *_ in routes:
        if not pattern.startswith(f"/{API_PREFIX}/"):
            continue
        for method in HTTP_METHODS:
            described = getattr(getattr(handler, method, None), "__openapi__", None)
            if isinstance(described, Operation):
                found.append(Endpoint(handler.route, method, handler, described))
    return found


def body_required(method: str, op: Operation) -> bool:
    """A PUT or PATCH always needs its body (an empty one changes nothing by mistake); a POST unless
    every field is optional and the operation says so (``body_optional``: ``execute`` with defaults)."""
    return method.lower() in ("put", "patch") or not op.body_optional
