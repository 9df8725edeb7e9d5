"""The request span of tornado's instrumentation, for less: what it recomputes per request, computed once.

py-spy on a traced server under load (share of the server's samples, ``GET /agents``):
the instrumentation's own work around a request was ~10 %, of which the SDK's span ~2.5 %
and the rest lookups whose answer does not change between requests:

- the span's name matched the request against every route of the application (a
  jupyter-server has over a hundred) and read the handler method's signature; the API's
  handlers know their route template (``route``, set by ``handlers.base.route_table``), which
  is the name the span ends up with: :func:`_span_name` uses it and looks the rule up (once,
  :func:`_matched_rule`) only for the server's other handlers;
- ``sanitize_method`` read the environment and built a list of methods, three times a
  request: :func:`_sanitize_method` answers the standard methods from a set;
- ``redact_url`` parsed the URI twice to redact credentials and query values: a request's
  URI is a path (no credentials), and its query string is never recorded (``?token=``
  authenticates): :func:`_path_only` cuts it, so it never reaches the span at all;
- ``get_custom_headers`` read two environment variables a request: read at start;
- HTTP metrics built four attribute dicts a request for meters no provider receives
  (Prometheus has the server's own request metrics): not built.

- ``_start_span`` built the span's attributes from the request one helper call at a time (about
  fifteen of them, each asking the stability mode again), extracted a parent context from the
  headers and attached it, then attached the span in a second context with ``use_span`` (a
  generator-based context manager), and set ``tornado.handler`` and the route on the started
  span one locked, validated call each: :func:`_start_span` starts the same span with the same
  attributes (those that do not change between a connection's requests computed once, by the
  instrumentation's own function), given at its start, in one context attached once. It leaves
  the rare cases (a request inside a span, another semantic-conventions mode, request
  attributes asked for by ``OTEL_PYTHON_TORNADO_TRACED_REQUEST_ATTRS``, a response propagator)
  to the instrumentation.

The instrumentation calls these by its module's global names: :func:`install` points them
here and :func:`uninstall` puts them back (``tests/tracing/test_request_spans.py`` fails if an upgrade
renames them). Imported only when tracing is on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, cast

from opentelemetry import context, propagate, trace
from opentelemetry.instrumentation import tornado as tornado_instrumentation
from opentelemetry.instrumentation._semconv import _StabilityMode
from opentelemetry.instrumentation.propagators import get_global_response_propagator
from opentelemetry.propagators import textmap
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from tornado.routing import Rule
from tornado.web import RequestHandler

#: the instrumentation's module namespace and its own functions, which :func:`uninstall` puts back
LOOKUPS = vars(tornado_instrumentation)
REPLACED = (
    "find_matched_rule",
    "route_from_rule",
    "_record_prepare_metrics",
    "_record_on_finish_metrics",
    "_get_default_span_name",
    "sanitize_method",
    "redact_url",
    "get_custom_headers",
    "_start_span",
)
_ORIGINAL: dict[str, Any] = {name: LOOKUPS[name] for name in REPLACED}
_FIND_RULE: Callable[[RequestHandler], Rule | None] = _ORIGINAL["find_matched_rule"]
_ROUTE_OF: Callable[[Rule, RequestHandler], str | None] = _ORIGINAL["route_from_rule"]
_SPAN_NAME: Callable[[RequestHandler], str] = _ORIGINAL["_get_default_span_name"]
_SANITIZE: Callable[[str | None], str | None] = _ORIGINAL["sanitize_method"]
_REDACT: Callable[[str], str] = _ORIGINAL["redact_url"]
_CUSTOM_HEADERS: Callable[[str], list[str]] = _ORIGINAL["get_custom_headers"]
_START_SPAN: Callable[[Any, RequestHandler, Any], Any] = _ORIGINAL["_start_span"]
_ATTRIBUTES_OF: Callable[[Any, Any], dict[str, Any]] = LOOKUPS["_get_attributes_from_request"]
_TRACE_CONTEXT: Callable[[Any, Any, Any], Any] = LOOKUPS["_TraceContext"]
#: what varies from request to request in a span's attributes: set per request, the rest is kept
_PER_REQUEST = ("http.target", "http.url")
#: what ``sanitize_method`` answers for these whatever the environment says: themselves
_STANDARD_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"))
_NO_RULE = object()
_routes: dict[tuple[Rule, type[RequestHandler], str], str | None] = {}
_custom_headers: dict[str, list[str]] = {}
#: the attributes that do not change between requests of one client, by what they are computed from
_constant: dict[tuple[Any, ...], dict[str, Any]] = {}
_KEPT = 1024


def _matched_rule(handler: RequestHandler) -> Rule | None:
    """The instrumentation's rule lookup, once per request however often it is asked."""
    found = handler.__dict__.get("_otel_matched_rule", _NO_RULE)
    if found is _NO_RULE:
        found = handler.__dict__["_otel_matched_rule"] = _FIND_RULE(handler)
    return cast("Rule | None", found)


