"""``observability.request_spans``, our lean path through tornado's instrumentation: the same answers as the
instrumentation's own functions, computed once where they do not change, and the same span."""

from __future__ import annotations

from tests.tracing.memory import memory_tracer, span_shape


def test_the_request_span_computes_per_request_only_what_changes() -> None:
    """``request_spans`` replaces the tornado instrumentation's per-request lookups with kept or cheaper answers.

    The same answers as the instrumentation's own functions; fails if an upgrade stops calling them by these names.
    """
    import tornado.httputil
    import tornado.web
    from opentelemetry.instrumentation import tornado as instrumentation
    from opentelemetry.util.http import redact_url, sanitize_method

    from orchestrator_ext.observability import request_spans

    def uses(function: str, name: str) -> bool:
        return name in vars(instrumentation)[function].__code__.co_names

    assert uses("_get_default_span_name", "find_matched_rule")
    assert uses("_get_default_span_name", "route_from_rule")
    assert uses("_start_span", "_get_default_span_name")
    assert uses("_prepare", "_record_prepare_metrics")
    assert uses("_on_finish", "_record_on_finish_metrics")
    assert uses("_get_attributes_from_request", "redact_url")
    assert uses("_get_attributes_from_request", "sanitize_method")
    assert uses("_collect_custom_request_headers_attributes", "get_custom_headers")

    class Agent(tornado.web.RequestHandler):
        def get(self, agent_id: str) -> None:
            self.write(agent_id)

    class ApiAgent(Agent):
        route = "/agents/{agent_id}"

    application = tornado.web.Application(
        [(r"/other", tornado.web.RequestHandler), (r"/agents/([^/]+)", Agent), (r"/api/agents/([^/]+)", ApiAgent)]
    )

    def handler(kind: type[Agent], path: str, method: str = "GET") -> Agent:
        connection = tornado.httputil.HTTPConnection()
        connection.set_close_callback = lambda callback: None  # type: ignore[method-assign]
        start = tornado.httputil.RequestStartLine(method, path, "HTTP/1.1")
        headers = tornado.httputil.HTTPHeaders({"Host": "127.0.0.1"})
        request = tornado.httputil.HTTPServerRequest(connection=connection, start_line=start, headers=headers)
        return kind(application, request)

    plain = handler(Agent, "/agents/42?token=secret")
    looked_up: list[object] = []
    original = request_spans._FIND_RULE
    request_spans._FIND_RULE = lambda h: looked_up.append(h) or original(h)
    try:
        rules = {id(request_spans._matched_rule(plain)) for _ in range(5)}
        named = request_spans._span_name(handler(ApiAgent, "/api/agents/42"))
    finally:
        request_spans._FIND_RULE = original
    assert len(looked_up) == 1  # one lookup for the plain handler; the API one was named without any
    assert len(rules) == 1
    assert named == "GET /agents/{agent_id}"
    rule = request_spans._matched_rule(plain)
    assert rule is not None
    assert request_spans._route(rule, plain) == request_spans._route(rule, plain) == "/agents/{agent_id}"
    request_spans.install()
    try:
        assert instrumentation._get_default_span_name(plain) == "GET /agents/{agent_id}"
        attributes = instrumentation._get_attributes_from_request(plain.request, instrumentation._StabilityMode.DEFAULT)
    finally:
        request_spans.uninstall()
    assert attributes["http.target"] == attributes["http.url"] == "/agents/42"  # no query string, ever
    assert vars(instrumentation)["sanitize_method"] is sanitize_method
    for method in ("GET", "PUT", "QUERY", "get", "BREW", None):
        assert request_spans._sanitize_method(method) == sanitize_method(method)  # type: ignore[arg-type]
    for uri in ("/a/b?token=x&y=1", "/a", "http://user:pw@host/p?token=x", "//host/p?q"):
        assert request_spans._path_only(uri) == redact_url(uri).partition("?")[0]


def test_the_request_span_is_the_instrumentations() -> None:
    """``request_spans._start_span``: the span tornado's instrumentation starts, with its route, ended as it ends it.

    A plain request, one continuing a caller's trace (``traceparent``), and one failing with a 500.
    """
    import tornado.httputil
    import tornado.web
    from opentelemetry import context, trace
    from opentelemetry.instrumentation import tornado as instrumentation

    from orchestrator_ext.observability import request_spans

    class Agent(tornado.web.RequestHandler):
        route = "/agents/{agent_id}"

    application = tornado.web.Application([(r"/api/agents/([^/]+)", Agent)])
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    def handler(parent: str | None) -> Agent:
        connection = tornado.httputil.HTTPConnection()
        connection.set_close_callback = lambda callback: None  # type: ignore[method-assign]
        start = tornado.httputil.RequestStartLine("GET", "/api/agents/42?token=secret", "HTTP/1.1")
        headers = {"Host": "127.0.0.1:8888", "User-Agent": "curl/8"} | ({"traceparent": parent} if parent else {})
        request = tornado.httputil.HTTPServerRequest(
            connection=connection, start_line=start, headers=tornado.httputil.HTTPHeaders(headers)
        )
        request.remote_ip = "127.0.0.1"
        return Agent(application, request)

    provider, tracer, memory = memory_tracer()
    mode = instrumentation._StabilityMode.DEFAULT
    cases = ((None, None), (caller, None), (None, ValueError("boom")))
    request_spans.install()
    try:
        for lean in (False, True):
            start = request_spans._start_span if lean else request_spans._START_SPAN
            for parent, error in cases:
                served = handler(parent)
                served._status_code = 500 if error else 200
                traced = start(tracer, served, mode)
                assert trace.get_current_span() is traced.span
                instrumentation._finish_span(tracer, served, error, mode)
                assert trace.get_current_span() is trace.INVALID_SPAN
            assert context.get_current() == {}
    finally:
        request_spans.uninstall()
    spans = memory.get_finished_spans()
    assert len(spans) == 6
    for original, ours in zip(spans[:3], spans[3:], strict=True):
        name, kind, attributes, status, parent, events = span_shape(original)
        assert span_shape(ours) == (
            name,
            kind,
            attributes | {"http.route": "/agents/{agent_id}"},
            status,
            parent,
            events,
        )
        assert ours.context.trace_id == original.context.trace_id or original.parent is None
    assert spans[4].context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    assert spans[3].attributes["http.target"] == "/api/agents/42"  # no query string
    assert spans[5].status.status_code.name == "ERROR"
    assert [event.name for event in spans[5].events] == ["exception"]
    provider.shutdown()
