"""The PyPI configurable-http-proxy, with no secret in its log: ``python -m orchestrator_ext.hub.proxy``.

That proxy is a tornado application, and tornado's access log writes the whole URI of every
request it answers with a 4xx or 5xx (``404 GET /user/ada/?token=... (127.0.0.1)``); the proxy
sends that log to its standard error, which is the hub's log. JupyterHub and jupyter-server scrub
tokens from their own access logs; this wrapper does the same for the proxy: every query value in
tornado's access log becomes ``[secret]`` (names stay, so the log still says what was asked), then
it runs the proxy's own command line unchanged. hub_config/team.py makes the hub start the proxy
through it.
"""

from __future__ import annotations

import logging
import re

#: a query parameter's value: from "=" to the next "&", space or end
_QUERY_VALUE = re.compile(r"([?&][^=&\s?#]*=)[^&\s#]*")


def scrub(text: str) -> str:
    """``text`` with the value of every query parameter of every URL in it replaced."""
    return _QUERY_VALUE.sub(r"\1[secret]", text)


class QueryValueFilter(logging.Filter):
    """Rewrites a record's message and arguments so that no query value reaches any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def install() -> None:
    """Scrub the loggers that may print a request's URI: tornado's access log and the proxy's own."""
    for name in ("tornado.access", "tornado.general", "configurable_http_proxy"):
        logging.getLogger(name).addFilter(QueryValueFilter())


def main() -> None:
    install()
    from configurable_http_proxy.cli import main as proxy  # type: ignore[import-untyped]

    proxy()


if __name__ == "__main__":
    main()