def _route(rule: Rule, handler: RequestHandler) -> str | None:
    """The instrumentation's route template of a rule (it reads the method's signature every time), kept.

    Keyed by rule, handler class and method: as many entries as the application has routes and methods.
    """
    key = (rule, type(handler), handler.request.method or "")
    if key not in _routes:
        _routes[key] = _ROUTE_OF(rule, handler)
    return _routes[key]


def _span_name(handler: RequestHandler) -> str:
    """``<method> <route template>`` of an API handler, no route matched; others as the instrumentation names them."""
    route = getattr(type(handler), "route", "")
    method = handler.request.method
    if route and isinstance(route, str) and method in _STANDARD_METHODS:
        return f"{method} {route}"
    return _SPAN_NAME(handler)


def _sanitize_method(method: str | None) -> str | None:
    return method if method in _STANDARD_METHODS else _SANITIZE(method)


def _path_only(uri: str) -> str:
    """A request URI without its query string (a path has no credentials to redact; others are redacted first)."""
    if not uri.startswith("/") or uri.startswith("//"):
        uri = _REDACT(uri)
    return uri.partition("?")[0]


def _kept_custom_headers(variable: str) -> list[str]:
    if variable not in _custom_headers:
        _custom_headers[variable] = _CUSTOM_HEADERS(variable)
    return list(_custom_headers[variable])


def _no_http_metrics(*_args: Any) -> None:
    """In place of the instrumentation's HTTP metrics, which go nowhere: this process sets no meter provider."""


class _Activation:
    """What ``use_span(span, end_on_exit=True)`` does when the instrumentation's ``_finish_span`` exits it."""

    __slots__ = ("span", "token")

    def __init__(self, span: Span, token: object) -> None:
        self.span = span
        self.token = token

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> Literal[False]:
        context.detach(self.token)  # type: ignore[arg-type]
        if isinstance(error, Exception) and self.span.is_recording():
            self.span.record_exception(error)
            self.span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        self.span.end()
        return False


def _constant_attributes(handler: RequestHandler) -> dict[str, Any]:
    """The request span's attributes but its URL, computed by the instrumentation once per kind of request."""
    request = handler.request
    connection_context = getattr(request.connection, "context", None)
    key = (
        type(handler),
        request.method,
        request.protocol,
        request.host,
        request.version,
        request.remote_ip,
        request.headers.get("user-agent"),
        getattr(connection_context, "_orig_remote_ip", None),
    )
    found = _constant.get(key)
    if found is None:
        found = dict(_ATTRIBUTES_OF(request, _StabilityMode.DEFAULT))
        for name in _PER_REQUEST:
            found.pop(name, None)
        found["tornado.handler"] = f"{type(handler).__module__}.{type(handler).__qualname__}"
        if len(_constant) >= _KEPT:
            _constant.clear()
        _constant[key] = found
    return found


def _start_span(tracer: trace.Tracer, handler: RequestHandler, mode: Any) -> Any:
    """The instrumentation's request span, current until its ``_finish_span``, for less (see the module's docstring)."""
    route = getattr(type(handler), "route", "")  # the API's handlers' template (handlers.base.route_table)
    if (
        mode is not _StabilityMode.DEFAULT
        or LOOKUPS["_traced_request_attrs"]
        or get_global_response_propagator() is not None  # type: ignore[no-untyped-call]
        or trace.get_current_span() is not trace.INVALID_SPAN
    ):
        traced = _START_SPAN(tracer, handler, mode)
        if route and isinstance(route, str) and traced.span.is_recording():
            traced.span.set_attribute("http.route", route)
        return traced
    request = handler.request
    attributes = dict(_constant_attributes(handler))
    path = _path_only(request.uri or "")
    attributes["http.target"] = attributes["http.url"] = path
    if route and isinstance(route, str):
        attributes["http.route"] = route
    parent = propagate.extract(request.headers, getter=textmap.default_getter)
    span = tracer.start_span(
        _span_name(handler), context=parent, kind=SpanKind.SERVER, attributes=attributes, start_time=time.time_ns()
    )
    token = context.attach(trace.set_span_in_context(span, parent))
    traced = _TRACE_CONTEXT(_Activation(span, token), span, None)
    setattr(handler, LOOKUPS["_HANDLER_CONTEXT_KEY"], traced)
    return traced


def install() -> None:
    LOOKUPS["find_matched_rule"] = _matched_rule
    LOOKUPS["route_from_rule"] = _route
    LOOKUPS["_record_prepare_metrics"] = LOOKUPS["_record_on_finish_metrics"] = _no_http_metrics
    LOOKUPS["_get_default_span_name"] = _span_name
    LOOKUPS["sanitize_method"] = _sanitize_method
    LOOKUPS["redact_url"] = _path_only
    LOOKUPS["get_custom_headers"] = _kept_custom_headers
    LOOKUPS["_start_span"] = _start_span


def uninstall() -> None:
    LOOKUPS.update(_ORIGINAL)
    _routes.clear()
    _custom_headers.clear()
    _constant.clear()
