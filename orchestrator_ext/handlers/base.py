"""The base of every orchestrator API handler.

One place for: the correlation id, metrics and the request log line; parsing
bodies and query strings into pydantic models; and turning every exception
into an ``application/problem+json`` response (never a traceback, never an
unexplained 500).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import psycopg
from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.prometheus.log_functions import prometheus_log_method
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from tornado import web

from ..errors import (
    BadRequest,
    Conflict,
    FieldError,
    NotFound,
    OrchestratorError,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from ..observability.logging import correlation_id
from ..openapi import API_PREFIX as API_PREFIX
from ..openapi import Header as Header
from ..openapi import Operation as Operation
from ..openapi import body_required
from ..openapi import operation as operation
from ..services.ratelimit import Bucket
from ..services.scope import Identity

if TYPE_CHECKING:
    from ..hub.identity import HubAccess
    from ..services.container import Services

AUTH_RESOURCE = "orchestrator"

M = TypeVar("M", bound=BaseModel)


class JsonBody(Protocol):
    """A response already in its response model's JSON shape (the fast read path's pages)."""

    def to_json(self) -> bytes: ...


SINGLE_USER_PROVIDERS: tuple[type[IdentityProvider], ...] = (IdentityProvider, PasswordIdentityProvider)

log = logging.getLogger("orchestrator.api")
#: the methods that change something: charged to the caller's rate of writes
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# generated correlation ids: unique per process (a random prefix) and cheap (a counter)
_ID_PREFIX = os.urandom(8).hex() + "-"
_ID_COUNTER = itertools.count(1)


def field_errors(exc: ValidationError, prefix: str = "", discriminator: str | None = None) -> list[FieldError]:
    """Pydantic errors as (dotted field, message, type) triples.

    For a body that is a union told apart by ``discriminator`` (``kind``), the union's tag is left
    out of each location (``config.base_url``, not ``n8n.config.base_url``), and an unknown or
    missing tag is the discriminator field's error. Any other error without a location (a body
    that is not an object: ``[]``) is the body's, not the tag's.
    """
    errors = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        if discriminator is not None and loc:
            loc = loc[1:]
        elif discriminator is not None and err["type"].startswith("union_tag_"):
            loc = (discriminator,)
        location = ".".join(str(part) for part in loc)
        field = f"{prefix}.{location}" if prefix and location else (location or prefix or "body")
        errors.append(FieldError(field, err["msg"], err["type"]))
    return errors


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _find_unstorable(value: Any, path: str = "") -> tuple[str, str] | None:
    """The dotted path of the first value PostgreSQL cannot store, and why: a string (or key)
    holding a NUL, or a number too large to be finite (``1e400`` parses as infinity)."""
    if isinstance(value, str):
        return (path, "contains a NUL (\\u0000) character") if "\x00" in value else None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, "is not a finite number")
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and "\x00" in key:
            return where, "contains a NUL (\\u0000) character"
        found = _find_unstorable(item, where)
        if found is not None:
            return found
    return None


def problem_from(exc: BaseException | None, status: int, reason: str) -> OrchestratorError:
    """Map any exception to the error the client sees."""
    if isinstance(exc, OrchestratorError):
        return exc
    if isinstance(exc, web.HTTPError):
        err = OrchestratorError(exc.log_message or reason or "Request failed.")
        err.status = exc.status_code
        err.title = exc.reason or reason
        return err
    if isinstance(exc, IntegrityError):
        return Conflict("The change conflicts with existing data (a unique or reference constraint).")
    unavailable = OperationalError | PoolTimeout | psycopg.OperationalError
    if isinstance(exc, unavailable) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return ServiceUnavailable("The database is unavailable; retry shortly.")
    err = OrchestratorError("An unexpected error occurred; quote the correlation id when reporting it.")
    err.status = status if status >= 500 else 500
    return err


class OrchestratorHandler(ExtensionHandlerMixin, APIHandler):
    """Base class: thin handlers parse, authorize (in the service), call one service method, write."""

    auth_resource = AUTH_RESOURCE
    #: the route template, used as the metrics label (never the raw path)
    route: ClassVar[str] = ""

    correlation_id: str = ""
    _started: float = 0.0
    _counted: bool = False

    @property
    def services(self) -> Services:
        return self.settings["orchestrator_services"]  # type: ignore[no-any-return]

    async def prepare(self) -> None:  # type: ignore[override]
        self._started = time.perf_counter()
        given = self.request.headers.get("X-Request-ID", "")
        self.correlation_id = given if _REQUEST_ID.match(given) else f"{_ID_PREFIX}{next(_ID_COUNTER):x}"
        correlation_id.set(self.correlation_id)
        self.set_header("X-Request-ID", self.correlation_id)
        self.services.metrics.in_flight.inc()
        self._counted = True
        await super().prepare()
        await self.services.limiter.take(*self.rate_buckets())

    def rate_buckets(self) -> list[Bucket]:
        """What this request is charged (services/ratelimit.py): a user's writes and runs, failed logins."""
        settings = self.services.settings
        if self.current_user is None:
            # a token that does not authenticate: throttle guessing from one address (the user's own
            # requests never land here, so a flood of bad tokens cannot lock anyone out)
            presented = "Authorization" in self.request.headers or self.get_query_argument("token", "")
            if not presented:
                return []
            return [Bucket(f"auth:{self.request.remote_ip}", settings.auth_failures_rate, "failed authentications")]
        if self.request.method not in WRITE_METHODS:
            return []
        subject = self.identity.subject
        buckets = [Bucket(f"user:{subject}:write", settings.user_writes_rate, "your changes")]
        if self.request.path.rstrip("/").endswith("/execute"):
            buckets.append(Bucket(f"user:{subject}:execute", settings.user_executes_rate, "your runs"))
        return buckets

    # ---- identity and parsing -------------------------------------------------

    @property
    def identity(self) -> Identity:
        user = self.current_user
        if user is None:  # pragma: no cover - @web.authenticated runs first
            raise web.HTTPError(403)
        hub: HubAccess | None = self.settings.get("orchestrator_hub")
        hub_identity = hub.identity(user) if hub is not None else None
        if hub_identity is not None:
            return hub_identity
        if type(self.identity_provider) in SINGLE_USER_PROVIDERS:
            # A plain jupyter-server has one user: whoever holds its token or
            # password is its owner (its own anonymous names change per cookie).
            owner = self.services.settings.owner
            return Identity(subject=owner, display_name=owner, platform_admin=True)
        display = getattr(user, "display_name", None) or getattr(user, "name", None)
        name = str(user.username)
        return Identity(
            subject=name, display_name=display or None, platform_admin=name in self.services.settings.platform_admins
        )

    def parse_body(self, model: type[M]) -> M:
        body = self.request.body or b""
        if not body.strip() and self._body_required():
            raise ValidationFailed(
                "This request needs a JSON body.", errors=[FieldError("body", "a JSON object is required", "missing")]
            )
        limit = self.services.settings.max_body_bytes
        if len(body) > limit:
            raise PayloadTooLarge(f"The request body is {len(body)} bytes; the limit is {limit}.")
        ctype = self.request.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        if body and ctype not in ("application/json", "application/merge-patch+json", ""):
            raise UnsupportedMediaType(f"Send JSON (Content-Type: application/json), not '{ctype}'.")
        try:
            data = json.loads(body or b"{}", parse_constant=_refuse_constant)
            unstorable = _find_unstorable(data)
        except RecursionError as exc:
            raise BadRequest("The body is nested too deeply.") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}.") from exc
        if unstorable is not None:
            raise ValidationFailed(
                "Text may not contain NUL characters and numbers must be finite.",
                errors=[FieldError(unstorable[0] or "body", unstorable[1], "unstorable")],
            )
        if not isinstance(data, dict):
            raise ValidationFailed(
                "The body must be a JSON object.", errors=[FieldError("body", "expected an object", "type_error")]
            )
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            tag = getattr(model, "discriminator", None)
            raise ValidationFailed("The request body is invalid.", errors=field_errors(exc, discriminator=tag)) from exc

    def _body_required(self) -> bool:
        """What the OpenAPI document says of this method's body (``requestBody.required``)."""
        method = (self.request.method or "").lower()
        described = getattr(getattr(type(self), method, None), "__openapi__", None)
        return not isinstance(described, Operation) or body_required(method, described)

    def parse_query(self, model: type[M]) -> M:
        raw: dict[str, Any] = {}
        for key, values in self.request.query_arguments.items():
            decoded = [v.decode("utf-8", "replace") for v in values]
            if any("\x00" in v for v in decoded):
                raise ValidationFailed(
                    "The query string is invalid.",
                    errors=[FieldError(key, "contains a NUL (\\u0000) character", "string_nul")],
                )
            raw[key] = decoded[0] if len(decoded) == 1 else decoded
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise ValidationFailed("The query string is invalid.", errors=field_errors(exc)) from exc

    @staticmethod
    def parse_id(value: str, what: str) -> uuid.UUID:
        """A path id; one that is not a UUID names nothing, so it is a 404."""
        try:
            return uuid.UUID(value)
        except ValueError as exc:
            raise NotFound(f"No {what} with id '{value[:64]}' (ids are UUIDs).") from exc

    # ---- writing --------------------------------------------------------------

    def write_model(self, model: BaseModel, status: int = 200) -> None:
        self.set_status(status)
        self.finish(model.model_dump_json())

    def write_json(self, page: JsonBody, status: int = 200) -> None:
        """Write a page from the fast read path (already in its response model's shape)."""
        self.set_status(status)
        self.finish(page.to_json())

    def compute_etag(self) -> str | None:
        """No automatic body-hash ETags: resources that version (workflows) set their own."""
        return None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        err = problem_from(exc, status_code, self._reason)
        self.set_status(err.status)
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": err.title,
            "status": err.status,
            "detail": err.detail,
            "errors": [e.as_dict() for e in err.errors],
            "correlation_id": self.correlation_id or None,
        }
        body.update(err.extra)
        if err.status == 405:  # RFC 9110: a 405 lists the methods the resource has
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        if "retry_after" in err.extra:  # 429 (rate limits): when to come back, as RFC 9110 says
            self.set_header("Retry-After", str(err.extra["retry_after"]))
        self.finish(json.dumps(body, default=str), set_content_type="application/problem+json")

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this handler implements (those not left to tornado's 405)."""
        candidates = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
        return [m for m in candidates if cls._implements(m.lower())]

    @classmethod
    def _implements(cls, method: str) -> bool:
        return getattr(cls, method, None) is not getattr(web.RequestHandler, method, None)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, OrchestratorError | web.HTTPError):
            log.debug("request refused: %s", value)
            return
        mapped = problem_from(value, 500, "")
        if mapped.status == 503:
            log.warning("database unavailable: %s", type(value).__name__)
            return
        log.error("unhandled error in %s %s", self.request.method, self.route, exc_info=(typ, value, tb))

    def _log(self) -> None:
        """One access-log line per request: ours (JSON, with the correlation id; see
        :meth:`on_finish`) replaces jupyter-server's text line; its request metrics still count."""
        if not self.services.settings.log_requests:
            super()._log()
            return
        prometheus_log_method(self)  # type: ignore[no-untyped-call]

    def on_finish(self) -> None:
        if not self._counted:
            return
        services = self.services
        seconds = time.perf_counter() - self._started
        status = self.get_status()
        method = self.request.method or "GET"
        services.metrics.in_flight.dec()
        services.metrics.observe_request(self.route or "unknown", method, status, seconds)
        # like jupyter-server's access log: successes at debug, refusals at info, failures at error
        level = logging.DEBUG if status < 400 else logging.INFO if status < 500 else logging.ERROR
        if services.settings.log_requests and log.isEnabledFor(level):
            log.log(
                level,
                "request",
                extra={
                    "method": method,
                    "route": self.route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 3),
                    "correlation_id": self.correlation_id,
                },
            )
        super().on_finish()


def api_route(template: str) -> str:
    """Turn ``/agents/{agent_id}`` into the tornado pattern under the API prefix."""
    pattern = re.sub(r"\{[a-z_]+\}", r"([^/]+)", template)
    return f"/{API_PREFIX}{pattern}"


def route_table(
    *entries: tuple[str, type[OrchestratorHandler]],
) -> list[tuple[str, type[OrchestratorHandler]]]:
    """Build a ``default_handlers`` table and label each handler with its route template."""
    table = []
    for template, handler in entries:
        handler.route = template
        table.append((api_route(template), handler))
    return table
