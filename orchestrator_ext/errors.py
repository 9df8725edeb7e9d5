"""One exception hierarchy for the whole service layer.

Services raise these; the base handler turns them into
``application/problem+json`` responses. Nothing here knows about HTTP
frameworks: only the status code each error maps to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One field at fault: a dotted location, what is wrong, and a machine code."""

    field: str
    message: str
    type: str = "value_error"

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "type": self.type}


class OrchestratorError(Exception):
    """Base of every error the API reports to a user."""

    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class BadRequest(OrchestratorError):
    status = 400
    title = "Bad request"


class Forbidden(OrchestratorError):
    """The caller sees the resource but their role does not allow the action."""

    status = 403
    title = "Forbidden"


class NotFound(OrchestratorError):
    """Missing, deleted, or belonging to another tenant: the three look alike."""

    status = 404
    title = "Not found"


class Conflict(OrchestratorError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(OrchestratorError):
    status = 413
    title = "Payload too large"


class UnsupportedMediaType(OrchestratorError):
    status = 415
    title = "Unsupported media type"


class ValidationFailed(OrchestratorError):
    status = 422
    title = "Validation failed"


class ServiceUnavailable(OrchestratorError):
    status = 503
    title = "Service unavailable"
