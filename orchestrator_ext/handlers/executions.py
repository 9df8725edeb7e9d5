"""``/workflows/{workflow_id}/execute``, ``/executions`` and ``/executions/{execution_id}``.

Starting an execution answers 202 with the queued execution and its
``Location``; with an ``Idempotency-Key``, a retry of the same request answers
200 with the same execution (``Idempotent-Replayed: true``).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Literal

import nbformat
from jupyter_server.auth.decorator import authorized
from pydantic import Field
from tornado import web

from ..errors import FieldError, ValidationFailed
from ..schemas.common import RequestModel
from ..schemas.executions import (
    DescribeExecution,
    ExecuteWorkflow,
    ListExecutionsQuery,
    ListExecutionsResponse,
    ResumeExecution,
)
from ..security.permissions import Permission
from .base import Header, OrchestratorHandler, operation, route_table
from .events import ExecutionEventsHandler, OrganizationEventsHandler

TAGS = ("executions",)
KEY_HEADER = "Idempotency-Key"
KEY_HELP = (
    "1-255 visible ASCII characters, unique per request: a retry with the same key and body returns "
    "the same execution; the same key with another body is refused (409)."
)
KEY_PATTERN = "^[!-~]{1,255}$"
_KEY = re.compile(KEY_PATTERN[1:-1])


def parse_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _KEY.fullmatch(value):
        raise ValidationFailed(
            "The Idempotency-Key header must be 1-255 visible ASCII characters.",
            errors=[FieldError(KEY_HEADER, "expected 1-255 visible ASCII characters", "idempotency_key_invalid")],
        )
    return value


class ExecuteWorkflowHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Start an execution of a workflow (queued)",
        body=ExecuteWorkflow,
        responses={202: DescribeExecution, 200: DescribeExecution},
        permission=Permission.EXECUTIONS_CREATE,
        tags=TAGS,
        headers={KEY_HEADER: Header(KEY_HELP, KEY_PATTERN)},
        creates="execution_id",
        body_optional=True,
    )
    async def post(self, workflow_id: str) -> None:
        target = self.parse_id(workflow_id, "workflow")
        key = parse_idempotency_key(self.request.headers.get(KEY_HEADER))
        body = self.parse_body(ExecuteWorkflow)
        execution, created = await self.services.executions.execute(self.identity, target, body, key)
        self.set_header("Location", f"{self.base_url.rstrip('/')}/orchestrator/api/v1/executions/{execution.id}")
        if not created:
            self.set_header("Idempotent-Replayed", "true")
        self.write_model(execution, status=202 if created else 200)


class ExecutionCollectionHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "List executions, newest first",
        query=ListExecutionsQuery,
        responses={200: ListExecutionsResponse},
        lists="execution_id",
        permission=Permission.EXECUTIONS_READ,
        tags=TAGS,
    )
    async def get(self) -> None:
        query = self.parse_query(ListExecutionsQuery)
        self.write_json(await self.services.executions.list(self.identity, query))


class ExecutionHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Get an execution (also one of a deleted agent or workflow)",
        responses={200: DescribeExecution},
        permission=Permission.EXECUTIONS_READ,
        tags=TAGS,
    )
    async def get(self, execution_id: str) -> None:
        execution = await self.services.executions.get(self.identity, self.parse_id(execution_id, "execution"))
        self.write_model(execution)


class CancelExecutionHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Cancel an execution: a queued one never starts; a running one is stopped within a second",
        responses={200: DescribeExecution, 202: DescribeExecution},
        permission=Permission.EXECUTIONS_CANCEL,
        tags=TAGS,
    )
    async def post(self, execution_id: str) -> None:
        target = self.parse_id(execution_id, "execution")
        execution, stopping = await self.services.executions.cancel(self.identity, target)
        self.write_model(execution, status=202 if stopping else 200)


class ResumeExecutionHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "Resume a waiting execution with the human's answer: it continues from its checkpoint",
        body=ResumeExecution,
        responses={202: DescribeExecution},
        permission=Permission.EXECUTIONS_CREATE,
        tags=TAGS,
    )
    async def post(self, execution_id: str) -> None:
        target = self.parse_id(execution_id, "execution")
        body = self.parse_body(ResumeExecution)
        execution = await self.services.executions.resume(self.identity, target, body)
        self.write_model(execution, status=202)


class ExecutionLogsHandler(OrchestratorHandler):
    @web.authenticated
    @authorized
    @operation(
        "The whole log of an execution (every attempt), as text",
        responses={200: None},
        permission=Permission.EXECUTIONS_READ,
        tags=TAGS,
        media={200: ("text/plain",)},
    )
    async def get(self, execution_id: str) -> None:
        text = await self.services.executions.logs(self.identity, self.parse_id(execution_id, "execution"))
        self.finish(text, set_content_type="text/plain; charset=utf-8")


class NotebookFormatQuery(RequestModel):
    format: Literal["ipynb", "html"] = Field(default="ipynb", description="ipynb (the document) or html.")


#: The HTML export shows what a run's code printed, HTML included: a page of someone else's making.
#: ``sandbox`` without ``allow-scripts`` runs no script and gives the page an origin of its own
#: (no cookies, no API calls); nothing loads from anywhere; the export's own inline styles and
#: embedded (data:) images still render.
EXPORT_CSP = "; ".join(
    [
        "sandbox",
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src data:",
        "font-src data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    ]
)


class ExecutionNotebookHandler(OrchestratorHandler):
    @property
    def content_security_policy(self) -> str:
        """The export's sandbox, whatever ServerApp's headers say: stricter than any page of the app."""
        return EXPORT_CSP

    @web.authenticated
    @authorized
    @operation(
        "The executed notebook of a notebook run, as .ipynb or rendered as HTML",
        query=NotebookFormatQuery,
        responses={200: None},
        permission=Permission.EXECUTIONS_READ,
        tags=TAGS,
        media={200: ("application/x-ipynb+json", "text/html")},
    )
    async def get(self, execution_id: str) -> None:
        target = self.parse_id(execution_id, "execution")
        query = self.parse_query(NotebookFormatQuery)
        content = await self.services.executions.notebook(self.identity, target)
        if query.format == "html":
            self.finish(await asyncio.to_thread(notebook_html, content), set_content_type="text/html; charset=utf-8")
            return
        self.set_header("Content-Disposition", f'attachment; filename="execution-{target}.ipynb"')
        self.finish(json.dumps(content), set_content_type="application/x-ipynb+json")


def notebook_html(content: dict[str, Any]) -> str:
    """The executed notebook as one HTML page, sanitized: what outputs and Markdown may show is
    nbconvert's SanitizeHTML allow-list (bleach): scripts, event handlers, iframes, SVG and
    JavaScript outputs are taken out, not escaped; tables, images and formatting stay."""
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors.sanitize import SanitizeHTML

    exporter = HTMLExporter()
    exporter.register_preprocessor(_sanitizer(SanitizeHTML), enabled=True)
    # reads(), not from_dict(): notebooks keep each cell's source as a list of lines
    html, _ = exporter.from_notebook_node(nbformat.reads(json.dumps(content), as_version=4))
    # what is left of <script> is the template's own (require.js and MathJax from a CDN): the
    # sandbox would block them anyway; without them the page asks nothing of anyone, even saved
    return _SCRIPT.sub("", str(html))


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.DOTALL | re.IGNORECASE)


def _sanitizer(sanitize_html: Any) -> Any:
    """SanitizeHTML that removes what it does not allow (its default escapes it into visible text)."""
    import bleach  # type: ignore[import-untyped]

    tags = {*bleach.ALLOWED_TAGS, *_LAYOUT_TAGS}
    attributes = {**bleach.ALLOWED_ATTRIBUTES, "img": ["src", "alt", "width", "height"], "*": ["class", "title"]}
    return sanitize_html(enabled=True, tags=sorted(tags), attributes=attributes, strip=True)


#: what dataframes, rich reprs and Markdown are made of, besides bleach's inline tags
_LAYOUT_TAGS = (
    "div",
    "span",
    "p",
    "br",
    "hr",
    "pre",
    "code",
    "img",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "th",
    "td",
    "caption",
    "sub",
    "sup",
    "del",
)


default_handlers = route_table(
    ("/workflows/{workflow_id}/execute", ExecuteWorkflowHandler),
    ("/executions", ExecutionCollectionHandler),
    ("/executions/{execution_id}", ExecutionHandler),
    ("/executions/{execution_id}/cancel", CancelExecutionHandler),
    ("/executions/{execution_id}/resume", ResumeExecutionHandler),
    ("/executions/{execution_id}/events", ExecutionEventsHandler),
    ("/executions/{execution_id}/logs", ExecutionLogsHandler),
    ("/executions/{execution_id}/notebook", ExecutionNotebookHandler),
    ("/organizations/{org_id}/events", OrganizationEventsHandler),
)
