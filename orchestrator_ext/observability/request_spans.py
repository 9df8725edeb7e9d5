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

The instrumentation calls these by its module's global names: :func:`install` points them
here and :func:`uninstall` puts them back (``tests/test_tracing.py`` fails if an upgrade
renames them). Imported only when tracing is on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from opentelemetry.instrumentation import tornado as tornado_instrumentation
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
)
_ORIGINAL: dict[str, Any] = {name: LOOKUPS[name] for name in REPLACED}
_FIND_RULE: Callable[[RequestHandler], Rule | None] = _ORIGINAL["find_matched_rule"]
_ROUTE_OF: Callable[[Rule, RequestHandler], str | None] = _ORIGINAL["route_from_rule"]
_SPAN_NAME: Callable[[RequestHandler], str] = _ORIGINAL["_get_default_span_name"]
_SANITIZE: Callable[[str | None], str | None] = _ORIGINAL["sanitize_method"]
_REDACT: Callable[[str], str] = _ORIGINAL["redact_url"]
_CUSTOM_HEADERS: Callable[[str], list[str]] = _ORIGINAL["get_custom_headers"]
#: what ``sanitize_method`` answers for these whatever the environment says: themselves
_STANDARD_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY"))
_NO_RULE = object()
_routes: dict[tuple[Rule, type[RequestHandler], str], str | None] = {}
_custom_headers: dict[str, list[str]] = {}


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


def install() -> None:
    LOOKUPS["find_matched_rule"] = _matched_rule
    LOOKUPS["route_from_rule"] = _route
    LOOKUPS["_record_prepare_metrics"] = LOOKUPS["_record_on_finish_metrics"] = _no_http_metrics
    LOOKUPS["_get_default_span_name"] = _span_name
    LOOKUPS["sanitize_method"] = _sanitize_method
    LOOKUPS["redact_url"] = _path_only
    LOOKUPS["get_custom_headers"] = _kept_custom_headers


def uninstall() -> None:
    LOOKUPS.update(_ORIGINAL)
    _routes.clear()
    _custom_headers.clear()
